package lifecycle

import (
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Submitted is what a submission writes besides its tasks and their first
// attempts.
type Submitted struct {
	Groups []model.Group // each task's group, in the order of the job's tasks
	Counts model.Counts  // the job's counters
	Event  model.Event
}

// Submit returns the groups and counters of a new job: one attempt per
// task, queued, or failed for a refused task (model.NewTask.Refused), which
// must have no retry left: retrying it cannot help. A job without tasks,
// or a refused task with retries, is model.ErrInvalid.
func Submit(job model.NewJob, now time.Time) (Submitted, error) {
	if len(job.Tasks) == 0 {
		return Submitted{}, fmt.Errorf("%w: job %s has no tasks", model.ErrInvalid, job.ID)
	}
	s := Submitted{Groups: make([]model.Group, len(job.Tasks))}
	refused := 0
	for i, t := range job.Tasks {
		g := model.Group{MaxRetries: t.Spec.MaxRetries}
		g.Add(t.Spec.Attempt)
		if t.Refused != nil {
			if g.RetriesLeft() {
				return Submitted{}, fmt.Errorf("%w: refused task %s has retries left", model.ErrInvalid, t.TaskID)
			}
			g.End(model.Failed)
			refused++
		}
		s.Groups[i] = g
		s.Counts = s.Counts.Add(g.Counts())
	}
	detail := fmt.Sprintf("%d tasks, by %s", len(job.Tasks), job.User)
	if refused > 0 {
		detail += fmt.Sprintf("; %d failed at once, unrun", refused)
	}
	s.Event = model.Event{At: now, Kind: model.EventJobSubmitted, JobID: job.ID, Attempt: -1, Detail: detail}
	return s, nil
}

// Ending is how the attempts a cancel ends are written: each takes State,
// FinishedAt and Error, and loses its lease, so that a finish sent later by
// a run that was killed is refused rather than taken for a repeat of a
// finish that was recorded.
type Ending struct {
	State      model.State
	FinishedAt time.Time
	Error      string
}

// Canceled is what a cancel writes.
type Canceled struct {
	Attempts []model.Attempt // the attempts it ends, as they were
	End      Ending          // how each of them ends
	Tasks    []Task          // the tasks whose groups changed, as they are to be written
	Job      JobChange
	Event    model.Event
}

// Cancel ends the unfinished attempts of job jobID (open, with tasks, their
// tasks) as canceled, and their groups as over whatever retries they had
// left. With no open attempt the job is over already and nothing changes.
func Cancel(jobID string, tasks []Task, open []model.Attempt, now time.Time) Canceled {
	if len(open) == 0 {
		return Canceled{}
	}
	perTask := make(map[int64]int, len(tasks))
	for _, a := range open {
		perTask[a.TaskRow]++
	}
	c := Canceled{Attempts: open, End: Ending{State: model.Canceled, FinishedAt: now, Error: "canceled"}}
	for _, t := range tasks {
		n := perTask[t.Row]
		if n == 0 {
			continue
		}
		before := t.Group
		for range n {
			t.Group.End(model.Canceled)
		}
		t.Group.Cancel = true
		c.Job.Counts = c.Job.Counts.Add(moved(before, t.Group))
		c.Tasks = append(c.Tasks, t)
	}
	canceled := true
	c.Job.Canceled = &canceled
	c.Event = model.Event{At: now, Kind: model.EventJobCanceled, JobID: jobID, Attempt: -1,
		Detail: fmt.Sprintf("%d unfinished attempts canceled", len(open))}
	return c
}

// A RetryRule says whether a task, by its group, gets one more attempt.
type RetryRule func(model.Group) bool

// RetryFailed takes the tasks that failed: every attempt ended without
// success and no retry is left, or the task was canceled.
func RetryFailed(g model.Group) bool { return g.IsFailed() }

// RetryAfter takes a task whose latest attempt is attempt n, ended without
// success, and which has a retry left: the legacy /retry_task, which the
// original's client sent after each failure. Asking again is harmless:
// attempt n is then no longer the latest.
func RetryAfter(n int) RetryRule {
	return func(g model.Group) bool {
		// Attempts of a task run one after another (a new one is queued
		// only once every earlier one has ended, and none after a pass), so
		// the latest ended without success when every attempt did.
		ended := g.Attempts > 0 && g.Failed == g.Attempts
		return g.Latest == n && ended && g.RetriesLeft()
	}
}

// Retried is what a retry writes.
type Retried struct {
	New   []model.Attempt // the attempts to queue (without row ids yet)
	Tasks []Task          // their tasks, as they are to be written
	Job   JobChange
}

// Retry queues one more attempt of each task that rule takes. Its group
// then counts the retry within its retries (so that it runs even when none
// was left) and is no longer canceled, and neither is the job.
func Retry(tasks []Task, rule RetryRule, newID func() string, now time.Time) Retried {
	var r Retried
	for _, t := range tasks {
		if !rule(t.Group) {
			continue
		}
		before := t.Group
		a := queue(t, t.Group.Latest+1, newID, now)
		t.Group.Add(a.Attempt)
		t.Group.MaxRetries = max(t.Group.MaxRetries, a.Attempt)
		t.Group.Cancel = false
		a.MaxRetries = t.Group.MaxRetries
		r.Job.Counts = r.Job.Counts.Add(moved(before, t.Group))
		r.New = append(r.New, a)
		r.Tasks = append(r.Tasks, t)
	}
	if len(r.New) > 0 {
		canceled := false
		r.Job.Canceled = &canceled
	}
	return r
}
