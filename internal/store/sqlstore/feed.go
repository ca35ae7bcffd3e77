package sqlstore

import (
	"context"
	"database/sql"

	"github.com/dist-test/dist_test/internal/model"
)

// ToEnqueue implements store.Store. Retries and runs queued again after a
// lost slave come first and ignore the window: they are late already, and
// a full window must not hold them back. Then jobs are served oldest first,
// each with at most window entries in the queue at once, which is what
// shares the slaves between jobs: a new job's tasks enter the queue beside
// an older job's instead of behind all of it.
func (s *Store) ToEnqueue(ctx context.Context, window, limit int) ([]model.Attempt, error) {
	out, err := queryAttempts(ctx, s.r, `WHERE a.state = ? AND a.enqueued = 0 AND a.priority <= ?
		ORDER BY a.priority, a.id LIMIT ?`, string(model.Queued), int64(model.RetryBase), limit)
	if err != nil {
		return nil, s.classify(err)
	}
	inQueue, err := s.countEnqueued(ctx)
	if err != nil {
		return nil, s.classify(err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT job_id, MIN(id) AS first FROM attempts
		WHERE state = ? AND enqueued = 0 GROUP BY job_id ORDER BY first`, string(model.Queued))
	if err != nil {
		return nil, s.classify(err)
	}
	var jobs []string
	for rows.Next() {
		var j string
		var first int64
		if err := rows.Scan(&j, &first); err != nil {
			rows.Close()
			return nil, s.classify(err)
		}
		jobs = append(jobs, j)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return nil, s.classify(err)
	}
	for _, j := range jobs {
		room := min(window-inQueue[j], limit-len(out))
		if room <= 0 {
			if len(out) >= limit {
				break
			}
			continue
		}
		more, err := queryAttempts(ctx, s.r, `WHERE a.state = ? AND a.enqueued = 0 AND a.job_id = ?
			AND a.priority > ? ORDER BY a.priority, a.id LIMIT ?`, string(model.Queued), j, int64(model.RetryBase), room)
		if err != nil {
			return nil, s.classify(err)
		}
		out = append(out, more...)
	}
	return out, nil
}

func (s *Store) countEnqueued(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT job_id, COUNT(*) FROM attempts
		WHERE state = ? AND enqueued = 1 GROUP BY job_id`, string(model.Queued))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var j string
		var n int
		if err := rows.Scan(&j, &n); err != nil {
			return nil, err
		}
		out[j] = n
	}
	return out, rows.Err()
}

// MarkEnqueued implements store.Store.
func (s *Store) MarkEnqueued(ctx context.Context, attemptID int64, token string, entryID uint64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE attempts SET enqueued = 1, entry_id = ?
			WHERE id = ? AND token = ? AND state = ?`, entryID, attemptID, token, string(model.Queued))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		// A slave may have reserved and started the entry before it was
		// recorded here: that is the entry doing its job.
		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM attempts WHERE id = ? AND token = ?`, attemptID, token).Scan(&state)
		if err == nil && model.State(state) == model.Running {
			return nil
		}
		if err != nil && err != sql.ErrNoRows {
			return err
		}
		return conflict("attempt %d is no longer queued under this token", attemptID)
	})
}

// Enqueued implements store.Store.
func (s *Store) Enqueued(ctx context.Context, after int64, limit int) ([]model.Attempt, error) {
	out, err := queryAttempts(ctx, s.r, `WHERE a.state = ? AND a.enqueued = 1 AND a.id > ? ORDER BY a.id LIMIT ?`,
		string(model.Queued), after, limit)
	return out, s.classify(err)
}

// Unenqueue implements store.Store.
func (s *Store) Unenqueue(ctx context.Context, attemptID int64, entryID uint64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE attempts SET enqueued = 0 WHERE id = ? AND entry_id = ? AND state = ?`,
			attemptID, entryID, string(model.Queued))
		return err
	})
}
