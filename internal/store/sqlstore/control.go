package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// groupRow is a task's group summary with what a retry needs.
type groupRow struct {
	row      int64
	taskID   string
	expected time.Duration
	g        model.Group
}

// lockGroups reads, for update, the groups of a job's tasks that match where.
func (s *Store) lockGroups(ctx context.Context, tx *sql.Tx, jobID, where string, args ...any) ([]groupRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT `+groupCols+`, id, task_id, expected_ms FROM tasks
		WHERE job_id = ? `+where+` ORDER BY id`+s.d.ForUpdate, append([]any{jobID}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []groupRow
	for rows.Next() {
		var gr groupRow
		var expMS int64
		gr.g, err = scanGroup(rows, &gr.row, &gr.taskID, &expMS)
		if err != nil {
			return nil, err
		}
		gr.expected = time.Duration(expMS) * time.Millisecond
		out = append(out, gr)
	}
	return out, rows.Err()
}

// jobExists is ErrNotFound for a job id that names no job.
func jobExists(ctx context.Context, tx *sql.Tx, jobID string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM jobs WHERE id = ?`, jobID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("job %s: %w", jobID, model.ErrNotFound)
	}
	return err
}

// CancelJob implements store.Store.
func (s *Store) CancelJob(ctx context.Context, jobID string, now time.Time) ([]model.Attempt, error) {
	var canceled []model.Attempt
	err := s.tx(ctx, func(tx *sql.Tx) error {
		canceled = nil
		if err := jobExists(ctx, tx, jobID); err != nil {
			return err
		}
		groups, err := s.lockGroups(ctx, tx, jobID, "AND g_finished < g_attempts")
		if err != nil {
			return err
		}
		open, err := queryAttempts(ctx, tx, "WHERE a.job_id = ? AND a.state IN (?, ?)"+s.d.ForUpdate,
			jobID, string(model.Queued), string(model.Running))
		if err != nil {
			return err
		}
		if len(open) == 0 {
			return nil
		}
		// The lease goes with the cancel: a finish sent later by the run
		// that was killed is then refused, not taken for a repeat of a
		// finish that was recorded.
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET state = ?, finished_at = ?, error = ?, lease = NULL
			WHERE job_id = ? AND state IN (?, ?)`, string(model.Canceled), ms(now), "canceled",
			jobID, string(model.Queued), string(model.Running))
		if err != nil {
			return err
		}
		perTask := make(map[int64]int)
		for _, a := range open {
			perTask[a.TaskRow]++
		}
		var before, after model.Counts
		for _, gr := range groups {
			n := perTask[gr.row]
			if n == 0 {
				continue
			}
			before = before.Add(gr.g.Counts())
			for range n {
				gr.g.End(model.Canceled)
			}
			gr.g.Cancel = true
			after = after.Add(gr.g.Counts())
			if err := saveGroup(ctx, tx, gr.row, gr.g); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET canceled = 1 WHERE id = ?`, jobID); err != nil {
			return err
		}
		canceled = open
		if err := s.moveCounters(ctx, tx, jobID, before, after, now); err != nil {
			return err
		}
		return event(ctx, tx, model.Event{At: now, Kind: model.EventJobCanceled, JobID: jobID, Attempt: -1,
			Detail: fmt.Sprintf("%d unfinished attempts canceled", len(open))})
	})
	return canceled, err
}

// Retry implements store.Store.
func (s *Store) Retry(ctx context.Context, jobID string, taskIDs []string, now time.Time) ([]string, error) {
	var retried []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		retried = nil
		if err := jobExists(ctx, tx, jobID); err != nil {
			return err
		}
		where, args := "", []any{}
		if len(taskIDs) > 0 {
			where = "AND task_id IN (" + placeholders(len(taskIDs)) + ")"
			for _, id := range taskIDs {
				args = append(args, id)
			}
		}
		groups, err := s.lockGroups(ctx, tx, jobID, where, args...)
		if err != nil {
			return err
		}
		if missing := missingIDs(taskIDs, groups); len(missing) > 0 {
			return fmt.Errorf("job %s has no task %s: %w", jobID, strings.Join(missing, ", "), model.ErrNotFound)
		}
		var before, after model.Counts
		for _, gr := range groups {
			if !gr.g.IsFailed() {
				continue
			}
			before = before.Add(gr.g.Counts())
			n := gr.g.Latest + 1
			if err := s.insertAttempt(ctx, tx, gr.row, jobID, n, model.Priority(gr.expected, true), now); err != nil {
				return err
			}
			gr.g.Add(n)
			gr.g.MaxRetries = max(gr.g.MaxRetries, n)
			gr.g.Cancel = false
			after = after.Add(gr.g.Counts())
			if err := saveGroup(ctx, tx, gr.row, gr.g); err != nil {
				return err
			}
			retried = append(retried, gr.taskID)
		}
		if len(retried) == 0 {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE jobs SET canceled = 0 WHERE id = ?`, jobID); err != nil {
			return err
		}
		return s.moveCounters(ctx, tx, jobID, before, after, now)
	})
	return retried, err
}

func missingIDs(want []string, got []groupRow) []string {
	have := make(map[string]bool, len(got))
	for _, g := range got {
		have[g.taskID] = true
	}
	var missing []string
	for _, id := range want {
		if !have[id] {
			missing = append(missing, id)
		}
	}
	sort.Strings(missing)
	return missing
}

// RetryAttempt implements store.Store.
func (s *Store) RetryAttempt(ctx context.Context, jobID, taskID string, n int, now time.Time) (bool, error) {
	var queued bool
	err := s.tx(ctx, func(tx *sql.Tx) error {
		queued = false
		groups, err := s.lockGroups(ctx, tx, jobID, "AND task_id = ?", taskID)
		if err != nil {
			return err
		}
		if len(groups) == 0 {
			return fmt.Errorf("job %s has no task %s: %w", jobID, taskID, model.ErrNotFound)
		}
		gr := groups[0]
		if gr.g.Latest != n || gr.g.Cancel || gr.g.Latest >= gr.g.MaxRetries {
			return nil
		}
		var state string
		err = tx.QueryRowContext(ctx, `SELECT state FROM attempts WHERE task_row = ? AND attempt = ?`, gr.row, n).Scan(&state)
		if err != nil {
			return err
		}
		if st := model.State(state); !st.Final() || st == model.Passed {
			return nil
		}
		before := gr.g.Counts()
		if err := s.insertAttempt(ctx, tx, gr.row, jobID, n+1, model.Priority(gr.expected, true), now); err != nil {
			return err
		}
		gr.g.Add(n + 1)
		if err := saveGroup(ctx, tx, gr.row, gr.g); err != nil {
			return err
		}
		queued = true
		return s.moveCounters(ctx, tx, jobID, before, gr.g.Counts(), now)
	})
	return queued, err
}
