package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
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
		var job, user string
		var enqueued int
		var oldest int64
		var n, retries int
		if err := rows.Scan(&job, &user, &enqueued, &oldest, &n, &retries); err != nil {
			return nil, s.classify(err)
		}
		b := byJob[job]
		if b == nil {
			b = &store.JobBacklog{JobID: job, User: user}
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

// UserLoad implements store.Store.
func (s *Store) UserLoad(ctx context.Context) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT j.user, COUNT(*) FROM attempts a JOIN jobs j ON j.id = a.job_id
		WHERE a.state = ? OR (a.state = ? AND a.enqueued = 1) GROUP BY j.user`, string(model.Running), string(model.Queued))
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	out := make(map[string]int)
	for rows.Next() {
		var user string
		var n int
		if err := rows.Scan(&user, &n); err != nil {
			return nil, s.classify(err)
		}
		out[user] = n
	}
	return out, s.classify(rows.Err())
}

// Stragglers implements store.Store.
func (s *Store) Stragglers(ctx context.Context, now time.Time, limit int) ([]model.Attempt, error) {
	// HedgeAfter in SQL: max(2 × p90, p90 + 30 s), with the p90 in
	// tasks.expected_ms.
	out, err := s.queryAttempts(ctx, s.r, "SELECT "+attemptCols+` WHERE a.state = ? AND a.hedge_token = '' AND t.expected_ms > 0
		AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = a.job_id AND j.hedge = 1)
		AND a.started_at <= ? - CASE WHEN t.expected_ms >= 30000 THEN 2 * t.expected_ms ELSE t.expected_ms + 30000 END
		ORDER BY a.started_at, a.id LIMIT ?`, string(model.Running), ms(now), limit)
	return out, s.classify(err)
}

// Runs implements store.Store.
func (s *Store) Runs(ctx context.Context) (int, error) {
	var n, hedges int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(hedge_lease) FROM attempts WHERE state = ?`,
		string(model.Running)).Scan(&n, &hedges)
	return n + hedges, s.classify(err)
}

// HedgeAttempt implements store.Store.
func (s *Store) HedgeAttempt(ctx context.Context, attemptID int64, now time.Time) (model.Attempt, error) {
	var a model.Attempt
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, _, err := s.lockRun(ctx, tx, false, attemptID)
		if err != nil {
			return err
		}
		var ev model.Event
		if a, ev, err = lifecycle.Hedge(cur, s.newID, now); err != nil {
			return err
		}
		if err := s.saveAttempt(ctx, tx, a); err != nil {
			return err
		}
		return s.event(ctx, tx, ev)
	})
	return a, err
}

// Waiting implements store.Store.
func (s *Store) Waiting(ctx context.Context, jobID string, limit int) ([]model.Attempt, error) {
	out, err := s.queryAttempts(ctx, s.r, s.q.waiting, string(model.Queued), jobID, limit)
	return out, s.classify(err)
}

// Claim implements store.Store: one conditional update an attempt, in one
// transaction. A feeder that loses the race to another finds the row
// claimed once the winner commits (an update reads the latest row).
func (s *Store) Claim(ctx context.Context, attempts []model.Attempt) ([]model.Attempt, error) {
	var out []model.Attempt
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = out[:0]
		for _, a := range attempts {
			res, err := s.exec(ctx, tx, s.q.claim, a.ID, a.Token, string(model.Queued))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 1 {
				a.Enqueued, a.EntryID = true, 0
				out = append(out, a)
			}
		}
		return nil
	})
	return out, err
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
