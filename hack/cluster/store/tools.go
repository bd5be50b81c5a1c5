//go:build tools

// Package tools pins the S3-compatible store that archives run logs on the local
// plane: the Versity S3 gateway, serving a directory (posix backend).
package tools

import _ "github.com/versity/versitygw/cmd/versitygw"
