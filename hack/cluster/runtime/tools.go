//go:build tools

// Package tools pins the real node's container runtime: containerd, its runc
// shim and ctr, and runc itself (Debian 12's containerd 1.6 drops the end of
// the output of a container that exits quickly).
package tools

import (
	_ "github.com/containerd/containerd/v2/cmd/containerd"
	_ "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"
	_ "github.com/containerd/containerd/v2/cmd/ctr"
	_ "github.com/opencontainers/runc"
)
