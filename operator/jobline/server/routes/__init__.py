"""The Jobs API's routes, one router per resource."""
