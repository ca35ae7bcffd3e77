// Package metrics is what dist_test's processes export to Prometheus: each
// process has a registry of its own (never the global default, so that a
// test may run several masters and slaves in one process), served on
// /metrics by Handler.
//
// Names follow Prometheus' conventions: the dist_test_ prefix, _total on
// counters, base units (_seconds, _bytes). Labels take a few fixed values
// (an outcome, a route pattern, a status code): never a job, task or slave
// id, whose number grows without bound.
package metrics

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every dist_test metric.
const namespace = "dist_test"

// NewRegistry returns a process's registry, with the Go runtime's and the
// process's own metrics (memory, goroutines, CPU, open files) in it.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves reg in the Prometheus text (or OpenMetrics) format.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// Version exports the build's version as dist_test_build_info{version}, 1,
// so that a dashboard shows which build each process runs.
func Version(reg prometheus.Registerer, version string) {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
		Help: "Always 1; the version label is the build's (git describe).", ConstLabels: prometheus.Labels{"version": version}})
	g.Set(1)
	reg.MustRegister(g)
}

// durationBuckets span a no-op task's milliseconds to a long test's hour.
var durationBuckets = []float64{.005, .025, .1, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600}
