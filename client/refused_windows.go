package client

import (
	"errors"
	"syscall"
)

// wsaeconnrefused is Windows' error for a connection refused, which
// syscall.ECONNREFUSED does not match there.
const wsaeconnrefused = syscall.Errno(10061)

// refused tells a connection refused: nothing listens at the address.
func refused(err error) bool {
	return errors.Is(err, wsaeconnrefused) || errors.Is(err, syscall.ECONNREFUSED)
}
