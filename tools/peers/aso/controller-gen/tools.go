//go:build tools

// Pins controller-gen so `go mod tidy` keeps it in go.mod.
package tools

import (
	_ "sigs.k8s.io/controller-tools/cmd/controller-gen"
)
