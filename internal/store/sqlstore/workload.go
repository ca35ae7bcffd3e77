package sqlstore

import (
	"context"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Workload implements store.Store: one pass over the unfinished attempts
// (the feed's index on state), grouped by state.
func (s *Store) Workload(ctx context.Context, now time.Time) (model.Workload, error) {
	at := ms(now)
	rows, err := s.r.QueryContext(ctx, `SELECT a.state, COUNT(*),
		SUM(CASE WHEN t.expected_ms > 0 THEN 0 ELSE 1 END),
		SUM(CASE WHEN a.state = ? THEN t.expected_ms
			WHEN t.expected_ms > ? - a.started_at THEN t.expected_ms - (? - a.started_at) ELSE 0 END)
		`+attemptFrom+` WHERE a.state IN (?, ?) GROUP BY a.state`,
		string(model.Queued), at, at, string(model.Queued), string(model.Running))
	if err != nil {
		return model.Workload{}, s.classify(err)
	}
	defer rows.Close()
	var b model.Workload
	for rows.Next() {
		var state string
		var n, unknown, work int64
		if err := rows.Scan(&state, &n, &unknown, &work); err != nil {
			return model.Workload{}, s.classify(err)
		}
		d := time.Duration(work) * time.Millisecond
		switch model.State(state) {
		case model.Queued:
			b.Queued, b.QueuedUnknown, b.QueuedWork = int(n), int(unknown), d
		case model.Running:
			b.Running, b.RunningUnknown, b.RunningWork = int(n), int(unknown), d
		}
	}
	return b, s.classify(rows.Err())
}
