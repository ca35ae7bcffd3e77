package server

import (
	"context"
	"fmt"
	"math"

	"github.com/dist-test/dist_test/internal/model"
)

// Drain tells a live slave to take no new task: it finishes what it runs,
// reports, deregisters and exits. The slave learns it from its next
// heartbeat's answer; meanwhile the master refuses it new starts. Draining
// a draining slave changes nothing; a slave that is lost or has left is
// ErrConflict, an unknown one ErrNotFound.
func (m *Master) Drain(ctx context.Context, slaveID string) (model.Slave, error) {
	sl, err := m.store.GetSlave(ctx, slaveID)
	if err != nil {
		return sl, fmt.Errorf("drain: %w", err)
	}
	switch sl.State {
	case model.SlaveDraining:
		runs, err := m.store.RunningOn(ctx, sl.ID)
		sl.Running = len(runs)
		return sl, err
	case model.SlaveAlive:
	default:
		return sl, fmt.Errorf("%w: slave %s (%s) is %s, not running", model.ErrConflict, sl.ID, sl.Hostname, sl.State)
	}
	if err := m.store.SetSlaveState(ctx, sl.ID, model.SlaveDraining, m.now()); err != nil {
		return sl, fmt.Errorf("drain: %w", err)
	}
	sl.State = model.SlaveDraining
	runs, err := m.store.RunningOn(ctx, sl.ID)
	if err != nil {
		return sl, fmt.Errorf("drain: %w", err)
	}
	sl.Running = len(runs)
	m.log.InfoContext(ctx, "slave draining", "slave", sl.ID, "host", sl.Hostname, "running", sl.Running)
	return sl, nil
}

// Capacity is the master's work and the slots to run it: what an
// autoscaler sizes a fleet from.
type Capacity struct {
	model.Workload
	// SlavesAlive and SlotsAlive count the slaves that take tasks;
	// draining ones are apart.
	SlavesAlive, SlotsAlive, SlavesDraining int
	// SlotsPerSlave is the mean slots of the alive slaves, rounded (0 when
	// none is alive).
	SlotsPerSlave int
}

// Capacity reads the workload and the live slaves.
func (m *Master) Capacity(ctx context.Context) (Capacity, error) {
	w, err := m.store.Workload(ctx, m.now())
	if err != nil {
		return Capacity{}, fmt.Errorf("capacity: %w", err)
	}
	slaves, err := m.store.ListSlaves(ctx, true)
	if err != nil {
		return Capacity{}, fmt.Errorf("capacity: %w", err)
	}
	c := Capacity{Workload: w}
	for _, s := range slaves {
		switch s.State {
		case model.SlaveAlive:
			c.SlavesAlive++
			c.SlotsAlive += s.Slots
		case model.SlaveDraining:
			c.SlavesDraining++
		}
	}
	if c.SlavesAlive > 0 {
		c.SlotsPerSlave = int(math.Round(float64(c.SlotsAlive) / float64(c.SlavesAlive)))
	}
	return c, nil
}
