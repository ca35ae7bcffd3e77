package sqlstore

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// latestOfTask joins each task to its latest attempt: the task's state.
const latestOfTask = `FROM tasks t JOIN attempts a ON a.task_row = t.id AND a.attempt = t.g_latest`

// flakyTask holds for a task that failed (not by a cancel) and then passed.
const flakyTask = `t.g_succeeded > 0 AND t.g_failed > t.g_canceled`

// FindJobs implements store.Store.
func (s *Store) FindJobs(ctx context.Context, f model.JobFilter) ([]model.Job, error) {
	if f.Limit <= 0 {
		f.Limit = 100
	}
	where := "submitted_at >= ?"
	args := []any{ms(f.Since)}
	if f.User != "" {
		where += " AND user = ?"
		args = append(args, f.User)
	}
	if f.IDPrefix != "" {
		where += " AND id LIKE ? ESCAPE '!'"
		args = append(args, likePrefix(f.IDPrefix))
	}
	switch f.State {
	case model.JobAnyState:
	case model.JobRunning:
		where += " AND finished_groups < total_groups"
	case model.JobFailed:
		where += " AND failed_groups > 0"
	case model.JobPassed:
		where += " AND finished_groups = total_groups AND failed_groups = 0"
	case model.JobCanceled:
		where += " AND canceled <> 0"
	default:
		return nil, fmt.Errorf("%w: unknown job state %q", model.ErrInvalid, model.Clip(string(f.State), 40))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobCols+counterCols+` FROM jobs WHERE `+where+
		` ORDER BY submitted_at DESC, id DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	var out []model.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, s.classify(err)
		}
		out = append(out, j)
	}
	return out, s.classify(rows.Err())
}

// likePrefix is a LIKE pattern matching the strings that start with p,
// with '!' as the escape character (the one both databases read alike).
func likePrefix(p string) string {
	r := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_")
	return r.Replace(p) + "%"
}

// ActiveTasks implements store.Store, through attempts_job_state: only
// one attempt of a task is ever unfinished, so attempts count tasks.
func (s *Store) ActiveTasks(ctx context.Context, jobIDs []string) (map[string]model.Active, error) {
	out := make(map[string]model.Active)
	if len(jobIDs) == 0 {
		return out, nil
	}
	args := make([]any, 0, len(jobIDs)+2)
	for _, id := range jobIDs {
		args = append(args, id)
	}
	args = append(args, string(model.Queued), string(model.Running))
	rows, err := s.r.QueryContext(ctx, `SELECT job_id, state, COUNT(*) FROM attempts WHERE job_id IN (`+
		placeholders(len(jobIDs))+`) AND state IN (?, ?) GROUP BY job_id, state`, args...)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, state string
		var n int
		if err := rows.Scan(&id, &state, &n); err != nil {
			return nil, s.classify(err)
		}
		a := out[id]
		if model.State(state) == model.Running {
			a.Running = n
		} else {
			a.Queued = n
		}
		out[id] = a
	}
	return out, s.classify(rows.Err())
}

// TaskTabs implements store.Store.
func (s *Store) TaskTabs(ctx context.Context, jobID string) (model.TabCounts, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.state, COUNT(*), SUM(CASE WHEN `+flakyTask+` THEN 1 ELSE 0 END) `+
		latestOfTask+` WHERE t.job_id = ? GROUP BY a.state`, jobID)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	out := model.TabCounts{}
	for rows.Next() {
		var state string
		var n, flaky int
		if err := rows.Scan(&state, &n, &flaky); err != nil {
			return nil, s.classify(err)
		}
		out[model.TabAll] += n
		out[model.TabFlaky] += flaky
		if tab := model.TabOf(model.State(state)); tab != model.TabAll {
			out[tab] += n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, s.classify(err)
	}
	if out[model.TabAll] == 0 {
		if _, err := s.GetJob(ctx, jobID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// TaskPage implements store.Store. In task order it walks tasks_job_idx;
// the other orders sort the job's tasks of the tab, which for the largest
// jobs (10,000 tasks) takes milliseconds.
func (s *Store) TaskPage(ctx context.Context, jobID string, q model.TaskQuery) ([]model.Attempt, error) {
	text, args, err := taskPageQuery(jobID, q)
	if err != nil {
		return nil, err
	}
	return s.jobAttempts(ctx, jobID, text, args)
}

// TaskPagePlan returns the database's plan for TaskPage(jobID, q) (see
// PagePlan).
func (s *Store) TaskPagePlan(ctx context.Context, jobID string, q model.TaskQuery) ([]string, error) {
	text, args, err := taskPageQuery(jobID, q)
	if err != nil {
		return nil, err
	}
	return s.plan(ctx, text, args)
}

func taskPageQuery(jobID string, q model.TaskQuery) (string, []any, error) {
	where := " WHERE t.job_id = ?"
	args := []any{jobID}
	switch q.Tab {
	case model.TabAll:
	case model.TabFlaky:
		where += " AND " + flakyTask
	case model.TabFailed:
		where += " AND a.state IN (?, ?)"
		args = append(args, string(model.Failed), string(model.InfraFailed))
	case model.TabRunning, model.TabQueued, model.TabTimedOut, model.TabPassed, model.TabCanceled:
		where += " AND a.state = ?"
		args = append(args, string(q.Tab))
	default:
		return "", nil, fmt.Errorf("%w: unknown tab %q", model.ErrInvalid, model.Clip(string(q.Tab), 40))
	}
	switch q.Order {
	case model.OrderIndex:
		where += " ORDER BY t.idx"
	case model.OrderName:
		where += " ORDER BY t.description, t.idx"
	case model.OrderState:
		where += ` ORDER BY CASE a.state WHEN 'failed' THEN 0 WHEN 'infra_failed' THEN 0 WHEN 'timed_out' THEN 1
			WHEN 'running' THEN 2 WHEN 'queued' THEN 3 WHEN 'canceled' THEN 4 ELSE 5 END, t.idx`
	case model.OrderRuntime:
		where += ` ORDER BY CASE WHEN a.started_at = 0 THEN 0 WHEN a.finished_at = 0 THEN ? - a.started_at
			ELSE a.finished_at - a.started_at END DESC, t.idx`
		args = append(args, ms(q.Now))
	default:
		return "", nil, fmt.Errorf("%w: unknown order %q", model.ErrInvalid, model.Clip(string(q.Order), 40))
	}
	if q.Limit > 0 {
		where += " LIMIT ? OFFSET ?"
		args = append(args, q.Limit, max(q.Offset, 0))
	}
	return "SELECT " + attemptColsOnly + " " + latestOfTask + where, args, nil
}

// TaskAttempts implements store.Store.
func (s *Store) TaskAttempts(ctx context.Context, taskRows []int64) ([]model.Attempt, error) {
	if len(taskRows) == 0 {
		return nil, nil
	}
	args := make([]any, len(taskRows))
	for i, r := range taskRows {
		args[i] = r
	}
	out, err := s.queryAttempts(ctx, s.r, "SELECT "+attemptCols+" WHERE a.task_row IN ("+placeholders(len(taskRows))+
		") ORDER BY a.task_row, a.attempt", args...)
	return out, s.classify(err)
}

// TestRuns implements store.Store, through tasks_description.
func (s *Store) TestRuns(ctx context.Context, description string, limit int) ([]model.Attempt, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := s.queryAttempts(ctx, s.r, "SELECT "+attemptCols+" WHERE t.description = ? ORDER BY a.id DESC LIMIT ?",
		description, limit)
	return out, s.classify(err)
}

// FlakyTests implements store.Store. Through tasks_failed it reads only
// the tasks that ever failed, a small share of all.
func (s *Store) FlakyTests(ctx context.Context, since time.Time, limit int) ([]model.FlakyTest, error) {
	if limit <= 0 {
		limit = 10
	}
	rows, err := s.r.QueryContext(ctx, `SELECT t.description, COUNT(*), MAX(j.submitted_at)
		FROM tasks t JOIN jobs j ON j.id = t.job_id
		WHERE t.g_failed > 0 AND `+flakyTask+` AND j.submitted_at >= ?
		GROUP BY t.description ORDER BY COUNT(*) DESC, MAX(j.submitted_at) DESC, t.description LIMIT ?`, ms(since), limit)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	var out []model.FlakyTest
	for rows.Next() {
		var f model.FlakyTest
		var last int64
		if err := rows.Scan(&f.Description, &f.Flaky, &last); err != nil {
			return nil, s.classify(err)
		}
		f.Last = fromMS(last)
		out = append(out, f)
	}
	return out, s.classify(rows.Err())
}
