package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// insertBatch bounds the rows of one multi-row INSERT: well under both
// databases' limits on placeholders, large enough to make a 10,000-task
// submission a few dozen statements.
const insertBatch = 500

// CreateJob implements store.Store.
func (s *Store) CreateJob(ctx context.Context, job model.NewJob, now time.Time) error {
	sub, err := lifecycle.Submit(job, now)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		args := append([]any{job.ID, job.User, job.Name, ms(now), job.MaxFailures, boolInt(job.Hedge)}, counterValues(&sub.Counts)...)
		_, err := tx.ExecContext(ctx, `INSERT INTO jobs (id, user, name, submitted_at, max_failures, hedge, `+counterCols+
			`) VALUES (`+placeholders(len(args))+`)`, args...)
		if err != nil {
			if s.d.Duplicate(err) {
				return fmt.Errorf("%w: job %s", model.ErrExists, job.ID)
			}
			return err
		}
		if err := s.insertTasks(ctx, tx, job, sub.Groups); err != nil {
			return err
		}
		rows, err := s.taskRows(ctx, tx, job.ID)
		if err != nil {
			return err
		}
		if err := s.insertFirstAttempts(ctx, tx, job, rows, now); err != nil {
			return err
		}
		return event(ctx, tx, sub.Event)
	})
}

func (s *Store) insertTasks(ctx context.Context, tx *sql.Tx, job model.NewJob, groups []model.Group) error {
	const cols = `(job_id, task_id, idx, isolate_hash, description, timeout_ms, max_retries,
		artifact_globs, docker_image, expected_ms, g_attempts, g_retried, g_latest)`
	const n = 13
	for start := 0; start < len(job.Tasks); start += insertBatch {
		end := min(start+insertBatch, len(job.Tasks))
		var q strings.Builder
		q.WriteString("INSERT INTO tasks " + cols + " VALUES ")
		args := make([]any, 0, (end-start)*n)
		for i := start; i < end; i++ {
			t := job.Tasks[i]
			globs, err := json.Marshal(nonNil(t.Spec.ArtifactGlobs))
			if err != nil {
				return err
			}
			if i > start {
				q.WriteString(",")
			}
			q.WriteString("(" + placeholders(n) + ")")
			args = append(args, job.ID, t.TaskID, t.Index, t.Spec.IsolateHash, t.Spec.Description,
				t.Spec.Timeout.Milliseconds(), t.Spec.MaxRetries, string(globs), t.Spec.DockerImage,
				t.Expected.Milliseconds(), groups[i].Attempts, groups[i].Retried, groups[i].Latest)
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			if s.d.Duplicate(err) {
				return fmt.Errorf("%w: job %s lists a task id twice", model.ErrInvalid, job.ID)
			}
			return err
		}
	}
	return nil
}

// taskRows maps task id → row id for a job's tasks.
func (s *Store) taskRows(ctx context.Context, q querier, jobID string) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, `SELECT task_id, id FROM tasks WHERE job_id = ?`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var id string
		var row int64
		if err := rows.Scan(&id, &row); err != nil {
			return nil, err
		}
		out[id] = row
	}
	return out, rows.Err()
}

func (s *Store) insertFirstAttempts(ctx context.Context, tx *sql.Tx, job model.NewJob, taskRows map[string]int64, now time.Time) error {
	const cols = `(task_row, job_id, attempt, state, token, priority, submitted_at, error)`
	const n = 8
	for start := 0; start < len(job.Tasks); start += insertBatch {
		end := min(start+insertBatch, len(job.Tasks))
		var q strings.Builder
		q.WriteString("INSERT INTO attempts " + cols + " VALUES ")
		args := make([]any, 0, (end-start)*n)
		for i := start; i < end; i++ {
			t := job.Tasks[i]
			if i > start {
				q.WriteString(",")
			}
			q.WriteString("(" + placeholders(n) + ")")
			args = append(args, taskRows[t.TaskID], job.ID, t.Spec.Attempt, string(model.Queued),
				s.newID(), int64(t.Priority), ms(now), "")
		}
		if _, err := tx.ExecContext(ctx, q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// moveJob applies change c to job jobID's row: read for update, changed
// by the rule, written back.
func (s *Store) moveJob(ctx context.Context, tx *sql.Tx, jobID string, c lifecycle.JobChange, now time.Time) error {
	if c.IsZero() {
		return nil
	}
	j, err := scanJob(tx.QueryRowContext(ctx, `SELECT `+jobCols+counterCols+` FROM jobs WHERE id = ?`+s.d.ForUpdate, jobID))
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	j = c.Apply(j, now)
	in := j.Inputs
	args := append([]any{ms(j.FinishedAt), boolInt(j.Canceled), in.HotItems, in.ColdItems, in.HotBytes, in.ColdBytes,
		in.FetchTime.Milliseconds()}, counterValues(&j.Counts)...)
	_, err = tx.ExecContext(ctx, `UPDATE jobs SET finished_at = ?, canceled = ?, hot_items = ?, cold_items = ?,
		hot_bytes = ?, cold_bytes = ?, fetch_ms = ?, `+counterSets+` WHERE id = ?`, append(args, jobID)...)
	return err
}

// counterSets assigns every counter column.
var counterSets = strings.Join(model.CounterNames(), " = ?, ") + " = ?"

func counterValues(c *model.Counts) []any {
	var out []any
	for _, p := range c.Fields() {
		out = append(out, *p)
	}
	return out
}

func counterPointers(c *model.Counts) []any {
	var out []any
	for _, p := range c.Fields() {
		out = append(out, p)
	}
	return out
}

const jobCols = `id, user, name, submitted_at, finished_at, canceled, max_failures, hedge,
	hot_items, cold_items, hot_bytes, cold_bytes, fetch_ms, `

func scanJob(r scanner) (model.Job, error) {
	var j model.Job
	var sub, fin int64
	var canceled, hedge int
	var fetchMS int64
	dest := append([]any{&j.ID, &j.User, &j.Name, &sub, &fin, &canceled, &j.MaxFailures, &hedge, &j.Inputs.HotItems, &j.Inputs.ColdItems,
		&j.Inputs.HotBytes, &j.Inputs.ColdBytes, &fetchMS}, counterPointers(&j.Counts)...)
	if err := r.Scan(dest...); err != nil {
		return j, err
	}
	j.Inputs.FetchTime = time.Duration(fetchMS) * time.Millisecond
	j.SubmittedAt, j.FinishedAt, j.Canceled, j.Hedge = fromMS(sub), fromMS(fin), canceled != 0, hedge != 0
	return j, nil
}

// GetJob implements store.Store.
func (s *Store) GetJob(ctx context.Context, id string) (model.Job, error) {
	j, err := scanJob(s.r.QueryRowContext(ctx, `SELECT `+jobCols+counterCols+
		` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return j, fmt.Errorf("job %s: %w", id, model.ErrNotFound)
	}
	return j, s.classify(err)
}

// ListJobs implements store.Store.
func (s *Store) ListJobs(ctx context.Context, since time.Time, limit int) ([]model.Job, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+jobCols+counterCols+
		` FROM jobs WHERE submitted_at >= ? ORDER BY submitted_at DESC, id DESC LIMIT ?`, ms(since), limit)
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

// PageAttempts implements store.Store. The keyset (t.idx, a.attempt)
// walks the indexes tasks_job_idx and attempts_task_attempt.
func (s *Store) PageAttempts(ctx context.Context, jobID string, p store.AttemptPage) ([]model.Attempt, error) {
	where := "WHERE a.job_id = ? AND t.job_id = ?"
	args := []any{jobID, jobID}
	if len(p.States) > 0 {
		where += " AND a.state IN (" + placeholders(len(p.States)) + ")"
		for _, st := range p.States {
			args = append(args, string(st))
		}
	}
	if c := p.After; c != nil {
		where += " AND (t.idx > ? OR (t.idx = ? AND a.attempt > ?))"
		args = append(args, c.Index, c.Index, c.Attempt)
	}
	where += " ORDER BY t.idx, a.attempt"
	if p.Limit > 0 {
		where += " LIMIT ?"
		args = append(args, p.Limit)
	}
	out, err := queryAttempts(ctx, s.r, where, args...)
	if err != nil {
		return nil, s.classify(err)
	}
	if len(out) == 0 {
		if _, err := s.GetJob(ctx, jobID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// GetAttempt implements store.Store.
func (s *Store) GetAttempt(ctx context.Context, jobID, taskID string, attempt int) (model.Attempt, error) {
	out, err := queryAttempts(ctx, s.r, "WHERE a.job_id = ? AND t.task_id = ? AND a.attempt = ?", jobID, taskID, attempt)
	if err != nil {
		return model.Attempt{}, s.classify(err)
	}
	if len(out) == 0 {
		return model.Attempt{}, fmt.Errorf("attempt %d of task %s of job %s: %w", attempt, taskID, jobID, model.ErrNotFound)
	}
	return out[0], nil
}

// Durations implements store.Store.
func (s *Store) Durations(ctx context.Context, descriptions []string) (map[string]model.Runtime, error) {
	out := make(map[string]model.Runtime)
	byHash := make(map[string]string, len(descriptions))
	for _, d := range descriptions {
		byHash[descHash(d)] = d
	}
	hashes := make([]any, 0, len(byHash))
	for h := range byHash {
		hashes = append(hashes, h)
	}
	for start := 0; start < len(hashes); start += insertBatch {
		part := hashes[start:min(start+insertBatch, len(hashes))]
		rows, err := s.r.QueryContext(ctx, `SELECT desc_hash, avg_ms, recent FROM durations WHERE desc_hash IN (`+
			placeholders(len(part))+`)`, part...)
		if err != nil {
			return nil, s.classify(err)
		}
		for rows.Next() {
			var h string
			var avg int64
			var recent string
			if err := rows.Scan(&h, &avg, &recent); err != nil {
				rows.Close()
				return nil, s.classify(err)
			}
			out[byHash[h]] = model.RuntimeOf(time.Duration(avg)*time.Millisecond, model.DecodeRecent(recent))
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.classify(err)
		}
	}
	return out, nil
}

// recordDuration folds a finished run's runtime into its description's
// history.
func (s *Store) recordDuration(ctx context.Context, tx *sql.Tx, description string, d time.Duration, now time.Time) error {
	_, err := tx.ExecContext(ctx, s.d.UpsertDuration, descHash(description), description, d.Milliseconds(), 1, ms(now), d.Milliseconds())
	return err
}

// descHash keys the history: descriptions may be longer than an index allows.
func descHash(d string) string {
	h := sha256.Sum256([]byte(d))
	return hex.EncodeToString(h[:])
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
