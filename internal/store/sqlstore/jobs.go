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

// The multi-row statements of a submission, for n rows. Those of
// insertBatch rows are prepared: a large job runs them again and again.
func insertTasksSQL(n int) string {
	return `INSERT INTO tasks (job_id, task_id, idx, isolate_hash, description, timeout_ms, max_retries,
		artifact_globs, docker_image, expected_ms, g_attempts, g_retried, g_latest, g_finished, g_failed) VALUES ` + rowsOf(n, taskInsertCols)
}

func insertAttemptsSQL(n int) string {
	return `INSERT INTO attempts (task_row, task_idx, job_id, attempt, state, token, priority, submitted_at,
		finished_at, stderr_key, error) VALUES ` +
		rowsOf(n, attemptInsertCols)
}

func durationsSQL(n int) string {
	return `SELECT desc_hash, avg_ms, recent FROM durations WHERE desc_hash IN (` + placeholders(n) + `)`
}

const taskInsertCols, attemptInsertCols = 15, 11

// rowsOf is "(?,...,?),...,(?,...,?)": n rows of cols marks.
func rowsOf(n, cols int) string {
	row := "(" + placeholders(cols) + ")"
	var b strings.Builder
	b.Grow(n * (len(row) + 1))
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// CreateJob implements store.Store.
func (s *Store) CreateJob(ctx context.Context, job model.NewJob, now time.Time) error {
	return s.BeginJob(ctx, job, len(job.Tasks), time.Time{}, now)
}

// BeginJob implements store.Store.
func (s *Store) BeginJob(ctx context.Context, job model.NewJob, first int, until, now time.Time) error {
	sub, err := lifecycle.Submit(job, now)
	if err != nil {
		return err
	}
	first = min(max(first, 0), len(job.Tasks))
	writing := int64(0)
	if first < len(job.Tasks) {
		writing = max(ms(until), 1)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		// A job whose every task was refused is finished as it is written.
		finished := lifecycle.JobChange{Counts: sub.Counts}.Apply(model.Job{}, now).FinishedAt
		args := append([]any{job.ID, job.User, job.Name, ms(now), ms(finished), job.MaxFailures, boolInt(job.Hedge), writing},
			counterValues(&sub.Counts)...)
		_, err := s.exec(ctx, tx, `INSERT INTO jobs (id, user, name, submitted_at, finished_at, max_failures, hedge, writing_until, `+
			counterCols+`) VALUES (`+placeholders(len(args))+`)`, args...)
		if err != nil {
			if s.d.Duplicate(err) {
				return fmt.Errorf("%w: job %s", model.ErrExists, job.ID)
			}
			return err
		}
		if err := s.insertPart(ctx, tx, job, sub.Groups, 0, first, now); err != nil {
			return err
		}
		return s.event(ctx, tx, sub.Event)
	})
}

// WriteTasks implements store.Store. The rows go in before the job's row
// is locked, the order in which a cancel takes its locks (tasks, then the
// job), so that the two wait for each other rather than deadlock.
func (s *Store) WriteTasks(ctx context.Context, job model.NewJob, from, to int, until, now time.Time) error {
	from, to = min(max(from, 0), len(job.Tasks)), min(max(to, 0), len(job.Tasks))
	if from >= to {
		return fmt.Errorf("%w: no tasks %d to %d in job %s", model.ErrInvalid, from, to, job.ID)
	}
	part := job
	part.Tasks = job.Tasks[from:to]
	sub, err := lifecycle.Submit(part, now)
	if err != nil {
		return err
	}
	writing := int64(0)
	if to < len(job.Tasks) {
		writing = max(ms(until), 1)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Looked at first without a lock, for a clear refusal rather than
		// a foreign key's; then again, locked, once the rows are in.
		if _, _, err := s.writingMark(ctx, tx, job.ID, ""); err != nil {
			return err
		}
		if err := s.insertPart(ctx, tx, part, sub.Groups, 0, len(part.Tasks), now); err != nil {
			return err
		}
		_, canceled, err := s.writingMark(ctx, tx, job.ID, s.d.ForUpdate)
		if err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `UPDATE jobs SET writing_until = ? WHERE id = ?`, writing, job.ID); err != nil {
			return err
		}
		if canceled {
			_, err := s.cancelIn(ctx, tx, job.ID, now)
			return err
		}
		return nil
	})
}

// writingMark reads a job's writing mark and whether it is canceled:
// ErrNotFound for no job, ErrConflict for a job written whole.
func (s *Store) writingMark(ctx context.Context, tx *sql.Tx, jobID, lock string) (int64, bool, error) {
	var mark int64
	var canceled int
	err := s.queryRow(ctx, tx, `SELECT writing_until, canceled FROM jobs WHERE id = ?`+lock, jobID).Scan(&mark, &canceled)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, fmt.Errorf("job %s: %w", jobID, model.ErrNotFound)
	}
	if err != nil {
		return 0, false, err
	}
	if mark == 0 {
		return 0, false, fmt.Errorf("%w: job %s is written whole", model.ErrConflict, jobID)
	}
	return mark, canceled != 0, nil
}

// insertPart writes job.Tasks[from:to] and their first attempts.
func (s *Store) insertPart(ctx context.Context, tx *sql.Tx, job model.NewJob, groups []model.Group, from, to int, now time.Time) error {
	if from >= to {
		return nil
	}
	if err := s.insertTasks(ctx, tx, job, groups, from, to); err != nil {
		return err
	}
	rows, err := s.taskRows(ctx, tx, job, from, to)
	if err != nil {
		return err
	}
	return s.insertFirstAttempts(ctx, tx, job, rows, from, to, now)
}

// Unwritten implements store.Store.
func (s *Store) Unwritten(ctx context.Context, before time.Time, limit int) ([]string, error) {
	return s.jobIDs(ctx, `SELECT id FROM jobs WHERE writing_until > 0 AND writing_until < ? ORDER BY writing_until, id LIMIT ?`,
		ms(before), limit)
}

// DropUnwritten implements store.Store.
func (s *Store) DropUnwritten(ctx context.Context, id string, before time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		mark, _, err := s.writingMark(ctx, tx, id, s.d.ForUpdate)
		if err != nil {
			return err
		}
		if mark >= ms(before) {
			return fmt.Errorf("%w: job %s is still being written", model.ErrConflict, id)
		}
		return s.deleteJobRows(ctx, tx, id)
	})
}

func (s *Store) insertTasks(ctx context.Context, tx *sql.Tx, job model.NewJob, groups []model.Group, from, to int) error {
	for start := from; start < to; start += insertBatch {
		end := min(start+insertBatch, to)
		args := make([]any, 0, (end-start)*taskInsertCols)
		for i := start; i < end; i++ {
			t := job.Tasks[i]
			globs, err := json.Marshal(nonNil(t.Spec.ArtifactGlobs))
			if err != nil {
				return err
			}
			args = append(args, job.ID, t.TaskID, t.Index, t.Spec.IsolateHash, t.Spec.Description,
				t.Spec.Timeout.Milliseconds(), t.Spec.MaxRetries, string(globs), t.Spec.DockerImage,
				t.Expected.Milliseconds(), groups[i].Attempts, groups[i].Retried, groups[i].Latest,
				groups[i].Finished, groups[i].Failed)
		}
		if _, err := s.exec(ctx, tx, insertTasksSQL(end-start), args...); err != nil {
			if s.d.Duplicate(err) {
				return fmt.Errorf("%w: job %s lists a task id twice", model.ErrInvalid, job.ID)
			}
			return err
		}
	}
	return nil
}

// taskRows maps task id → row id for job.Tasks[from:to], the part just
// written: a job written in parts reads each part's rows once.
func (s *Store) taskRows(ctx context.Context, q querier, job model.NewJob, from, to int) (map[string]int64, error) {
	out := make(map[string]int64, to-from)
	for start := from; start < to; start += insertBatch {
		end := min(start+insertBatch, to)
		args := make([]any, 0, 1+end-start)
		args = append(args, job.ID)
		for _, t := range job.Tasks[start:end] {
			args = append(args, t.TaskID)
		}
		if err := s.scanTaskRows(ctx, q, taskRowsSQL(end-start), args, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func taskRowsSQL(n int) string {
	return `SELECT task_id, id FROM tasks WHERE job_id = ? AND task_id IN (` + placeholders(n) + `)`
}

func (s *Store) scanTaskRows(ctx context.Context, q querier, query string, args []any, out map[string]int64) error {
	rows, err := s.query(ctx, q, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id string
		var row int64
		if err := rows.Scan(&id, &row); err != nil {
			return err
		}
		out[id] = row
	}
	return rows.Err()
}

func (s *Store) insertFirstAttempts(ctx context.Context, tx *sql.Tx, job model.NewJob, taskRows map[string]int64, from, to int, now time.Time) error {
	for start := from; start < to; start += insertBatch {
		end := min(start+insertBatch, to)
		args := make([]any, 0, (end-start)*attemptInsertCols)
		for i := start; i < end; i++ {
			t := job.Tasks[i]
			state, finished, stderr, why := model.Queued, int64(0), "", ""
			if r := t.Refused; r != nil {
				state, finished, stderr, why = model.Failed, ms(now), r.Stderr, r.Error
			}
			args = append(args, taskRows[t.TaskID], t.Index, job.ID, t.Spec.Attempt, string(state),
				s.newID(), int64(t.Priority), ms(now), finished, stderr, why)
		}
		if _, err := s.exec(ctx, tx, insertAttemptsSQL(end-start), args...); err != nil {
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
	j, err := scanJob(s.queryRow(ctx, tx, s.q.jobLocked, jobID))
	if err != nil {
		return fmt.Errorf("job %s: %w", jobID, err)
	}
	j = c.Apply(j, now)
	in := j.Inputs
	args := append([]any{ms(j.FinishedAt), boolInt(j.Canceled), in.HotItems, in.ColdItems, in.HotBytes, in.ColdBytes,
		in.FetchTime.Milliseconds()}, counterValues(&j.Counts)...)
	_, err = s.exec(ctx, tx, s.q.saveJob, append(args, jobID)...)
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
	j, err := scanJob(s.queryRow(ctx, s.r, s.q.getJob, id))
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

// PageAttempts implements store.Store. The keyset (task index, attempt)
// walks the index attempts_page (job_id, task_idx, attempt) in its order.
func (s *Store) PageAttempts(ctx context.Context, jobID string, p store.AttemptPage) ([]model.Attempt, error) {
	text, args := pageQuery(jobID, p)
	return s.jobAttempts(ctx, jobID, text, args)
}

// jobAttempts reads the attempts of a query on job jobID's attempts; an
// empty answer for a job that does not exist is ErrNotFound.
func (s *Store) jobAttempts(ctx context.Context, jobID, text string, args []any) ([]model.Attempt, error) {
	out, err := s.queryAttempts(ctx, s.r, text, args...)
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

// PagePlan returns the database's plan for PageAttempts(jobID, p), one
// line per step (SQLite's EXPLAIN QUERY PLAN, MySQL's EXPLAIN rows): the
// tests check with it that a page is read through the indexes.
func (s *Store) PagePlan(ctx context.Context, jobID string, p store.AttemptPage) ([]string, error) {
	text, args := pageQuery(jobID, p)
	return s.plan(ctx, text, args)
}

// plan returns the database's plan for a SELECT, one line per step.
func (s *Store) plan(ctx context.Context, text string, args []any) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, s.d.Explain+" "+text, args...)
	if err != nil {
		return nil, s.classify(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return nil, err
	}
	var plan []string
	for rows.Next() {
		vals := make([]sql.NullString, len(cols))
		dest := make([]any, len(cols))
		for i := range vals {
			dest[i] = &vals[i]
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, err
		}
		var line []string
		for i, v := range vals {
			line = append(line, cols[i]+"="+v.String)
		}
		plan = append(plan, strings.Join(line, " "))
	}
	return plan, rows.Err()
}

// pageQuery is the statement of PageAttempts.
func pageQuery(jobID string, p store.AttemptPage) (string, []any) {
	where := "WHERE a.job_id = ?"
	args := []any{jobID}
	if len(p.States) > 0 {
		where += " AND a.state IN (" + placeholders(len(p.States)) + ")"
		for _, st := range p.States {
			args = append(args, string(st))
		}
	}
	if c := p.After; c != nil {
		// The bound on task_idx alone is what the index can seek to.
		where += " AND a.task_idx >= ? AND (a.task_idx > ? OR a.attempt > ?)"
		args = append(args, c.Index, c.Index, c.Attempt)
	}
	where += " ORDER BY a.task_idx, a.attempt"
	if p.Limit > 0 {
		where += " LIMIT ?"
		args = append(args, p.Limit)
	}
	return "SELECT " + attemptCols + " " + where, args
}

// GetAttempt implements store.Store.
func (s *Store) GetAttempt(ctx context.Context, jobID, taskID string, attempt int) (model.Attempt, error) {
	out, err := s.queryAttempts(ctx, s.r, "SELECT "+attemptCols+" WHERE a.job_id = ? AND t.task_id = ? AND a.attempt = ?", jobID, taskID, attempt)
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
		rows, err := s.query(ctx, s.r, durationsSQL(len(part)), part...)
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
	_, err := s.exec(ctx, tx, s.q.upsertDuration, descHash(description), description, d.Milliseconds(), 1, ms(now), d.Milliseconds())
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
