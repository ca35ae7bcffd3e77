package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
)

// lockTasks reads, for update, the rows of a job's tasks that match where.
func (s *Store) lockTasks(ctx context.Context, tx *sql.Tx, jobID, where string, args ...any) ([]lifecycle.Task, error) {
	rows, err := s.query(ctx, tx, `SELECT `+taskCols+` FROM tasks
		WHERE job_id = ? `+where+` ORDER BY id`+s.d.ForUpdate, append([]any{jobID}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []lifecycle.Task
	for rows.Next() {
		t, err := scanTask(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t.Task)
	}
	return out, rows.Err()
}

// jobExists is ErrNotFound for a job id that names no job.
func (s *Store) jobExists(ctx context.Context, tx *sql.Tx, jobID string) error {
	var one int
	err := s.queryRow(ctx, tx, `SELECT 1 FROM jobs WHERE id = ?`, jobID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("job %s: %w", jobID, model.ErrNotFound)
	}
	return err
}

// CancelJob implements store.Store.
func (s *Store) CancelJob(ctx context.Context, jobID string, now time.Time) ([]model.Attempt, error) {
	var canceled []model.Attempt
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		canceled, err = s.cancelIn(ctx, tx, jobID, now)
		return err
	})
	return canceled, err
}

// cancelIn is CancelJob within tx.
func (s *Store) cancelIn(ctx context.Context, tx *sql.Tx, jobID string, now time.Time) ([]model.Attempt, error) {
	tasks, err := s.lockTasks(ctx, tx, jobID, "AND g_finished < g_attempts")
	if err != nil {
		return nil, err
	}
	open, err := s.queryAttempts(ctx, tx, "SELECT "+attemptCols+" WHERE a.job_id = ? AND a.state IN (?, ?)"+s.d.ForUpdate,
		jobID, string(model.Queued), string(model.Running))
	if err != nil {
		return nil, err
	}
	if len(open) == 0 {
		// Nothing to cancel: the job is over, or there is no such job.
		return nil, s.jobExists(ctx, tx, jobID)
	}
	c := lifecycle.Cancel(jobID, tasks, open, now)
	// One statement ends them all, however many: the rows are locked
	// above, so it meets exactly the attempts of c.Attempts.
	_, err = s.exec(ctx, tx, `UPDATE attempts SET state = ?, finished_at = ?, error = ?, lease = NULL,
		hedge_lease = NULL, hedge_token = '' WHERE job_id = ? AND state IN (?, ?)`, string(c.End.State), ms(c.End.FinishedAt), c.End.Error,
		jobID, string(model.Queued), string(model.Running))
	if err != nil {
		return nil, err
	}
	for _, t := range c.Tasks {
		if err := s.saveGroup(ctx, tx, t); err != nil {
			return nil, err
		}
	}
	if err := s.moveJob(ctx, tx, jobID, c.Job, now); err != nil {
		return nil, err
	}
	return c.Attempts, s.event(ctx, tx, c.Event)
}

// Retry implements store.Store.
func (s *Store) Retry(ctx context.Context, jobID string, taskIDs []string, rule lifecycle.RetryRule, now time.Time) ([]string, error) {
	var retried []string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		retried = nil
		where, args := "", []any{}
		if len(taskIDs) > 0 {
			where = "AND task_id IN (" + placeholders(len(taskIDs)) + ")"
			for _, id := range taskIDs {
				args = append(args, id)
			}
		}
		tasks, err := s.lockTasks(ctx, tx, jobID, where, args...)
		if err != nil {
			return err
		}
		if len(tasks) == 0 {
			if err := s.jobExists(ctx, tx, jobID); err != nil {
				return err
			}
		}
		if missing := missingIDs(taskIDs, tasks); len(missing) > 0 {
			return fmt.Errorf("job %s has no task %s: %w", jobID, strings.Join(missing, ", "), model.ErrNotFound)
		}
		r := lifecycle.Retry(tasks, rule, s.newID, now)
		for i, a := range r.New {
			if _, err := s.insertAttempt(ctx, tx, a); err != nil {
				return err
			}
			if err := s.saveGroup(ctx, tx, r.Tasks[i]); err != nil {
				return err
			}
			retried = append(retried, a.TaskID)
		}
		return s.moveJob(ctx, tx, jobID, r.Job, now)
	})
	return retried, err
}

func missingIDs(want []string, got []lifecycle.Task) []string {
	have := make(map[string]bool, len(got))
	for _, t := range got {
		have[t.TaskID] = true
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
