package lifecycle

import (
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// StartRequest identifies a queue entry and the slot that reserved it.
type StartRequest struct {
	AttemptID int64
	Token     string
	EntryID   uint64
	SlaveID   string
	Slot      int
	Hostname  string
	// Takeover allows starting an attempt that runs already from the same
	// entry (its lease ran out in the queue). Without it such a start is a
	// *HeldError, so that the caller can first check the holder is gone.
	Takeover bool
	// Anywhere allows starting an attempt on the slave it avoids (its
	// task's previous run failed there). Without it such a start is an
	// *AvoidError, so that the caller can first check whether another slave
	// is alive to take it.
	Anywhere bool
}

// AvoidError says the attempt is to run on another slave than this one,
// where its task's previous run failed. It is a model.ErrForbidden: the
// entry is good, and the slave gives it back for another.
type AvoidError struct{ SlaveID string }

func (e *AvoidError) Error() string {
	return "forbidden: the task's previous run failed on slave " + e.SlaveID + "; its retry runs on another"
}

// Unwrap makes an AvoidError forbidden.
func (e *AvoidError) Unwrap() error { return model.ErrForbidden }

// HeldError says an attempt runs already, on SlaveID, from the same queue
// entry. It is a model.ErrConflict.
type HeldError struct{ SlaveID string }

func (e *HeldError) Error() string { return "conflict: the attempt runs already on slave " + e.SlaveID }

// Unwrap makes a HeldError a conflict.
func (e *HeldError) Unwrap() error { return model.ErrConflict }

// Start decides whether the queue entry of req may start attempt a, and
// returns a as it is to be written, running on req's slot under a fresh
// lease, with its event. The entry may if its token is a's and a is queued,
// or if a runs already from this very entry: the queue handed the entry on
// after its lease ran out. That is a *HeldError unless req.Takeover says
// the holder is gone; then the new run supersedes the old one, whose lease
// stops being current. Anything else is a stale entry: model.ErrConflict.
//
// An entry with the token of a's hedge starts the hedge (see Hedge): then
// the attempt to write and the one returned to the slave differ, and Start
// returns the latter; StartAny returns both.
func Start(a model.Attempt, req StartRequest, newID func() string, now time.Time) (model.Attempt, model.Event, error) {
	_, view, ev, err := StartAny(a, req, newID, now)
	return view, ev, err
}

// StartAny is Start returning the attempt to write (store) and the one the
// slave's run sees (view): the same but for a hedge.
func StartAny(a model.Attempt, req StartRequest, newID func() string, now time.Time) (store, view model.Attempt, ev model.Event, err error) {
	if a.Hedge.Token != "" && req.Token == a.Hedge.Token {
		return startHedge(a, req, newID, now)
	}
	a, ev, err = start(a, req, newID, now)
	return a, a, ev, err
}

func start(a model.Attempt, req StartRequest, newID func() string, now time.Time) (model.Attempt, model.Event, error) {
	if a.Token != req.Token {
		return a, model.Event{}, conflict("queue entry for attempt %d of %s is stale: the attempt was queued again or canceled", a.Attempt, a.TaskID)
	}
	redelivered := a.State == model.Running && req.EntryID != 0 && a.EntryID == req.EntryID
	switch {
	case a.State == model.Queued && a.AvoidSlave != "" && a.AvoidSlave == req.SlaveID && !req.Anywhere:
		return a, model.Event{}, &AvoidError{SlaveID: req.SlaveID}
	case a.State == model.Queued:
	case redelivered && !req.Takeover:
		return a, model.Event{}, &HeldError{SlaveID: a.SlaveID}
	case redelivered:
	case a.State == model.Running:
		return a, model.Event{}, conflict("attempt %d of %s is already running on %s", a.Attempt, a.TaskID, a.SlaveID)
	default:
		return a, model.Event{}, conflict("attempt %d of %s has already ended: %s", a.Attempt, a.TaskID, a.State)
	}
	detail := fmt.Sprintf("run %d on slot %d", a.Runs+1, req.Slot)
	if redelivered {
		detail += fmt.Sprintf(", taking over from %s whose lease ran out", a.SlaveID)
	}
	a.State, a.Lease, a.SlaveID, a.Slot, a.Hostname = model.Running, newID(), req.SlaveID, req.Slot, req.Hostname
	a.StartedAt, a.EntryID, a.Enqueued = now, req.EntryID, true
	a.Runs++
	return a, attemptEvent(model.EventAttemptStarted, a, detail, now), nil
}

// Finished is what a finish writes.
type Finished struct {
	// Attempt is the attempt as it ends; as it was when Duplicate.
	Attempt model.Attempt
	// Duplicate: the attempt had ended already, and this is the same
	// finish sent again. Nothing is to be written.
	Duplicate bool
	Group     model.Group    // the task's group after the finish
	Next      *model.Attempt // the retry to queue, if any (without a row id yet)
	Job       JobChange
	Event     model.Event
	// Runtime is to be folded into the runtime history of the attempt's
	// description; 0 when the slave measured none.
	Runtime time.Duration
}

// Finish records result r of running attempt a of task t. A failure of the
// task's latest attempt queues the next one while the task has a retry
// left. An attempt that has ended already makes a Duplicate; one that is
// not running (queued again meanwhile) is model.ErrConflict.
func Finish(a model.Attempt, t Task, r model.Result, newID func() string, now time.Time) (Finished, error) {
	if a.State.Final() {
		return Finished{Attempt: a, Duplicate: true, Group: t.Group}, nil
	}
	if a.State != model.Running {
		return Finished{}, conflict("attempt %d of %s is %s, not running", a.Attempt, a.TaskID, a.State)
	}
	f := Finished{Attempt: end(a, r, now), Group: t.Group}
	f.Group.End(f.Attempt.State)
	if retries(f.Attempt, f.Group) {
		next := queue(t, f.Group.Latest+1, newID, now)
		next.Index, next.Description, next.IsolateHash = a.Index, a.Description, a.IsolateHash
		next.AvoidSlave = a.SlaveID
		f.Group.Add(next.Attempt)
		f.Next = &next
	}
	f.Job = JobChange{Counts: moved(t.Group, f.Group), Inputs: r.Inputs}
	f.Event = attemptEvent(model.EventAttemptFinished, f.Attempt, finishDetail(f.Attempt, f.Next), now)
	if r.Duration > 0 {
		f.Runtime = r.Duration
	}
	return f, nil
}

// end returns a as result r ends it.
func end(a model.Attempt, r model.Result, now time.Time) model.Attempt {
	code := r.ExitCode
	a.State, a.FinishedAt, a.ExitCode = r.State(), now, &code
	a.Outputs, a.Error, a.Inputs, a.Usage = r.Outputs, r.Error, r.Inputs, r.Usage
	return a
}

// retries: an ended attempt that did not pass is retried if it is its
// task's latest and the task has a retry left (it was not canceled).
func retries(a model.Attempt, g model.Group) bool {
	return a.State != model.Passed && a.Attempt == g.Latest && g.RetriesLeft()
}

func finishDetail(a model.Attempt, next *model.Attempt) string {
	detail := string(a.State)
	if next != nil {
		detail += fmt.Sprintf("; attempt %d queued", next.Attempt)
	}
	if a.Error != "" {
		detail += ": " + a.Error
	}
	return detail
}

// Requeue puts running attempt a of task t back in the queue, for reason:
// it is not a new attempt and uses no retry, but it goes in the retry band
// of priorities, being late. With keepEntry (its slave gives the run back
// and releases the queue entry) the token and the entry stay valid; else
// (its slave was lost and may still hold the entry) a gets a new token and
// needs a new entry. An attempt that is not running is model.ErrConflict.
func Requeue(a model.Attempt, t Task, reason string, keepEntry bool, newID func() string, now time.Time) (model.Attempt, model.Event, error) {
	if a.State != model.Running {
		return a, model.Event{}, conflict("lease is not current")
	}
	kind := model.EventAttemptRequeued
	if keepEntry {
		kind = model.EventAttemptAborted
	}
	// The event names the slave that had the run.
	ev := attemptEvent(kind, a, reason, now)
	a.AvoidSlave = a.SlaveID
	a.State, a.Lease, a.Priority = model.Queued, "", model.Priority(t.Expected, true)
	a.SlaveID, a.Slot, a.Error = "", 0, reason
	if !keepEntry {
		a.Token, a.Enqueued = newID(), false
	}
	return a, ev, nil
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", model.ErrConflict, fmt.Sprintf(format, args...))
}
