//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// CPUTime is the CPU time (user and system) the process has used so far.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// CPUTimeWithChildren is CPUTime plus that of the children the process
// has reaped: the cost of a benchmark that runs commands, on a busy
// machine where the wall clock says more about the neighbours.
func CPUTimeWithChildren() time.Duration {
	var kids syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids); err != nil {
		return CPUTime()
	}
	return CPUTime() + time.Duration(kids.Utime.Nano()+kids.Stime.Nano())
}
