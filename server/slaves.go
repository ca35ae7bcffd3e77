package server

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
)

// Register records a new slave registration. Every start of a slave process
// is a new registration, so a restarted slave never inherits the runs of
// its previous life.
func (m *Master) Register(ctx context.Context, r protocol.Register) (model.Slave, error) {
	r.Hostname = strings.TrimSpace(r.Hostname)
	if r.Hostname == "" || len(r.Hostname) > 255 {
		return model.Slave{}, fmt.Errorf("%w: a slave must give its hostname (at most 255 characters)", model.ErrInvalid)
	}
	if r.Slots < 1 || r.Slots > 1024 {
		return model.Slave{}, fmt.Errorf("%w: slots must be from 1 to 1024, got %d", model.ErrInvalid, r.Slots)
	}
	if !utf8.ValidString(r.Hostname) {
		return model.Slave{}, fmt.Errorf("%w: a slave's hostname must be UTF-8 text", model.ErrInvalid)
	}
	s := model.Slave{
		ID: model.NewToken(), Hostname: r.Hostname, Slots: r.Slots, Version: model.Clip(r.Version, 100),
		State: model.SlaveAlive, CPUs: r.Resources.CPUs, MemoryBytes: r.Resources.MemoryBytes,
		DiskFreeBytes: r.Resources.DiskFreeBytes, RegisteredAt: m.now(),
	}
	if err := m.store.RegisterSlave(ctx, s); err != nil {
		return model.Slave{}, fmt.Errorf("register slave: %w", err)
	}
	m.log.InfoContext(ctx, "slave started", "slave", s.ID, "host", s.Hostname, "slots", s.Slots, "version", s.Version)
	return s, nil
}

// Heartbeat records that a slave is alive and tells it what to stop: every
// run it reports whose lease is no longer current (canceled, or handed to
// another slave), or everything if the master had declared it lost. It also
// reconciles the store with the slave: a run the store has on this slave
// that the slave neither runs nor holds a result of was lost (the start's
// answer never reached the slave, say) and is queued again. The store's
// running attempts on the slave answer both: their leases are the slave's
// current ones.
func (m *Master) Heartbeat(ctx context.Context, slaveID string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
	var reply protocol.HeartbeatReply
	before, err := m.store.Heartbeat(ctx, slaveID, m.now())
	if err != nil {
		if errors.Is(err, model.ErrUnavailable) {
			m.noteOutage()
		}
		return reply, fmt.Errorf("heartbeat: %w", err)
	}
	switch before.State {
	case model.SlaveTerminated:
		return reply, fmt.Errorf("%w: slave %s deregistered; register again", model.ErrNotFound, slaveID)
	case model.SlaveLost:
		// Its runs were given to other slaves when it was declared lost. It
		// must kill them without reporting, then it is a slave like any other.
		if err := m.store.SetSlaveState(ctx, slaveID, model.SlaveAlive, m.now()); err != nil {
			return reply, err
		}
		m.log.WarnContext(ctx, "lost slave is back; told to reset", "slave", slaveID, "host", before.Hostname)
		return protocol.HeartbeatReply{Reset: true}, nil
	}
	runs, err := m.store.RunningOn(ctx, slaveID)
	if err != nil {
		return reply, err
	}
	var lost []model.Attempt
	reply.Kill, lost = compareRuns(runs, hb, m.now().Add(-2*m.cfg.HeartbeatInterval))
	m.tails.note(slaveID, runs, hb.Tails, m.now())
	m.tails.noteCache(slaveID, hb.Cache)
	n := 0
	for _, a := range lost {
		err := m.store.RequeueRun(ctx, a.Lease, "its slave does not run it and holds no result of it", false, m.now())
		if err != nil && !errors.Is(err, model.ErrConflict) {
			return reply, err
		}
		n++
	}
	if n > 0 {
		m.log.WarnContext(ctx, "runs the slave does not know of were queued again", "slave", slaveID, "runs", n)
		m.poke()
	}
	// Said on every heartbeat, not once: a lost answer is no lost drain.
	reply.Drain = before.State == model.SlaveDraining
	return reply, nil
}

// compareRuns compares the runs the store has on a slave with those the
// slave reports. It returns the leases of reported runs that are no longer
// current (canceled, or handed to another slave), which the slave must
// kill, and the runs the slave neither runs nor holds a result of: they
// were lost (the start's answer never reached the slave, say). A run
// started after cutoff may not be in the heartbeat yet, and is not lost.
func compareRuns(runs []model.Attempt, hb protocol.Heartbeat, cutoff time.Time) (kill []string, lost []model.Attempt) {
	current := make(map[string]bool, len(runs))
	for _, a := range runs {
		current[a.Lease] = true
	}
	known := make(map[string]bool, len(hb.Running)+len(hb.Pending))
	for _, l := range hb.Running {
		known[l] = true
		if !current[l] {
			kill = append(kill, l)
		}
	}
	for _, l := range hb.Pending {
		known[l] = true
	}
	for _, a := range runs {
		if !known[a.Lease] && !a.StartedAt.After(cutoff) {
			lost = append(lost, a)
		}
	}
	return kill, lost
}

// Deregister ends a slave registration that leaves on its own. Runs it
// still holds go back to the queue: they were not failures.
func (m *Master) Deregister(ctx context.Context, slaveID string) error {
	if err := m.store.SetSlaveState(ctx, slaveID, model.SlaveTerminated, m.now()); err != nil {
		return fmt.Errorf("deregister: %w", err)
	}
	n, err := m.requeueAll(ctx, slaveID, "slave "+slaveID+" left")
	m.log.InfoContext(ctx, "slave terminated", "slave", slaveID, "requeued", n)
	return err
}

// Events returns recorded events, oldest first.
func (m *Master) Events(ctx context.Context, f store.EventFilter) ([]model.Event, error) {
	return m.store.Events(ctx, f)
}

// Slaves lists slave registrations.
func (m *Master) Slaves(ctx context.Context, aliveOnly bool) ([]model.Slave, error) {
	return m.store.ListSlaves(ctx, aliveOnly)
}

// reap declares lost the slaves that stopped heartbeating, and puts their
// runs back in the queue under new tokens.
func (m *Master) reap(ctx context.Context) error {
	return m.every(ctx, m.cfg.HeartbeatInterval, "reaper", func(ctx context.Context) error {
		_, err := m.ReapOnce(ctx)
		return err
	})
}

// ReapOnce runs one round of the reaper and returns the slaves it declared
// lost. Within StartGrace of the master's start, or of the last time the
// store could not record a heartbeat, it declares none: the silence was the
// master's, not the slaves'.
func (m *Master) ReapOnce(ctx context.Context) ([]string, error) {
	now := m.now()
	if m.inGrace() {
		return nil, nil
	}
	alive, err := m.store.ListSlaves(ctx, true)
	if err != nil {
		return nil, err
	}
	var lost []string
	var errs []error
	for _, s := range alive {
		if now.Sub(s.LastHeartbeat) <= m.cfg.HeartbeatTimeout {
			continue
		}
		if err := m.store.SetSlaveState(ctx, s.ID, model.SlaveLost, now); err != nil {
			errs = append(errs, err)
			continue
		}
		n, err := m.requeueAll(ctx, s.ID, fmt.Sprintf("slave %s (%s) lost", s.ID, s.Hostname))
		m.log.WarnContext(ctx, "slave lost", "slave", s.ID, "host", s.Hostname, "silent_for", now.Sub(s.LastHeartbeat).Round(1e6), "requeued", n)
		errs = append(errs, err)
		lost = append(lost, s.ID)
	}
	m.metrics.SlavesLost(len(lost))
	return lost, errors.Join(errs...)
}

// inGrace: the master started, or could not record a heartbeat, less than
// StartGrace ago. Silences that began then were the master's, not the
// slaves'.
func (m *Master) inGrace() bool {
	now := m.now()
	return now.Sub(m.born) < m.cfg.StartGrace || now.Sub(m.lastOutage()) < m.cfg.StartGrace
}

// noteOutage records that a heartbeat could not be recorded now.
func (m *Master) noteOutage() { m.outage.Store(m.now().UnixNano()) }

func (m *Master) lastOutage() time.Time { return time.Unix(0, m.outage.Load()) }

// requeueAll puts every run of a slave back in the queue.
func (m *Master) requeueAll(ctx context.Context, slaveID, reason string) (int, error) {
	m.tails.forget(slaveID)
	runs, err := m.store.RunningOn(ctx, slaveID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range runs {
		err := m.store.RequeueRun(ctx, a.Lease, reason, false, m.now())
		if errors.Is(err, model.ErrConflict) {
			continue // it finished meanwhile
		}
		if err != nil {
			return n, err
		}
		n++
	}
	m.metrics.Requeued(n)
	if n > 0 {
		m.poke()
	}
	return n, nil
}

// EndSlaves ends every live registration at once and queues their runs
// again. The embedded default calls it at start: its slaves lived in the
// process that stopped, so there is no point waiting for their heartbeats.
func (m *Master) EndSlaves(ctx context.Context, reason string) (int, error) {
	alive, err := m.store.ListSlaves(ctx, true)
	if err != nil {
		return 0, err
	}
	total := 0
	for _, s := range alive {
		if err := m.store.SetSlaveState(ctx, s.ID, model.SlaveTerminated, m.now()); err != nil {
			return total, err
		}
		n, err := m.requeueAll(ctx, s.ID, reason)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
