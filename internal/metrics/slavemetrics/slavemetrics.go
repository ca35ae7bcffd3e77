// Package slavemetrics is what a slave exports to Prometheus. It stands
// apart from package metrics, whose counting wrappers of the store and the
// blob store a slave must not depend on.
package slavemetrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dist-test/dist_test/internal/model"
)

// namespace prefixes every dist_test metric (as in package metrics).
const namespace = "dist_test"

// Slave is what a slave counts. A nil *Slave counts nothing.
type Slave struct {
	slots      prometheus.Gauge
	busy       prometheus.Gauge
	runs       *prometheus.CounterVec
	inputBytes *prometheus.CounterVec
}

// NewSlave registers a slave's metrics with reg.
func NewSlave(reg prometheus.Registerer, slots int) *Slave {
	s := &Slave{
		slots: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "slave", Name: "slots",
			Help: "Task slots of this slave."}),
		busy: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Subsystem: "slave", Name: "slots_busy",
			Help: "Slots of this slave running a task or reporting its result."}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "slave", Name: "runs_total",
			Help: "Runs this slave ended, by result (passed, failed, timed_out, infra)."}, []string{"result"}),
		inputBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "slave", Name: "input_bytes_total",
			Help: "Bytes of task inputs this slave used, from its cache (hot) or downloaded (cold)."}, []string{"cache"}),
	}
	reg.MustRegister(s.slots, s.busy, s.runs, s.inputBytes)
	s.slots.Set(float64(slots))
	for _, r := range []string{"passed", "failed", "timed_out", "infra"} {
		s.runs.WithLabelValues(r)
	}
	s.inputBytes.WithLabelValues("hot")
	s.inputBytes.WithLabelValues("cold")
	return s
}

// Busy counts a slot taken (+1) or freed (-1).
func (s *Slave) Busy(delta int) {
	if s == nil {
		return
	}
	s.busy.Add(float64(delta))
}

// Ran counts a run's end and the inputs it used.
func (s *Slave) Ran(exitCode int, timedOut, infra bool, in model.Inputs) {
	if s == nil {
		return
	}
	result := "failed"
	switch {
	case infra:
		result = "infra"
	case timedOut:
		result = "timed_out"
	case exitCode == 0:
		result = "passed"
	}
	s.runs.WithLabelValues(result).Inc()
	if in.HotBytes > 0 {
		s.inputBytes.WithLabelValues("hot").Add(float64(in.HotBytes))
	}
	if in.ColdBytes > 0 {
		s.inputBytes.WithLabelValues("cold").Add(float64(in.ColdBytes))
	}
}
