//go:build tools

// Package tools pins Kueue, the Kubernetes batch queue that admits Jobs
// under quotas, for the local plane's Kueue tests.
package tools

import (
	_ "sigs.k8s.io/kueue/cmd/kueue"
)
