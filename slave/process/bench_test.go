package process

import (
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// BenchmarkRun measures Run of /bin/true: plain, and with a Tag, which
// makes Run kill what the command may have left that escaped its group.
func BenchmarkRun(b *testing.B) {
	for _, tagged := range []bool{false, true} {
		name := "plain"
		if tagged {
			name = "tagged"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			c := Command{Args: []string{"/bin/true"}, Dir: dir,
				Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr")}
			cpu := cpuTime()
			for i := range b.N {
				if tagged {
					c.Tag = "bench-" + strconv.Itoa(i)
				}
				if _, err := Run(b.Context(), c); err != nil {
					b.Fatal(err)
				}
			}
			reportCPU(b, cpu)
		})
	}
}

// cpuTime is the CPU time (user and system) this process and its reaped
// children have used: a benchmark's cost per task on a busy machine,
// where the wall clock says more about the neighbours.
func cpuTime() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	var total time.Duration
	for _, tv := range []syscall.Timeval{self.Utime, self.Stime, kids.Utime, kids.Stime} {
		total += time.Duration(tv.Nano())
	}
	return total
}

func reportCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64((cpuTime()-since).Microseconds())/float64(b.N), "cpu-µs/op")
}
