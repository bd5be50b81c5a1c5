"""The link to the apiserver: the one request layer (`request`), the client configuration
(`config`), the watches (`informer`) and the indexed stores they fill (`store`). Used by
the operator, the server and the CLI alike; knows neither kopf nor our controllers."""
