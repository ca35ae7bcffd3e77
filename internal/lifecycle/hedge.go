package lifecycle

import (
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Straggler hedging. A running attempt of a job that asks for it, which has
// run longer than HedgeAfter its expected runtime while the queue is empty,
// gets a second run: a queue entry with a token of its own (Hedge). The run
// that finishes first gives the attempt its one result (Resolve); the other
// run's lease stops being current, so its slave is told to kill it and its
// finish is refused, and an event records it as superseded. Both runs are
// of the one attempt row: the counters count one attempt, one result.

// HedgeAfter is how long a run of a task expected to take p90 may run
// before it is hedged: max(2 × p90, p90 + 30 s). 0 for a task without a
// history: nothing says it straggles.
func HedgeAfter(p90 time.Duration) time.Duration {
	if p90 <= 0 {
		return 0
	}
	return max(2*p90, p90+30*time.Second)
}

// Hedge queues a second run of running attempt a: it returns a with the
// hedge's token, and the event. An attempt that is not running, or is
// hedged already, is model.ErrConflict.
func Hedge(a model.Attempt, newID func() string, now time.Time) (model.Attempt, model.Event, error) {
	if a.State != model.Running || a.Hedge.Token != "" {
		return a, model.Event{}, conflict("attempt %d of %s is %s, hedged %v", a.Attempt, a.TaskID, a.State, a.Hedge.Token != "")
	}
	a.Hedge = model.HedgeRun{Token: newID()}
	ev := attemptEvent(model.EventAttemptHedged, a, fmt.Sprintf("running for %s on %s; a second run is queued",
		now.Sub(a.StartedAt).Round(time.Second), a.SlaveID), now)
	return a, ev, nil
}

// startHedge starts the hedge of a from the entry of req: it returns a as
// it is to be written, and as the hedge run sees it (model.Attempt.AsHedge).
func startHedge(a model.Attempt, req StartRequest, newID func() string, now time.Time) (model.Attempt, model.Attempt, model.Event, error) {
	switch {
	case a.State != model.Running:
		return a, a, model.Event{}, conflict("attempt %d of %s has ended: its second run is not needed", a.Attempt, a.TaskID)
	case a.Hedge.Lease != "":
		return a, a, model.Event{}, conflict("the second run of attempt %d of %s has started already", a.Attempt, a.TaskID)
	case req.SlaveID == a.SlaveID && !req.Anywhere:
		// A second run beside the first on the same slave would share its
		// trouble, if the slave is the trouble.
		return a, a, model.Event{}, &AvoidError{SlaveID: req.SlaveID}
	}
	a.Hedge.Lease, a.Hedge.SlaveID, a.Hedge.Slot, a.Hedge.StartedAt = newID(), req.SlaveID, req.Slot, now
	view := a.AsHedge()
	view.Hostname = req.Hostname
	ev := attemptEvent(model.EventAttemptStarted, view, fmt.Sprintf("second run on slot %d, beside the run on %s", req.Slot, a.SlaveID), now)
	return a, view, ev, nil
}

// Resolve makes the run holding lease the attempt's run, before it ends or
// goes back to the queue: when lease is the hedge's, a takes the hedge's
// lease, slave, slot and start. The other run, if any, is dropped: it
// returns a without a hedge, and the event of the run superseded (nil when
// a had no hedge). A lease that is neither run's is returned unchanged;
// the rules refuse it.
func Resolve(a model.Attempt, lease, why string, now time.Time) (model.Attempt, *model.Event) {
	h := a.Hedge
	if h.Token == "" {
		return a, nil
	}
	var loser model.Attempt
	switch {
	case h.Lease != "" && lease == h.Lease:
		loser = a
		a = a.AsHedge()
	case lease == a.Lease:
		if h.Lease == "" {
			// Its entry was never started: it is stale from now on.
			a.Hedge = model.HedgeRun{}
			return a, nil
		}
		loser = a.AsHedge()
	default:
		return a, nil
	}
	a.Hedge = model.HedgeRun{}
	ev := attemptEvent(model.EventRunSuperseded, loser, why, now)
	return a, &ev
}

// Unhedge drops the hedge of a whose lease is hedgeLease (its slave was
// lost, or gives it back): the first run goes on alone. It returns a and
// the event.
func Unhedge(a model.Attempt, reason string, now time.Time) (model.Attempt, model.Event) {
	ev := attemptEvent(model.EventRunSuperseded, a.AsHedge(), "second run dropped: "+reason, now)
	a.Hedge = model.HedgeRun{}
	return a, ev
}
