package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// OldJobs implements store.Store.
func (s *Store) OldJobs(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return s.jobIDs(ctx, `SELECT id FROM jobs WHERE submitted_at < ? ORDER BY submitted_at, id LIMIT ?`, ms(before), limit)
}

// jobIDs reads the job ids a query selects.
func (s *Store) jobIDs(ctx context.Context, query string, args ...any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, s.classify(err)
		}
		out = append(out, id)
	}
	return out, s.classify(rows.Err())
}

// DeleteJob implements store.Store. Children go first, for the foreign
// keys; the job's row goes last.
func (s *Store) DeleteJob(ctx context.Context, id string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.jobExists(ctx, tx, id); err != nil {
			return err
		}
		return s.deleteJobRows(ctx, tx, id)
	})
}

func (s *Store) deleteJobRows(ctx context.Context, tx *sql.Tx, id string) error {
	for _, q := range []string{
		`DELETE FROM attempts WHERE job_id = ?`,
		`DELETE FROM tasks WHERE job_id = ?`,
		`DELETE FROM events WHERE job_id = ?`,
		`DELETE FROM jobs WHERE id = ?`,
	} {
		if _, err := s.exec(ctx, tx, q, id); err != nil {
			return fmt.Errorf("deleting job %s: %w", id, err)
		}
	}
	return nil
}

// PruneBefore implements store.Store.
func (s *Store) PruneBefore(ctx context.Context, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		n = 0
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`DELETE FROM events WHERE at < ?`, []any{ms(before)}},
			{`DELETE FROM slaves WHERE state <> ? AND ended_at > 0 AND ended_at < ?`, []any{string(model.SlaveAlive), ms(before)}},
		} {
			res, err := s.exec(ctx, tx, q.sql, q.args...)
			if err != nil {
				return err
			}
			k, _ := res.RowsAffected()
			n += k
		}
		return nil
	})
	return n, err
}
