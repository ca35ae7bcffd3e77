package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
)

// attemptCols selects an attempt joined with its task; scanAttempt reads it.
const attemptCols = attemptColsOnly + " " + attemptFrom

const attemptColsOnly = `a.id, a.task_row, a.job_id, t.task_id, t.idx, a.attempt, t.description, t.isolate_hash,
	t.max_retries, a.state, a.token, COALESCE(a.lease, ''), a.priority, a.enqueued, a.entry_id,
	a.slave_id, a.slot, a.hostname, a.runs, a.submitted_at, a.started_at, a.finished_at,
	a.exit_code, a.stdout_key, a.stderr_key, a.artifact_key, a.missing, a.error,
	a.hot_items, a.cold_items, a.hot_bytes, a.cold_bytes, a.fetch_ms, a.cpu_ms, a.peak_memory, a.avoid_slave,
	a.hedge_token, COALESCE(a.hedge_lease, ''), a.hedge_slave, a.hedge_slot, a.hedge_started_at, t.expected_ms, t.timeout_ms,
	t.docker_image, a.image_pull_ms`

const attemptFrom = `FROM attempts a JOIN tasks t ON t.id = a.task_row`

type scanner interface{ Scan(dest ...any) error }

// scanAttempt reads an attempt, then the columns of extra, if any.
func scanAttempt(r scanner, extra ...any) (model.Attempt, error) {
	var a model.Attempt
	var state, missing string
	var prio int64
	var enq int
	var sub, start, fin int64
	var exit sql.NullInt64
	var fetchMS, cpuMS, hedgeStart, expectedMS, timeoutMS, pullMS int64
	dest := []any{&a.ID, &a.TaskRow, &a.JobID, &a.TaskID, &a.Index, &a.Attempt, &a.Description, &a.IsolateHash,
		&a.MaxRetries, &state, &a.Token, &a.Lease, &prio, &enq, &a.EntryID,
		&a.SlaveID, &a.Slot, &a.Hostname, &a.Runs, &sub, &start, &fin,
		&exit, &a.Outputs.Stdout, &a.Outputs.Stderr, &a.Outputs.Artifacts, &missing, &a.Error,
		&a.Inputs.HotItems, &a.Inputs.ColdItems, &a.Inputs.HotBytes, &a.Inputs.ColdBytes, &fetchMS,
		&cpuMS, &a.Usage.PeakMemory, &a.AvoidSlave,
		&a.Hedge.Token, &a.Hedge.Lease, &a.Hedge.SlaveID, &a.Hedge.Slot, &hedgeStart, &expectedMS, &timeoutMS,
		&a.DockerImage, &pullMS}
	var err error
	if len(extra) > 0 {
		err = r.Scan(append(dest, extra...)...)
	} else {
		err = r.Scan(dest...)
	}
	if err != nil {
		return a, err
	}
	a.State = model.State(state)
	a.Inputs.FetchTime = time.Duration(fetchMS) * time.Millisecond
	a.Usage.CPUTime = time.Duration(cpuMS) * time.Millisecond
	a.Usage.ImagePull = time.Duration(pullMS) * time.Millisecond
	a.Expected = time.Duration(expectedMS) * time.Millisecond
	a.Timeout = time.Duration(timeoutMS) * time.Millisecond
	a.Priority = uint32(prio)
	a.Enqueued = enq != 0
	a.SubmittedAt, a.StartedAt, a.FinishedAt = fromMS(sub), fromMS(start), fromMS(fin)
	a.Hedge.StartedAt = fromMS(hedgeStart)
	if exit.Valid {
		v := int(exit.Int64)
		a.ExitCode = &v
	}
	if missing != "" {
		a.Outputs.Missing = strings.Split(missing, ",")
	}
	return a, nil
}

// queryAttempts runs a SELECT of attemptCols.
func (s *Store) queryAttempts(ctx context.Context, q querier, text string, args ...any) ([]model.Attempt, error) {
	rows, err := s.query(ctx, q, text, args...)
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

// taskCols are the columns of a task's row that the rules and a start
// read, in scanTask's order.
const taskCols = `id, job_id, task_id, expected_ms, g_attempts, g_finished, g_succeeded, g_failed, g_timedout,
	g_canceled, g_retried, g_latest, max_retries, g_cancel, timeout_ms, artifact_globs, docker_image`

// taskRow is a task's row: what the rules see of it, and the rest of its
// spec.
type taskRow struct {
	lifecycle.Task
	timeoutMS int64
	globs     string
	docker    string
}

func scanTask(r scanner) (taskRow, error) {
	var t taskRow
	dest, done := t.dest()
	err := r.Scan(dest...)
	done()
	return t, err
}

// dest returns where to scan taskCols into t, and what to call after.
func (t *taskRow) dest() ([]any, func()) {
	var expMS int64
	var cancel int
	g := &t.Group
	return []any{&t.Row, &t.JobID, &t.TaskID, &expMS, &g.Attempts, &g.Finished, &g.Succeeded, &g.Failed,
			&g.TimedOut, &g.Canceled, &g.Retried, &g.Latest, &g.MaxRetries, &cancel, &t.timeoutMS, &t.globs, &t.docker},
		func() {
			t.Expected = time.Duration(expMS) * time.Millisecond
			g.Cancel = cancel != 0
		}
}

// spec is what a slave needs to run attempt a of t.
func (t taskRow) spec(a model.Attempt) (model.Spec, error) {
	sp := model.Spec{JobID: a.JobID, TaskID: a.TaskID, Attempt: a.Attempt, Description: a.Description,
		IsolateHash: a.IsolateHash, Timeout: time.Duration(t.timeoutMS) * time.Millisecond, DockerImage: t.docker}
	if err := json.Unmarshal([]byte(t.globs), &sp.ArtifactGlobs); err != nil {
		return sp, fmt.Errorf("task %s: artifact globs: %w", a.TaskID, err)
	}
	return sp, nil
}

// saveGroup writes a task's group summary back.
func (s *Store) saveGroup(ctx context.Context, tx *sql.Tx, t lifecycle.Task) error {
	g := t.Group
	_, err := s.exec(ctx, tx, s.q.saveGroup,
		g.Attempts, g.Finished, g.Succeeded, g.Failed, g.TimedOut, g.Canceled, g.Retried, g.Latest,
		g.MaxRetries, boolInt(g.Cancel), t.Row)
	return err
}

// saveAttempt writes every column of an attempt row that may change.
func (s *Store) saveAttempt(ctx context.Context, tx *sql.Tx, a model.Attempt) error {
	var exit any
	if a.ExitCode != nil {
		exit = *a.ExitCode
	}
	in := a.Inputs
	_, err := s.exec(ctx, tx, s.q.saveAttempt,
		string(a.State), a.Token, nullable(a.Lease), int64(a.Priority), boolInt(a.Enqueued), a.EntryID,
		a.SlaveID, a.Slot, a.Hostname, a.Runs, ms(a.StartedAt), ms(a.FinishedAt), exit,
		a.Outputs.Stdout, a.Outputs.Stderr, a.Outputs.Artifacts, strings.Join(a.Outputs.Missing, ","),
		a.Error, in.HotItems, in.ColdItems, in.HotBytes, in.ColdBytes, in.FetchTime.Milliseconds(),
		a.Usage.CPUTime.Milliseconds(), a.Usage.PeakMemory, a.Usage.ImagePull.Milliseconds(), a.AvoidSlave,
		a.Hedge.Token, nullable(a.Hedge.Lease), a.Hedge.SlaveID, a.Hedge.Slot, ms(a.Hedge.StartedAt), a.ID)
	return err
}

// insertAttempt writes a new attempt and returns its row id.
func (s *Store) insertAttempt(ctx context.Context, tx *sql.Tx, a model.Attempt) (int64, error) {
	res, err := s.exec(ctx, tx, s.q.insertAttempt,
		a.TaskRow, a.TaskRow, a.JobID, a.Attempt, string(a.State), a.Token, int64(a.Priority), ms(a.SubmittedAt), a.Error, a.AvoidSlave)
	if err != nil {
		return 0, err
	}
	return res.LastInsertId()
}

// counterCols are the jobs columns of the counters: model.Counts names
// them.
var counterCols = strings.Join(model.CounterNames(), ", ")

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nullable stores "" as NULL, for unique columns that many rows leave
// empty.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
