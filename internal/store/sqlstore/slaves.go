package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
)

const slaveCols = `s.id, s.hostname, s.slots, s.version, s.state, s.cpus, s.memory_bytes,
	s.disk_free_bytes, s.registered_at, s.last_heartbeat`

func scanSlave(r scanner, extra ...any) (model.Slave, error) {
	var sl model.Slave
	var state string
	var reg, hb int64
	dest := append([]any{&sl.ID, &sl.Hostname, &sl.Slots, &sl.Version, &state, &sl.CPUs,
		&sl.MemoryBytes, &sl.DiskFreeBytes, &reg, &hb}, extra...)
	err := r.Scan(dest...)
	sl.State = model.SlaveState(state)
	sl.RegisteredAt, sl.LastHeartbeat = fromMS(reg), fromMS(hb)
	return sl, err
}

// RegisterSlave implements store.Store.
func (s *Store) RegisterSlave(ctx context.Context, sl model.Slave) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO slaves (id, hostname, slots, version, state, cpus,
			memory_bytes, disk_free_bytes, registered_at, last_heartbeat) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sl.ID, sl.Hostname, sl.Slots, sl.Version, string(model.SlaveAlive), sl.CPUs, sl.MemoryBytes,
			sl.DiskFreeBytes, ms(sl.RegisteredAt), ms(sl.RegisteredAt))
		if err != nil && s.d.Duplicate(err) {
			return fmt.Errorf("slave %s: %w", sl.ID, model.ErrExists)
		} else if err != nil {
			return err
		}
		return s.event(ctx, tx, model.Event{At: sl.RegisteredAt, Kind: model.EventSlaveStarted, SlaveID: sl.ID, Attempt: -1,
			Detail: fmt.Sprintf("%s, %d slots, version %s", sl.Hostname, sl.Slots, sl.Version)})
	})
}

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, slaveID string, now time.Time) (model.Slave, error) {
	var sl model.Slave
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		sl, err = scanSlave(s.queryRow(ctx, tx, s.q.slaveLocked, slaveID))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("slave %s: %w", slaveID, model.ErrNotFound)
		} else if err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, s.q.heartbeat, ms(now), slaveID)
		return err
	})
	return sl, err
}

// GetSlave implements store.Store.
func (s *Store) GetSlave(ctx context.Context, slaveID string) (model.Slave, error) {
	sl, err := scanSlave(s.queryRow(ctx, s.r, s.q.getSlave, slaveID))
	if errors.Is(err, sql.ErrNoRows) {
		return sl, fmt.Errorf("slave %s: %w", slaveID, model.ErrNotFound)
	}
	return sl, s.classify(err)
}

// SetSlaveState implements store.Store.
func (s *Store) SetSlaveState(ctx context.Context, slaveID string, state model.SlaveState, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var old string
		err := s.queryRow(ctx, tx, `SELECT state FROM slaves WHERE id = ?`+s.d.ForUpdate, slaveID).Scan(&old)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("slave %s: %w", slaveID, model.ErrNotFound)
		} else if err != nil {
			return err
		}
		ended, ev, changed := lifecycle.SetSlave(slaveID, model.SlaveState(old), state, now)
		if !changed {
			return nil
		}
		if _, err := s.exec(ctx, tx, `UPDATE slaves SET state = ?, ended_at = ? WHERE id = ?`, string(state), ms(ended), slaveID); err != nil {
			return err
		}
		return s.event(ctx, tx, ev)
	})
}

// ListSlaves implements store.Store.
func (s *Store) ListSlaves(ctx context.Context, aliveOnly bool) ([]model.Slave, error) {
	where := ""
	args := []any{string(model.Running)}
	if aliveOnly {
		where = "WHERE s.state IN (?, ?)"
		args = append(args, string(model.SlaveAlive), string(model.SlaveDraining))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+slaveCols+`,
		(SELECT COUNT(*) FROM attempts a WHERE a.slave_id = s.id AND a.state = ?)
		FROM slaves s `+where+` ORDER BY CASE s.state WHEN 'alive' THEN 0 WHEN 'draining' THEN 1 ELSE 2 END, s.registered_at DESC`, args...)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	var out []model.Slave
	for rows.Next() {
		var running int
		sl, err := scanSlave(rows, &running)
		if err != nil {
			return nil, s.classify(err)
		}
		sl.Running = running
		out = append(out, sl)
	}
	return out, s.classify(rows.Err())
}

// RunningOn implements store.Store.
func (s *Store) RunningOn(ctx context.Context, slaveID string) ([]model.Attempt, error) {
	found, err := s.queryAttempts(ctx, s.r, s.q.runningOn, slaveID, string(model.Running), slaveID, string(model.Running))
	var out []model.Attempt
	for _, a := range found {
		if a.SlaveID == slaveID {
			out = append(out, a)
		}
		if a.Hedge.Lease != "" && a.Hedge.SlaveID == slaveID {
			out = append(out, a.AsHedge())
		}
	}
	return out, s.classify(err)
}
