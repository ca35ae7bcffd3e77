//go:build !windows

package client

import (
	"errors"
	"syscall"
)

// refused tells a connection refused: nothing listens at the address.
func refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
