//go:build !linux

package slave

import (
	"io/fs"
	"runtime"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Fallbacks of host_linux.go, so that the client, built from the same
// program, builds off Linux; the slave refuses to start there.

func resources(string) protocol.Resources { return protocol.Resources{CPUs: numCPU()} }
func numCPU() int                         { return runtime.NumCPU() }
func ownerOf(fs.FileInfo) (int, bool)     { return 0, false }
func mayEnter(string) bool                { return false }
