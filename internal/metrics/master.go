package metrics

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dist-test/dist_test/internal/model"
)

// Master is what the master counts as it happens. A nil *Master counts
// nothing, so that the master's tests need none.
type Master struct {
	jobs        prometheus.Counter
	tasks       prometheus.Counter
	attempts    *prometheus.CounterVec
	queueWait   prometheus.Histogram
	dispatch    prometheus.Histogram
	runTime     prometheus.Histogram
	retries     prometheus.Counter
	infra       prometheus.Counter
	requeued    prometheus.Counter
	slavesLost  prometheus.Counter
	inputBytes  *prometheus.CounterVec
	storeErrors *prometheus.CounterVec
	queueErrors *prometheus.CounterVec
	serviceUp   *prometheus.GaugeVec
	outages     *prometheus.CounterVec
}

// NewMaster registers the master's metrics with reg.
func NewMaster(reg prometheus.Registerer) *Master {
	m := &Master{
		jobs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "jobs_submitted_total",
			Help: "Jobs accepted by the master."}),
		tasks: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "tasks_submitted_total",
			Help: "Tasks of the jobs accepted by the master."}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "attempts_finished_total",
			Help: "Attempts ended, by outcome (passed, failed, timed_out, infra_failed, canceled)."}, []string{"outcome"}),
		queueWait: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "queue_wait_seconds",
			Help: "Time from an attempt's creation (submission or retry) to its start on a slave.", Buckets: durationBuckets}),
		dispatch: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "dispatch_latency_seconds",
			Help: "Time from an attempt's queue entry being put to a slave starting it.", Buckets: durationBuckets}),
		runTime: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "run_seconds",
			Help: "Run time of finished attempts, as their slaves measured it.", Buckets: durationBuckets}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "retries_total",
			Help: "Attempts queued again after a failure, using one of their task's retries."}),
		infra: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "infra_failures_total",
			Help: "Runs that could not run at all (inputs unfetchable, sandbox failed), whether queued again or ended infra_failed."}),
		requeued: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "runs_requeued_total",
			Help: "Runs queued again without using a retry: infrastructure failures, lost slaves, slaves that stopped."}),
		slavesLost: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "slaves_lost_total",
			Help: "Slaves declared lost after the heartbeat timeout."}),
		inputBytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "input_bytes_total",
			Help: "Bytes of task inputs the slaves used, from their cache (hot) or downloaded (cold)."}, []string{"cache"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "store_errors_total",
			Help: "Failed calls to the database, by operation."}, []string{"op"}),
		queueErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "queue_errors_total",
			Help: "Failed calls to the queue, by operation."}, []string{"op"}),
		serviceUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: "service_up",
			Help: "Whether a backend of the master (database, queue, blob store) answered its last probe (1) or not (0)."}, []string{"service"}),
		outages: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "service_outages_total",
			Help: "Outages of a backend of the master that it saw, counted when they began."}, []string{"service"}),
	}
	reg.MustRegister(m.jobs, m.tasks, m.attempts, m.queueWait, m.dispatch, m.runTime, m.retries, m.infra,
		m.requeued, m.slavesLost, m.inputBytes, m.storeErrors, m.queueErrors, m.serviceUp, m.outages)
	// The usual outcomes are there from the start, at 0, so that a rate
	// over them has a series before the first failure.
	for _, s := range []model.State{model.Passed, model.Failed, model.TimedOut, model.InfraFailed, model.Canceled} {
		m.attempts.WithLabelValues(string(s))
	}
	m.inputBytes.WithLabelValues("hot")
	m.inputBytes.WithLabelValues("cold")
	return m
}

// Service records a probe of a backend: up or not, and whether an outage
// began with it.
func (m *Master) Service(name string, up, began bool) {
	if m == nil {
		return
	}
	v := 0.0
	if up {
		v = 1
	}
	name = strings.ReplaceAll(name, " ", "_")
	m.serviceUp.WithLabelValues(name).Set(v)
	if began {
		m.outages.WithLabelValues(name).Inc()
	}
}

// JobSubmitted counts a job of tasks tasks.
func (m *Master) JobSubmitted(tasks int) {
	if m == nil {
		return
	}
	m.jobs.Inc()
	m.tasks.Add(float64(tasks))
}

// Started observes an attempt's start: its wait since it was created and,
// when known (not zero), since its queue entry was put.
func (m *Master) Started(a model.Attempt, enqueued time.Time) {
	if m == nil || a.Runs > 1 {
		// A run started again after a lost one waited for the loss, not
		// in the queue.
		return
	}
	if !a.SubmittedAt.IsZero() && !a.StartedAt.Before(a.SubmittedAt) {
		m.queueWait.Observe(a.StartedAt.Sub(a.SubmittedAt).Seconds())
	}
	if !enqueued.IsZero() && !a.StartedAt.Before(enqueued) {
		m.dispatch.Observe(a.StartedAt.Sub(enqueued).Seconds())
	}
}

// Finished counts an attempt's end; retried says a retry was queued for it.
func (m *Master) Finished(a model.Attempt, run time.Duration, inputs model.Inputs, retried bool) {
	if m == nil {
		return
	}
	m.attempts.WithLabelValues(string(a.State)).Inc()
	if a.State != model.Canceled && run > 0 {
		m.runTime.Observe(run.Seconds())
	}
	if a.State == model.InfraFailed {
		m.infra.Inc()
	}
	if retried {
		m.retries.Inc()
	}
	m.Inputs(inputs)
}

// Inputs counts the input bytes of a run.
func (m *Master) Inputs(i model.Inputs) {
	if m == nil {
		return
	}
	if i.HotBytes > 0 {
		m.inputBytes.WithLabelValues("hot").Add(float64(i.HotBytes))
	}
	if i.ColdBytes > 0 {
		m.inputBytes.WithLabelValues("cold").Add(float64(i.ColdBytes))
	}
}

// Canceled counts n attempts ended by a cancel.
func (m *Master) Canceled(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.attempts.WithLabelValues(string(model.Canceled)).Add(float64(n))
}

// InfraRequeued counts a run that could not run and was queued again.
func (m *Master) InfraRequeued() {
	if m == nil {
		return
	}
	m.infra.Inc()
	m.requeued.Inc()
}

// Requeued counts n runs queued again without using a retry.
func (m *Master) Requeued(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.requeued.Add(float64(n))
}

// SlavesLost counts n slaves declared lost.
func (m *Master) SlavesLost(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.slavesLost.Add(float64(n))
}

// StoreError counts a failed database call of operation op.
func (m *Master) StoreError(op string) {
	if m == nil {
		return
	}
	m.storeErrors.WithLabelValues(op).Inc()
}

// QueueError counts a failed queue call of operation op.
func (m *Master) QueueError(op string) {
	if m == nil {
		return
	}
	m.queueErrors.WithLabelValues(op).Inc()
}
