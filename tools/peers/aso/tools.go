//go:build tools

// Pins ASO's controller so `go mod tidy` keeps it in go.mod.
package tools

import (
	_ "github.com/Azure/azure-service-operator/v2/cmd/controller"
)
