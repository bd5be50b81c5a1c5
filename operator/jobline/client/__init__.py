"""The client of the CLI and the Jobs API: Pipelines and runs of a namespace (`runs`)
and a run's log from any line (`run_logs`), acting as the caller."""
