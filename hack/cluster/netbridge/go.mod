// netbridge joins the real node's network namespace to the host's loopback.
module jobline.dev/hack/cluster/netbridge

go 1.24.0
