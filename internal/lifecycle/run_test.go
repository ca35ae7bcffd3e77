package lifecycle

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

var (
	t0  = time.UnixMilli(1_700_000_000_000)
	now = t0.Add(time.Minute)
)

// ids returns a newID that counts: id-1, id-2, ...
func ids() func() string {
	n := 0
	return func() string { n++; return fmt.Sprint("id-", n) }
}

// queuedAttempt is attempt n of task t.0 of job j, queued under token tok.
func queuedAttempt(n int) model.Attempt {
	return model.Attempt{ID: 7, TaskRow: 3, JobID: "j", TaskID: "t.0", Attempt: n, Description: "d", IsolateHash: "h",
		MaxRetries: 1, State: model.Queued, Token: "tok", Priority: model.NormalBase, SubmittedAt: t0}
}

// running is queuedAttempt(n) started from entry 5 on slave s1.
func running(n int) model.Attempt {
	a := queuedAttempt(n)
	a.State, a.Lease, a.SlaveID, a.Slot, a.Hostname = model.Running, "lease-1", "s1", 1, "host-1"
	a.EntryID, a.Enqueued, a.Runs, a.StartedAt = 5, true, 1, t0
	return a
}

func ended(n int, s model.State) model.Attempt {
	a := running(n)
	a.State, a.FinishedAt, a.Lease = s, t0, ""
	return a
}

// task is task t.0 with a group of attempts 0..latest, all ended but the
// latest, which is open.
func task(maxRetries, latest int) Task {
	g := model.Group{MaxRetries: maxRetries}
	for n := 0; n <= latest; n++ {
		g.Add(n)
		if n < latest {
			g.End(model.Failed)
		}
	}
	return Task{Row: 3, JobID: "j", TaskID: "t.0", Expected: 20 * time.Second, Group: g}
}

func TestStart(t *testing.T) {
	req := StartRequest{AttemptID: 7, Token: "tok", EntryID: 5, SlaveID: "s2", Slot: 2, Hostname: "host-2"}
	takeover := req
	takeover.Takeover = true
	noEntry := takeover
	noEntry.EntryID = 0
	otherEntry := takeover
	otherEntry.EntryID = 6
	forged := req
	forged.Token = "forged"
	cases := []struct {
		name   string
		a      model.Attempt
		req    StartRequest
		runs   int    // of the started attempt; 0 when refused
		detail string // of its event
		held   string // the holder named by a HeldError
		err    string // in a conflict
	}{
		{"queued", queuedAttempt(0), req, 1, "run 1 on slot 2", "", ""},
		{"queued again after an abort", func() model.Attempt { a := running(0); a.State = model.Queued; return a }(), req, 2, "run 2 on slot 2", "", ""},
		{"forged token", queuedAttempt(0), forged, 0, "", "", "is stale"},
		{"redelivered while held", running(0), req, 0, "", "s1", ""},
		{"redelivered, holder gone", running(0), takeover, 2, "run 2 on slot 2, taking over from s1 whose lease ran out", "", ""},
		{"running, entry unknown", running(0), noEntry, 0, "", "", "already running on s1"},
		{"running from another entry", running(0), otherEntry, 0, "", "", "already running on s1"},
		{"passed", ended(0, model.Passed), takeover, 0, "", "", "has already ended: passed"},
		{"canceled", ended(0, model.Canceled), req, 0, "", "", "has already ended: canceled"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, ev, err := Start(c.a, c.req, ids(), now)
			var held *HeldError
			switch {
			case c.held != "":
				if !errors.As(err, &held) || held.SlaveID != c.held || !errors.Is(err, model.ErrConflict) {
					t.Fatalf("err = %v; want a HeldError naming %s", err, c.held)
				}
				return
			case c.err != "":
				if !errors.Is(err, model.ErrConflict) || !strings.Contains(err.Error(), c.err) || errors.As(err, &held) {
					t.Fatalf("err = %v; want a conflict saying %q", err, c.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			want := c.a
			want.State, want.Lease, want.SlaveID, want.Slot, want.Hostname = model.Running, "id-1", "s2", 2, "host-2"
			want.EntryID, want.Enqueued, want.StartedAt, want.Runs = c.req.EntryID, true, now, c.runs
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("started\n got %+v\nwant %+v", got, want)
			}
			wantEv := model.Event{At: now, Kind: model.EventAttemptStarted, SlaveID: "s2", JobID: "j", TaskID: "t.0", Detail: c.detail}
			if ev != wantEv {
				t.Errorf("event %+v; want %+v", ev, wantEv)
			}
		})
	}
}

func TestFinish(t *testing.T) {
	inputs := model.Inputs{HotItems: 2, ColdBytes: 10, FetchTime: time.Second}
	canceledTask := task(3, 0)
	canceledTask.Group.Cancel = true
	cases := []struct {
		name   string
		a      model.Attempt
		t      Task
		r      model.Result
		state  model.State
		next   int          // the attempt queued; -1 for none
		counts model.Counts // the move of the job's counters
		detail string
	}{
		{"pass", running(0), task(1, 0), model.Result{Duration: time.Second, Inputs: inputs}, model.Passed, -1,
			model.Counts{FinishedTasks: 1, RunningTasks: -1, SucceededTasks: 1, FinishedGroups: 1, SucceededGroups: 1}, "passed"},
		{"fail with a retry left", running(0), task(1, 0), model.Result{ExitCode: 1, Error: "boom"}, model.Failed, 1,
			model.Counts{TotalTasks: 1, FinishedTasks: 1, RetriedTasks: 1, FailedTasks: 1}, "failed; attempt 1 queued: boom"},
		{"fail, out of retries", running(1), task(1, 1), model.Result{ExitCode: 2}, model.Failed, -1,
			model.Counts{FinishedTasks: 1, RunningTasks: -1, FailedTasks: 1, FinishedGroups: 1, FailedGroups: 1}, "failed"},
		{"fail without retries", running(0), task(0, 0), model.Result{ExitCode: -9}, model.Failed, -1,
			model.Counts{FinishedTasks: 1, RunningTasks: -1, FailedTasks: 1, FinishedGroups: 1, FailedGroups: 1}, "failed"},
		{"pass after a failure", running(1), task(1, 1), model.Result{}, model.Passed, -1,
			model.Counts{FinishedTasks: 1, RunningTasks: -1, SucceededTasks: 1, FinishedGroups: 1, SucceededGroups: 1,
				FlakyGroups: 1, FlakyTasks: 1}, "passed"},
		{"timed out, retried", running(0), task(2, 0), model.Result{ExitCode: -15, TimedOut: true}, model.TimedOut, 1,
			model.Counts{TotalTasks: 1, FinishedTasks: 1, RetriedTasks: 1, TimedoutTasks: 1, FailedTasks: 1}, "timed_out; attempt 1 queued"},
		{"infrastructure failure", running(0), task(0, 0), model.Result{ExitCode: -1, Infra: true, Error: "no inputs"}, model.InfraFailed, -1,
			model.Counts{FinishedTasks: 1, RunningTasks: -1, FailedTasks: 1, FinishedGroups: 1, FailedGroups: 1}, "infra_failed: no inputs"},
		{"fail of a task being canceled", running(0), canceledTask, model.Result{ExitCode: 1}, model.Failed, -1,
			model.Counts{FinishedTasks: 1, RunningTasks: -1, FailedTasks: 1, FinishedGroups: 1, FailedGroups: 1}, "failed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f, err := Finish(c.a, c.t, c.r, ids(), now)
			if err != nil {
				t.Fatal(err)
			}
			a := f.Attempt
			if f.Duplicate || a.State != c.state || !a.FinishedAt.Equal(now) || a.ExitCode == nil || *a.ExitCode != c.r.ExitCode ||
				a.Error != c.r.Error || a.Inputs != c.r.Inputs || a.Lease != c.a.Lease || a.SlaveID != "s1" {
				t.Errorf("finished attempt %+v", f.Attempt)
			}
			switch {
			case c.next < 0 && f.Next != nil:
				t.Errorf("queued %+v; want no retry", *f.Next)
			case c.next >= 0 && f.Next == nil:
				t.Errorf("no retry queued; want attempt %d", c.next)
			case c.next >= 0:
				n := *f.Next
				want := model.Attempt{TaskRow: 3, JobID: "j", TaskID: "t.0", Attempt: c.next, Description: "d", IsolateHash: "h",
					MaxRetries: c.t.Group.MaxRetries, State: model.Queued, Token: "id-1", Priority: model.Priority(20*time.Second, true), SubmittedAt: now,
					AvoidSlave: "s1"} // the retry avoids the slave where the task failed
				if fmt.Sprint(n) != fmt.Sprint(want) {
					t.Errorf("retry\n got %+v\nwant %+v", n, want)
				}
				if f.Group.Latest != c.next || f.Group.Attempts != c.t.Group.Attempts+1 {
					t.Errorf("group %+v does not count the retry", f.Group)
				}
			}
			if f.Job.Counts != c.counts || f.Job.Inputs != c.r.Inputs || f.Job.Canceled != nil {
				t.Errorf("job change %+v; want counts %+v", f.Job, c.counts)
			}
			if c.t.Group.Counts().Add(f.Job.Counts) != f.Group.Counts() {
				t.Errorf("the job's counters do not follow the group %+v", f.Group)
			}
			wantEv := model.Event{At: now, Kind: model.EventAttemptFinished, SlaveID: "s1", JobID: "j", TaskID: "t.0", Attempt: c.a.Attempt, Detail: c.detail}
			if f.Event != wantEv {
				t.Errorf("event %+v; want %+v", f.Event, wantEv)
			}
			if f.Runtime != c.r.Duration {
				t.Errorf("runtime for the history %v; want %v", f.Runtime, c.r.Duration)
			}
		})
	}
}

// A finish sent again is a duplicate, whatever it says; a finish of an
// attempt that is not running is a conflict.
func TestFinishRefused(t *testing.T) {
	for _, s := range []model.State{model.Passed, model.Failed, model.TimedOut, model.Canceled, model.InfraFailed} {
		a := ended(0, s)
		f, err := Finish(a, task(1, 0), model.Result{ExitCode: 3}, ids(), now)
		if err != nil || !f.Duplicate || fmt.Sprint(f.Attempt) != fmt.Sprint(a) || f.Next != nil || !f.Job.IsZero() {
			t.Errorf("finish of a %s attempt = %+v, %v; want a duplicate that changes nothing", s, f, err)
		}
	}
	_, err := Finish(queuedAttempt(0), task(1, 0), model.Result{}, ids(), now)
	if !errors.Is(err, model.ErrConflict) || !strings.Contains(err.Error(), "is queued, not running") {
		t.Errorf("finish of a queued attempt: %v", err)
	}
}

func TestRequeue(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprint("keepEntry=", keep), func(t *testing.T) {
			a := running(0)
			a.Runs = 3
			got, ev, err := Requeue(a, task(1, 0), "slave lost", keep, ids(), now)
			if err != nil {
				t.Fatal(err)
			}
			want := a
			want.State, want.Lease, want.SlaveID, want.Slot, want.Error = model.Queued, "", "", 0, "slave lost"
			want.Priority = model.Priority(20*time.Second, true)
			want.AvoidSlave = "s1" // run again, elsewhere if another slave is alive
			kind := model.EventAttemptAborted
			if !keep {
				want.Token, want.Enqueued = "id-1", false
				kind = model.EventAttemptRequeued
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("requeued\n got %+v\nwant %+v", got, want)
			}
			wantEv := model.Event{At: now, Kind: kind, SlaveID: "s1", JobID: "j", TaskID: "t.0", Detail: "slave lost"}
			if ev != wantEv {
				t.Errorf("event %+v; want %+v", ev, wantEv)
			}
		})
	}
	for _, a := range []model.Attempt{queuedAttempt(0), ended(0, model.Passed), ended(0, model.Canceled)} {
		if _, _, err := Requeue(a, task(1, 0), "lost", false, ids(), now); !errors.Is(err, model.ErrConflict) {
			t.Errorf("requeue of a %s attempt: %v; want a conflict", a.State, err)
		}
	}
}

// A queued attempt whose task failed on a slave does not start there,
// unless the caller found no other slave alive; elsewhere it starts.
func TestStartAvoidsTheSlaveThatFailed(t *testing.T) {
	a := queuedAttempt(1)
	a.AvoidSlave = "s1"
	req := StartRequest{AttemptID: 7, Token: "tok", EntryID: 5, SlaveID: "s1", Slot: 1, Hostname: "host-1"}
	_, _, err := Start(a, req, ids(), t0)
	var avoid *AvoidError
	if !errors.As(err, &avoid) || avoid.SlaveID != "s1" || !errors.Is(err, model.ErrForbidden) || errors.Is(err, model.ErrConflict) {
		t.Fatalf("start on the slave to avoid: %v; want an AvoidError, forbidden and not a conflict (the entry is good)", err)
	}
	req.Anywhere = true
	if got, _, err := Start(a, req, ids(), t0); err != nil || got.State != model.Running || got.SlaveID != "s1" {
		t.Errorf("start anywhere on the avoided slave: %+v, %v", got, err)
	}
	req.Anywhere, req.SlaveID = false, "s2"
	if got, _, err := Start(a, req, ids(), t0); err != nil || got.SlaveID != "s2" {
		t.Errorf("start on another slave: %+v, %v", got, err)
	}
}
