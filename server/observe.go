package server

import (
	"context"

	"github.com/dist-test/dist_test/internal/metrics"
)

// Fleet reads the state of the fleet for the metrics: slaves alive, their
// slots, the runs going on and the attempts waiting.
func (m *Master) Fleet(ctx context.Context) (metrics.Fleet, error) {
	var f metrics.Fleet
	slaves, err := m.store.ListSlaves(ctx, true)
	if err != nil {
		return f, err
	}
	f.SlavesAlive = len(slaves)
	for _, s := range slaves {
		f.Slots += s.Slots
	}
	if f.SlotsBusy, err = m.store.Runs(ctx); err != nil {
		return f, err
	}
	backlog, err := m.store.Backlog(ctx)
	if err != nil {
		return f, err
	}
	for _, b := range backlog {
		f.Queued += b.Waiting + b.InQueue
	}
	return f, nil
}
