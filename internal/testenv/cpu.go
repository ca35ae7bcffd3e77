package testenv

import (
	"testing"
	"time"
)

// CPUMeter reports, as the metric cpu-ms/op, the CPU time the process
// spends in a benchmark's measured parts: a figure that the other loads of
// a shared machine disturb far less than the wall time of ns/op.
type CPUMeter struct {
	start, total time.Duration
}

// Start and Stop bracket a measured part.
func (m *CPUMeter) Start() { m.start = CPUTime() }
func (m *CPUMeter) Stop()  { m.total += CPUTime() - m.start }

// Report reports the metric for b.N operations.
func (m *CPUMeter) Report(b *testing.B) {
	b.ReportMetric(float64(m.total.Microseconds())/1000/float64(b.N), "cpu-ms/op")
}

// ReportChildCPU reports, as cpu-µs/op, the CPU time of the process and
// its reaped children since since (a CPUTimeWithChildren) over b.N.
func ReportChildCPU(b *testing.B, since time.Duration) {
	b.ReportMetric(float64((CPUTimeWithChildren()-since).Microseconds())/float64(b.N), "cpu-µs/op")
}
