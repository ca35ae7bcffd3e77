// Package lifecycle holds the rules of a task's life: which queue entry
// may start an attempt, what a result does (a final state, or a retry
// queued), how a run goes back to the queue, what a cancel and a retry
// change and how a job's counters follow; and how a slave registration
// changes state. Each rule is a pure function: it takes the rows as the
// store read them, under lock, and returns what the store is to write. The
// store locks, loads, saves and counts; the rules are tested here, without
// a database.
//
// Ids (leases, queue tokens) come from the newID passed in, times from now:
// a rule does nothing but compute.
package lifecycle

import (
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Task is a task's row as the rules see it: the summary of its attempts,
// and what a new attempt of it needs.
type Task struct {
	Row      int64 // row id
	JobID    string
	TaskID   string
	Expected time.Duration // expected runtime, which orders its retries
	Group    model.Group
}

// JobChange is what a change of attempts moves on their job's row.
type JobChange struct {
	Counts model.Counts // added to the job's counters
	Inputs model.Inputs // added to the job's input figures
	// Canceled, when set, is the job's canceled flag from now on.
	Canceled *bool
}

// IsZero reports whether c changes nothing.
func (c JobChange) IsZero() bool {
	return c.Counts == model.Counts{} && c.Inputs == model.Inputs{} && c.Canceled == nil
}

// Apply returns job j with c applied. A job is finished when its last
// group is: FinishedAt is set then, and cleared when a retry opens the job
// again.
func (c JobChange) Apply(j model.Job, now time.Time) model.Job {
	j.Counts = j.Counts.Add(c.Counts)
	j.Inputs = j.Inputs.Add(c.Inputs)
	if c.Canceled != nil {
		j.Canceled = *c.Canceled
	}
	switch {
	case j.Counts.Finished() && j.FinishedAt.IsZero():
		j.FinishedAt = now
	case !j.Counts.Finished():
		j.FinishedAt = time.Time{}
	}
	return j
}

// moved is the change of a job's counters when one of its groups goes
// from before to after.
func moved(before, after model.Group) model.Counts { return after.Counts().Sub(before.Counts()) }

// attemptEvent is the event of a change of a.
func attemptEvent(kind model.EventKind, a model.Attempt, detail string, now time.Time) model.Event {
	return model.Event{At: now, Kind: kind, SlaveID: a.SlaveID, JobID: a.JobID, TaskID: a.TaskID,
		Attempt: a.Attempt, Detail: detail}
}

// queue returns attempt n of task t, queued at now under a fresh token, in
// the retry band of priorities: every attempt after a task's first is late.
func queue(t Task, n int, newID func() string, now time.Time) model.Attempt {
	return model.Attempt{TaskRow: t.Row, JobID: t.JobID, TaskID: t.TaskID, Attempt: n, MaxRetries: t.Group.MaxRetries,
		State: model.Queued, Token: newID(), Priority: model.Priority(t.Expected, true), SubmittedAt: now}
}
