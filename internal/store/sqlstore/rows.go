package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// attemptCols selects an attempt joined with its task; scanAttempt reads it.
const attemptCols = `a.id, a.task_row, a.job_id, t.task_id, t.idx, a.attempt, t.description, t.isolate_hash,
	t.max_retries, a.state, a.token, COALESCE(a.lease, ''), a.priority, a.enqueued, a.entry_id,
	a.slave_id, a.slot, a.hostname, a.runs, a.submitted_at, a.started_at, a.finished_at,
	a.exit_code, a.stdout_key, a.stderr_key, a.artifact_key, a.missing, a.error,
	a.hot_items, a.cold_items, a.hot_bytes, a.cold_bytes, a.fetch_ms
	FROM attempts a JOIN tasks t ON t.id = a.task_row`

type scanner interface{ Scan(dest ...any) error }

func scanAttempt(r scanner) (model.Attempt, error) {
	var a model.Attempt
	var state, missing string
	var prio int64
	var enq int
	var sub, start, fin int64
	var exit sql.NullInt64
	var fetchMS int64
	err := r.Scan(&a.ID, &a.TaskRow, &a.JobID, &a.TaskID, &a.Index, &a.Attempt, &a.Description, &a.IsolateHash,
		&a.MaxRetries, &state, &a.Token, &a.Lease, &prio, &enq, &a.EntryID,
		&a.SlaveID, &a.Slot, &a.Hostname, &a.Runs, &sub, &start, &fin,
		&exit, &a.Outputs.Stdout, &a.Outputs.Stderr, &a.Outputs.Artifacts, &missing, &a.Error,
		&a.Inputs.HotItems, &a.Inputs.ColdItems, &a.Inputs.HotBytes, &a.Inputs.ColdBytes, &fetchMS)
	if err != nil {
		return a, err
	}
	a.State = model.State(state)
	a.Inputs.FetchTime = time.Duration(fetchMS) * time.Millisecond
	a.Priority = uint32(prio)
	a.Enqueued = enq != 0
	a.SubmittedAt, a.StartedAt, a.FinishedAt = fromMS(sub), fromMS(start), fromMS(fin)
	if exit.Valid {
		v := int(exit.Int64)
		a.ExitCode = &v
	}
	if missing != "" {
		a.Outputs.Missing = strings.Split(missing, ",")
	}
	return a, nil
}

func queryAttempts(ctx context.Context, q querier, where string, args ...any) ([]model.Attempt, error) {
	rows, err := q.QueryContext(ctx, "SELECT "+attemptCols+" "+where, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []model.Attempt
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// groupCols are the columns of a task's model.Group, in scanGroup's order.
const groupCols = `g_attempts, g_finished, g_succeeded, g_failed, g_timedout, g_canceled,
	g_retried, g_latest, max_retries, g_cancel`

func scanGroup(r scanner, extra ...any) (model.Group, error) {
	var g model.Group
	var cancel int
	dest := append([]any{&g.Attempts, &g.Finished, &g.Succeeded, &g.Failed, &g.TimedOut,
		&g.Canceled, &g.Retried, &g.Latest, &g.MaxRetries, &cancel}, extra...)
	err := r.Scan(dest...)
	g.Cancel = cancel != 0
	return g, err
}

// saveGroup writes a task's group summary back.
func saveGroup(ctx context.Context, tx *sql.Tx, taskRow int64, g model.Group) error {
	_, err := tx.ExecContext(ctx, `UPDATE tasks SET g_attempts = ?, g_finished = ?, g_succeeded = ?,
		g_failed = ?, g_timedout = ?, g_canceled = ?, g_retried = ?, g_latest = ?, max_retries = ?,
		g_cancel = ? WHERE id = ?`,
		g.Attempts, g.Finished, g.Succeeded, g.Failed, g.TimedOut, g.Canceled, g.Retried, g.Latest,
		g.MaxRetries, boolInt(g.Cancel), taskRow)
	return err
}

// jobCounterCols are the jobs columns of model.Counts, in countsArgs' order.
var jobCounterCols = []string{"total_tasks", "finished_tasks", "running_tasks", "retried_tasks",
	"timedout_tasks", "failed_tasks", "succeeded_tasks", "canceled_tasks", "total_groups",
	"finished_groups", "failed_groups", "succeeded_groups", "flaky_groups", "flaky_tasks",
	"canceled_groups"}

func countsArgs(c model.Counts) []any {
	return []any{c.TotalTasks, c.FinishedTasks, c.RunningTasks, c.RetriedTasks, c.TimedoutTasks,
		c.FailedTasks, c.SucceededTasks, c.CanceledTasks, c.TotalGroups, c.FinishedGroups,
		c.FailedGroups, c.SucceededGroups, c.FlakyGroups, c.FlakyTasks, c.CanceledGroups}
}

func countsDest(c *model.Counts) []any {
	return []any{&c.TotalTasks, &c.FinishedTasks, &c.RunningTasks, &c.RetriedTasks, &c.TimedoutTasks,
		&c.FailedTasks, &c.SucceededTasks, &c.CanceledTasks, &c.TotalGroups, &c.FinishedGroups,
		&c.FailedGroups, &c.SucceededGroups, &c.FlakyGroups, &c.FlakyTasks, &c.CanceledGroups}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
