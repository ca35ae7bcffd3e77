//go:build !unix

package testenv

import "time"

// CPUTime is 0 where getrusage is missing: the benchmarks that report it
// are run on Linux.
func CPUTime() time.Duration { return 0 }

// CPUTimeWithChildren is 0 here, as CPUTime.
func CPUTimeWithChildren() time.Duration { return 0 }
