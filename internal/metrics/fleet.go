package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Fleet is the state of the fleet, as the master's store has it when
// scraped.
type Fleet struct {
	SlavesAlive int
	Slots       int // of the slaves alive
	SlotsBusy   int // runs going on
	Queued      int // attempts waiting to start
}

// fleetTimeout bounds the store's queries of one scrape: Prometheus' own
// timeout is 10 s by default.
const fleetTimeout = 5 * time.Second

var (
	slavesAliveDesc = prometheus.NewDesc(namespace+"_slaves_alive", "Slaves registered and heartbeating.", nil, nil)
	slotsDesc       = prometheus.NewDesc(namespace+"_slots", "Task slots of the slaves alive.", nil, nil)
	slotsBusyDesc   = prometheus.NewDesc(namespace+"_slots_busy", "Runs going on (attempts running and their hedges).", nil, nil)
	queuedDesc      = prometheus.NewDesc(namespace+"_attempts_queued", "Attempts waiting to start.", nil, nil)
	fleetUpDesc     = prometheus.NewDesc(namespace+"_fleet_scrape_ok", "1 when the fleet's state could be read from the database for this scrape, else 0.", nil, nil)
)

// fleetCollector reads the fleet's state at each scrape.
type fleetCollector struct {
	read func(context.Context) (Fleet, error)
	log  *slog.Logger
}

// NewFleet registers the gauges of the fleet's state, which read reads at
// each scrape.
func NewFleet(reg prometheus.Registerer, read func(context.Context) (Fleet, error), log *slog.Logger) {
	reg.MustRegister(&fleetCollector{read: read, log: log})
}

func (c *fleetCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{slavesAliveDesc, slotsDesc, slotsBusyDesc, queuedDesc, fleetUpDesc} {
		ch <- d
	}
}

func (c *fleetCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), fleetTimeout)
	defer cancel()
	f, err := c.read(ctx)
	if err != nil {
		// The gauges are left out rather than given a false 0; the
		// scrape itself succeeds, so that the counters still arrive.
		c.log.Warn("metrics: reading the fleet's state failed", "err", err)
		ch <- prometheus.MustNewConstMetric(fleetUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(fleetUpDesc, prometheus.GaugeValue, 1)
	ch <- prometheus.MustNewConstMetric(slavesAliveDesc, prometheus.GaugeValue, float64(f.SlavesAlive))
	ch <- prometheus.MustNewConstMetric(slotsDesc, prometheus.GaugeValue, float64(f.Slots))
	ch <- prometheus.MustNewConstMetric(slotsBusyDesc, prometheus.GaugeValue, float64(f.SlotsBusy))
	ch <- prometheus.MustNewConstMetric(queuedDesc, prometheus.GaugeValue, float64(f.Queued))
}
