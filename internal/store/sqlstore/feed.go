package sqlstore

import (
	"context"
	"database/sql"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// Backlog implements store.Store. Each half of the union walks the index
// attempts_feed (state, enqueued, job_id, priority, id) in its order.
func (s *Store) Backlog(ctx context.Context) ([]store.JobBacklog, error) {
	queued := string(model.Queued)
	rows, err := s.query(ctx, s.r, s.q.backlog, int64(model.RetryBase), queued, queued)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	byJob := make(map[string]*store.JobBacklog)
	var out []*store.JobBacklog
	for rows.Next() {
		var job string
		var enqueued int
		var oldest int64
		var n, retries int
		if err := rows.Scan(&job, &enqueued, &oldest, &n, &retries); err != nil {
			return nil, s.classify(err)
		}
		b := byJob[job]
		if b == nil {
			b = &store.JobBacklog{JobID: job}
			byJob[job] = b
			out = append(out, b)
		}
		if enqueued == 0 {
			b.Oldest, b.Waiting, b.Retries = oldest, n, retries
		} else {
			b.InQueue = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err)
	}
	var backlog []store.JobBacklog
	for _, b := range out {
		if b.Waiting > 0 {
			backlog = append(backlog, *b)
		}
	}
	return backlog, nil
}

// Waiting implements store.Store.
func (s *Store) Waiting(ctx context.Context, jobID string, limit int) ([]model.Attempt, error) {
	out, err := s.queryAttempts(ctx, s.r, s.q.waiting, string(model.Queued), jobID, limit)
	return out, s.classify(err)
}

// MarkEnqueued implements store.Store.
func (s *Store) MarkEnqueued(ctx context.Context, attemptID int64, token string, entryID uint64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, s.q.markEnqueued, entryID, attemptID, token, string(model.Queued))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 1 {
			return err
		}
		// A slave may have reserved and started the entry before it was
		// recorded here: that is the entry doing its job.
		var state string
		err = s.queryRow(ctx, tx, s.q.enqueuedState, attemptID, token).Scan(&state)
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
	out, err := s.queryAttempts(ctx, s.r, s.q.enqueued, string(model.Queued), after, limit)
	return out, s.classify(err)
}

// Unenqueue implements store.Store.
func (s *Store) Unenqueue(ctx context.Context, attemptID int64, entryID uint64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, s.q.unenqueue, attemptID, entryID, string(model.Queued))
		return err
	})
}
