package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// The changes of a run: each locks the rows, has package lifecycle decide,
// and writes what it decided, in one transaction.
//
// Lock order, everywhere: task row, then attempt rows, then the job row.
// Keeping one order is what keeps MySQL free of deadlocks between a finish
// and a cancel of the same job.

// StartAttempt implements store.Store.
func (s *Store) StartAttempt(ctx context.Context, req lifecycle.StartRequest, now time.Time) (model.Attempt, model.Spec, error) {
	var a model.Attempt
	var spec model.Spec
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, t, err := s.lockRun(ctx, tx, false, req.AttemptID)
		if err != nil {
			return err
		}
		var ev model.Event
		var stored model.Attempt
		stored, a, ev, err = lifecycle.StartAny(cur, req, s.newID, now)
		if err != nil {
			return err
		}
		if err := s.saveAttempt(ctx, tx, stored); err != nil {
			return err
		}
		if err := s.event(ctx, tx, ev); err != nil {
			return err
		}
		spec, err = t.spec(a)
		return err
	})
	return a, spec, err
}

// lockRun reads one attempt, by its id or (byLease) by its lease, and its
// task's row for update, the task's row first.
func (s *Store) lockRun(ctx context.Context, tx *sql.Tx, byLease bool, key any) (model.Attempt, taskRow, error) {
	if s.d.ForUpdate == "" {
		// No row locks (the transaction holds the database's only write
		// lock): one statement reads both rows.
		text := s.q.runByID
		if byLease {
			text = s.q.runByLease
		}
		var t taskRow
		dest, done := t.dest()
		a, err := scanAttempt(s.queryRow(ctx, tx, text, keyArgs(byLease, key)...), dest...)
		done()
		if errors.Is(err, sql.ErrNoRows) {
			return a, t, conflict("no such attempt")
		}
		return a, t, err
	}
	text := s.q.attemptByID
	if byLease {
		text = s.q.attemptByLease
	}
	found, err := s.queryAttempts(ctx, tx, text, keyArgs(byLease, key)...)
	if err != nil {
		return model.Attempt{}, taskRow{}, err
	}
	if len(found) == 0 {
		return model.Attempt{}, taskRow{}, conflict("no such attempt")
	}
	t, err := scanTask(s.queryRow(ctx, tx, s.q.taskLocked, found[0].TaskRow))
	if err != nil {
		return found[0], t, err
	}
	// Read it again under the lock: it may have changed since.
	found, err = s.queryAttempts(ctx, tx, s.q.attemptByIDLocked, found[0].ID)
	if err != nil {
		return model.Attempt{}, taskRow{}, err
	}
	if len(found) == 0 {
		return model.Attempt{}, taskRow{}, conflict("no such attempt")
	}
	return found[0], t, nil
}

// byLease finds the attempt of a run by its lease (twice in the
// arguments): its first run's, or its hedge's.
const byLease = "(a.lease = ? OR a.hedge_lease = ?)"

// keyArgs are the arguments of lockRun's statement: a lease twice (see
// byLease), or an id.
func keyArgs(byLease bool, key any) []any {
	if byLease {
		return []any{key, key}
	}
	return []any{key}
}

// RunningByLease implements store.Store.
func (s *Store) RunningByLease(ctx context.Context, lease string) (model.Attempt, error) {
	found, err := s.queryAttempts(ctx, s.r, s.q.attemptByLease, lease, lease)
	if err != nil {
		return model.Attempt{}, s.classify(err)
	}
	if len(found) == 0 || found[0].State != model.Running {
		return model.Attempt{}, conflict("lease is not current")
	}
	if a := found[0]; a.Hedge.Lease == lease {
		return a.AsHedge(), nil
	}
	return found[0], nil
}

// FinishAttempt implements store.Store.
func (s *Store) FinishAttempt(ctx context.Context, lease string, r model.Result, now time.Time) (store.FinishOutcome, error) {
	var out store.FinishOutcome
	err := s.tx(ctx, func(tx *sql.Tx) error {
		a, t, err := s.lockRun(ctx, tx, true, lease)
		if errors.Is(err, model.ErrConflict) {
			return conflict("lease is not current: the run was canceled, lost or handed to another slave")
		} else if err != nil {
			return err
		}
		var superseded *model.Event
		if !a.State.Final() {
			a, superseded = lifecycle.Resolve(a, lease, "the attempt's other run finished first", now)
		}
		f, err := lifecycle.Finish(a, t.Task, r, s.newID, now)
		if err != nil {
			return err
		}
		if f.Duplicate {
			out, err = s.finishedBefore(ctx, tx, a)
			return err
		}
		out = store.FinishOutcome{Attempt: f.Attempt, Next: f.Next}
		if superseded != nil {
			out.Superseded = superseded.SlaveID
			if err := s.event(ctx, tx, *superseded); err != nil {
				return err
			}
		}
		return s.saveFinished(ctx, tx, t.Task, f, now)
	})
	return out, err
}

// finishedBefore is the outcome of a finish recorded earlier: the attempt
// as it ended, and the retry it queued, if any.
func (s *Store) finishedBefore(ctx context.Context, tx *sql.Tx, a model.Attempt) (store.FinishOutcome, error) {
	out := store.FinishOutcome{Attempt: a, Duplicate: true}
	next, err := s.queryAttempts(ctx, tx, s.q.nextAttempt, a.TaskRow, a.Attempt+1)
	if len(next) > 0 {
		out.Next = &next[0]
	}
	return out, err
}

// saveFinished writes what a finish decided: the attempt's result, the
// retry it queues, the task's group, the job's counters, the event and the
// runtime history.
func (s *Store) saveFinished(ctx context.Context, tx *sql.Tx, t lifecycle.Task, f lifecycle.Finished, now time.Time) error {
	if err := s.saveAttempt(ctx, tx, f.Attempt); err != nil {
		return err
	}
	if f.Next != nil {
		id, err := s.insertAttempt(ctx, tx, *f.Next)
		if err != nil {
			return err
		}
		f.Next.ID = id
	}
	t.Group = f.Group
	if err := s.saveGroup(ctx, tx, t); err != nil {
		return err
	}
	if err := s.moveJob(ctx, tx, t.JobID, f.Job, now); err != nil {
		return err
	}
	if err := s.event(ctx, tx, f.Event); err != nil {
		return err
	}
	if f.Runtime > 0 {
		return s.recordDuration(ctx, tx, f.Attempt.Description, f.Runtime, now)
	}
	return nil
}

// RequeueRun implements store.Store.
func (s *Store) RequeueRun(ctx context.Context, lease, reason string, keepEntry bool, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		a, t, err := s.lockRun(ctx, tx, true, lease)
		if errors.Is(err, model.ErrConflict) {
			return conflict("lease is not current")
		} else if err != nil {
			return err
		}
		if a.State == model.Running && a.Hedge.Token != "" {
			// Of two runs, the one given up goes; the other runs on.
			var ev model.Event
			switch {
			case lease == a.Hedge.Lease:
				a, ev = lifecycle.Unhedge(a, reason, now)
			case a.Hedge.Lease != "":
				var sup *model.Event
				a, sup = lifecycle.Resolve(a, a.Hedge.Lease, "first run given up: "+reason, now)
				// The first run's entry may come back: it is stale now.
				a.Token, ev = s.newID(), *sup
			default:
				a, _ = lifecycle.Resolve(a, lease, reason, now)
			}
			if ev.Kind != "" {
				if err := s.saveAttempt(ctx, tx, a); err != nil {
					return err
				}
				return s.event(ctx, tx, ev)
			}
		}
		a, ev, err := lifecycle.Requeue(a, t.Task, reason, keepEntry, s.newID, now)
		if err != nil {
			return err
		}
		if err := s.saveAttempt(ctx, tx, a); err != nil {
			return err
		}
		return s.event(ctx, tx, ev)
	})
}
