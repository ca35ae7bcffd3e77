package sqlstore

import (
	"context"
	"database/sql"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// event records e in tx: the state changes of attempts and slaves write
// their event in their own transaction, so the log never disagrees with
// the rows.
func (s *Store) event(ctx context.Context, tx *sql.Tx, e model.Event) error {
	// The column holds 1000 characters; a cut inside a character would
	// leave bytes MySQL refuses.
	e.Detail = model.Clip(e.Detail, 1000)
	_, err := s.exec(ctx, tx, s.q.event, ms(e.At), string(e.Kind), e.SlaveID, e.JobID, e.TaskID, e.Attempt, e.Detail)
	return err
}

// AddEvent implements store.Store.
func (s *Store) AddEvent(ctx context.Context, e model.Event) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return s.event(ctx, tx, e) })
}

// Events implements store.Store.
func (s *Store) Events(ctx context.Context, f store.EventFilter) ([]model.Event, error) {
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	where, args := "WHERE id > ?", []any{f.After}
	if f.SlaveID != "" {
		where += " AND slave_id = ?"
		args = append(args, f.SlaveID)
	}
	if f.JobID != "" {
		where += " AND job_id = ?"
		args = append(args, f.JobID)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT id, at, kind, slave_id, job_id, task_id, attempt, detail
		FROM events `+where+` ORDER BY id LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	var out []model.Event
	for rows.Next() {
		var e model.Event
		var at int64
		var kind string
		if err := rows.Scan(&e.ID, &at, &kind, &e.SlaveID, &e.JobID, &e.TaskID, &e.Attempt, &e.Detail); err != nil {
			return nil, s.classify(err)
		}
		e.At, e.Kind = fromMS(at), model.EventKind(kind)
		out = append(out, e)
	}
	return out, s.classify(rows.Err())
}
