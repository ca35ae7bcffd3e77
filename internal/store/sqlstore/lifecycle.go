package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// Lock order, everywhere: task row, then attempt rows, then the job row.
// Keeping one order is what keeps MySQL free of deadlocks between a finish
// and a cancel of the same job.

// StartAttempt implements store.Store.
func (s *Store) StartAttempt(ctx context.Context, req store.StartRequest, now time.Time) (model.Attempt, model.Spec, error) {
	var a model.Attempt
	var spec model.Spec
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		a, err = s.lockAttempt(ctx, tx, "a.id = ?", req.AttemptID)
		if err != nil {
			return err
		}
		if a.Token != req.Token {
			return conflict("queue entry for attempt %d of %s is stale: the attempt was queued again or canceled", a.Attempt, a.TaskID)
		}
		switch {
		case a.State == model.Queued:
		case a.State == model.Running && req.EntryID != 0 && a.EntryID == req.EntryID && !req.Takeover:
			return &store.HeldError{SlaveID: a.SlaveID}
		case a.State == model.Running && req.EntryID != 0 && a.EntryID == req.EntryID:
			// The same entry came back: its lease (TTR) ran out, so the queue
			// handed it on, and the caller found the holder gone. The new run
			// supersedes the old one, whose lease stops being current here.
		case a.State == model.Running:
			return conflict("attempt %d of %s is already running on %s", a.Attempt, a.TaskID, a.SlaveID)
		default:
			return conflict("attempt %d of %s has already ended: %s", a.Attempt, a.TaskID, a.State)
		}
		detail := fmt.Sprintf("run %d on slot %d", a.Runs+1, req.Slot)
		if a.State == model.Running {
			detail += fmt.Sprintf(", taking over from %s whose lease ran out", a.SlaveID)
		}
		lease := s.newID()
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET state = ?, lease = ?, slave_id = ?, slot = ?,
			hostname = ?, started_at = ?, runs = runs + 1, entry_id = ?, enqueued = 1 WHERE id = ?`,
			string(model.Running), lease, req.SlaveID, req.Slot, req.Hostname, ms(now), req.EntryID, a.ID)
		if err != nil {
			return err
		}
		a.State, a.Lease, a.SlaveID, a.Slot, a.Hostname = model.Running, lease, req.SlaveID, req.Slot, req.Hostname
		a.StartedAt, a.EntryID, a.Enqueued = fromMS(ms(now)), req.EntryID, true
		a.Runs++
		if err := event(ctx, tx, attemptEvent(model.EventAttemptStarted, a, detail, ms(now))); err != nil {
			return err
		}
		spec, err = s.spec(ctx, tx, a)
		return err
	})
	return a, spec, err
}

func (s *Store) spec(ctx context.Context, q querier, a model.Attempt) (model.Spec, error) {
	sp := model.Spec{JobID: a.JobID, TaskID: a.TaskID, Attempt: a.Attempt, Description: a.Description, IsolateHash: a.IsolateHash}
	var timeoutMS int64
	var globs string
	err := q.QueryRowContext(ctx, `SELECT timeout_ms, artifact_globs, docker_image FROM tasks WHERE id = ?`,
		a.TaskRow).Scan(&timeoutMS, &globs, &sp.DockerImage)
	if err != nil {
		return sp, err
	}
	sp.Timeout = time.Duration(timeoutMS) * time.Millisecond
	if err := json.Unmarshal([]byte(globs), &sp.ArtifactGlobs); err != nil {
		return sp, fmt.Errorf("task %s: artifact globs: %w", a.TaskID, err)
	}
	return sp, nil
}

// lockAttempt reads one attempt for update, after locking its task row.
func (s *Store) lockAttempt(ctx context.Context, tx *sql.Tx, where string, args ...any) (model.Attempt, error) {
	found, err := queryAttempts(ctx, tx, "WHERE "+where, args...)
	if err != nil {
		return model.Attempt{}, err
	}
	if len(found) == 0 {
		return model.Attempt{}, conflict("no such attempt")
	}
	if s.d.ForUpdate == "" {
		return found[0], nil
	}
	if _, err := s.lockGroup(ctx, tx, found[0].TaskRow); err != nil {
		return model.Attempt{}, err
	}
	// Read it again under the lock: it may have changed since.
	found, err = queryAttempts(ctx, tx, "WHERE a.id = ?"+s.d.ForUpdate, found[0].ID)
	if err != nil {
		return model.Attempt{}, err
	}
	if len(found) == 0 {
		return model.Attempt{}, conflict("no such attempt")
	}
	return found[0], nil
}

// lockGroup reads a task's group summary for update.
func (s *Store) lockGroup(ctx context.Context, tx *sql.Tx, taskRow int64) (model.Group, error) {
	return scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupCols+` FROM tasks WHERE id = ?`+s.d.ForUpdate, taskRow))
}

// RunningByLease implements store.Store.
func (s *Store) RunningByLease(ctx context.Context, lease string) (model.Attempt, error) {
	found, err := queryAttempts(ctx, s.r, "WHERE a.lease = ?", lease)
	if err != nil {
		return model.Attempt{}, s.classify(err)
	}
	if len(found) == 0 || found[0].State != model.Running {
		return model.Attempt{}, conflict("lease is not current")
	}
	return found[0], nil
}

// FinishAttempt implements store.Store.
func (s *Store) FinishAttempt(ctx context.Context, lease string, r model.Result, now time.Time) (store.FinishOutcome, error) {
	var out store.FinishOutcome
	err := s.tx(ctx, func(tx *sql.Tx) error {
		out = store.FinishOutcome{}
		a, err := s.lockAttempt(ctx, tx, "a.lease = ?", lease)
		if errors.Is(err, model.ErrConflict) {
			return conflict("lease is not current: the run was canceled, lost or handed to another slave")
		} else if err != nil {
			return err
		}
		if a.State.Final() {
			out.Attempt, out.Duplicate = a, true
			next, err := queryAttempts(ctx, tx, "WHERE a.task_row = ? AND a.attempt = ?", a.TaskRow, a.Attempt+1)
			if err == nil && len(next) > 0 {
				out.Next = &next[0]
			}
			return err
		}
		if a.State != model.Running {
			return conflict("attempt %d of %s is %s, not running", a.Attempt, a.TaskID, a.State)
		}
		g, err := s.lockGroup(ctx, tx, a.TaskRow)
		if err != nil {
			return err
		}
		before := g.Counts()
		state := r.State()
		var exit any = r.ExitCode
		in := r.Inputs
		_, err = tx.ExecContext(ctx, `UPDATE attempts SET state = ?, finished_at = ?, exit_code = ?,
			stdout_key = ?, stderr_key = ?, artifact_key = ?, missing = ?, error = ?,
			hot_items = ?, cold_items = ?, hot_bytes = ?, cold_bytes = ?, fetch_ms = ? WHERE id = ?`,
			string(state), ms(now), exit, r.Outputs.Stdout, r.Outputs.Stderr, r.Outputs.Artifacts,
			strings.Join(r.Outputs.Missing, ","), r.Error,
			in.HotItems, in.ColdItems, in.HotBytes, in.ColdBytes, in.FetchTime.Milliseconds(), a.ID)
		if err != nil {
			return err
		}
		if in != (model.Inputs{}) {
			_, err = tx.ExecContext(ctx, `UPDATE jobs SET hot_items = hot_items + ?, cold_items = cold_items + ?,
				hot_bytes = hot_bytes + ?, cold_bytes = cold_bytes + ?, fetch_ms = fetch_ms + ? WHERE id = ?`,
				in.HotItems, in.ColdItems, in.HotBytes, in.ColdBytes, in.FetchTime.Milliseconds(), a.JobID)
			if err != nil {
				return err
			}
		}
		a.State, a.FinishedAt, a.Outputs, a.Error, a.Inputs = state, fromMS(ms(now)), r.Outputs, r.Error, in
		code := r.ExitCode
		a.ExitCode = &code
		out.Attempt = a
		g.End(state)
		if state != model.Passed && a.Attempt == g.Latest && g.RetriesLeft() {
			next, err := s.queueNext(ctx, tx, a, &g, now)
			if err != nil {
				return err
			}
			out.Next = next
		}
		if err := saveGroup(ctx, tx, a.TaskRow, g); err != nil {
			return err
		}
		if err := s.moveCounters(ctx, tx, a.JobID, before, g.Counts(), now); err != nil {
			return err
		}
		detail := string(state)
		if out.Next != nil {
			detail += "; attempt " + fmt.Sprint(out.Next.Attempt) + " queued"
		}
		if r.Error != "" {
			detail += ": " + r.Error
		}
		if err := event(ctx, tx, attemptEvent(model.EventAttemptFinished, a, detail, ms(now))); err != nil {
			return err
		}
		if r.Duration > 0 {
			return s.recordDuration(ctx, tx, a.Description, r.Duration, now)
		}
		return nil
	})
	return out, err
}

// queueNext queues the attempt after a, in the retry band of priorities.
func (s *Store) queueNext(ctx context.Context, tx *sql.Tx, a model.Attempt, g *model.Group, now time.Time) (*model.Attempt, error) {
	n := g.Latest + 1
	var expectedMS int64
	if err := tx.QueryRowContext(ctx, `SELECT expected_ms FROM tasks WHERE id = ?`, a.TaskRow).Scan(&expectedMS); err != nil {
		return nil, err
	}
	prio := model.Priority(time.Duration(expectedMS)*time.Millisecond, true)
	if err := s.insertAttempt(ctx, tx, a.TaskRow, a.JobID, n, prio, now); err != nil {
		return nil, err
	}
	g.Add(n)
	next, err := queryAttempts(ctx, tx, "WHERE a.task_row = ? AND a.attempt = ?", a.TaskRow, n)
	if err != nil || len(next) == 0 {
		return nil, errors.Join(err, fmt.Errorf("attempt %d of %s vanished", n, a.TaskID))
	}
	return &next[0], nil
}

// RequeueRun implements store.Store.
func (s *Store) RequeueRun(ctx context.Context, lease, reason string, keepEntry bool, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		a, err := s.lockAttempt(ctx, tx, "a.lease = ?", lease)
		if err != nil && !errors.Is(err, model.ErrConflict) {
			return err
		}
		if err != nil || a.State != model.Running {
			return conflict("lease is not current")
		}
		var expectedMS int64
		if err := tx.QueryRowContext(ctx, `SELECT expected_ms FROM tasks WHERE id = ?`, a.TaskRow).Scan(&expectedMS); err != nil {
			return err
		}
		prio := model.Priority(time.Duration(expectedMS)*time.Millisecond, true)
		kind := model.EventAttemptRequeued
		if keepEntry {
			kind = model.EventAttemptAborted
			_, err = tx.ExecContext(ctx, `UPDATE attempts SET state = ?, lease = NULL, priority = ?,
				slave_id = '', slot = 0, error = ? WHERE id = ?`, string(model.Queued), int64(prio), reason, a.ID)
		} else {
			_, err = tx.ExecContext(ctx, `UPDATE attempts SET state = ?, token = ?, lease = NULL, enqueued = 0,
				priority = ?, slave_id = '', slot = 0, error = ? WHERE id = ?`,
				string(model.Queued), s.newID(), int64(prio), reason, a.ID)
		}
		if err != nil {
			return err
		}
		return event(ctx, tx, attemptEvent(kind, a, reason, ms(now)))
	})
}

// CurrentLeases implements store.Store.
func (s *Store) CurrentLeases(ctx context.Context, leases []string) (map[string]bool, error) {
	out := make(map[string]bool, len(leases))
	for start := 0; start < len(leases); start += insertBatch {
		part := leases[start:min(start+insertBatch, len(leases))]
		args := make([]any, 0, len(part)+1)
		args = append(args, string(model.Running))
		for _, l := range part {
			args = append(args, l)
		}
		rows, err := s.r.QueryContext(ctx, `SELECT lease FROM attempts WHERE state = ? AND lease IN (`+
			placeholders(len(part))+`)`, args...)
		if err != nil {
			return nil, s.classify(err)
		}
		for rows.Next() {
			var l string
			if err := rows.Scan(&l); err != nil {
				rows.Close()
				return nil, s.classify(err)
			}
			out[l] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, s.classify(err)
		}
	}
	return out, nil
}
