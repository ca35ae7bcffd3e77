//go:build !unix

package autoscale

import "syscall"

// ownGroup: slaves run on Linux; elsewhere the local provider's processes
// share the autoscaler's group.
func ownGroup() *syscall.SysProcAttr { return nil }
