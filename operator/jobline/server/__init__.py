"""`jobline server`: the Jobs API and the dashboard, acting with each caller's identity."""
