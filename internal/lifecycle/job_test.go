package lifecycle

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

func TestSubmit(t *testing.T) {
	job := model.NewJob{ID: "j", User: "alice", Tasks: []model.NewTask{
		{Spec: model.TaskSpec{MaxRetries: 2}},
		{Spec: model.TaskSpec{Attempt: 3}}, // the client retries a task by submitting its attempt 3
	}}
	s, err := Submit(job, now)
	if err != nil {
		t.Fatal(err)
	}
	want := model.Counts{TotalTasks: 2, RunningTasks: 2, RetriedTasks: 1, TotalGroups: 2}
	if s.Counts != want || len(s.Groups) != 2 || s.Groups[0].MaxRetries != 2 || s.Groups[1].Latest != 3 {
		t.Errorf("submitted %+v; want counts %+v", s, want)
	}
	wantEv := model.Event{At: now, Kind: model.EventJobSubmitted, JobID: "j", Attempt: -1, Detail: "2 tasks, by alice"}
	if s.Event != wantEv {
		t.Errorf("event %+v; want %+v", s.Event, wantEv)
	}
	if _, err := Submit(model.NewJob{ID: "empty"}, now); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("a job without tasks: %v; want invalid", err)
	}
}

// A refused task's group is failed from the start, with no retry left; a
// refused task that still has retries is a mistake of the caller.
func TestSubmitRefused(t *testing.T) {
	refused := &model.Refusal{Error: "inputs missing", Stderr: "k"}
	job := model.NewJob{ID: "j", User: "alice", Tasks: []model.NewTask{
		{Spec: model.TaskSpec{MaxRetries: 2}},
		{Spec: model.TaskSpec{Attempt: 3, MaxRetries: 3}, Refused: refused},
	}}
	s, err := Submit(job, now)
	if err != nil {
		t.Fatal(err)
	}
	want := model.Counts{TotalTasks: 2, FinishedTasks: 1, RunningTasks: 1, RetriedTasks: 1, FailedTasks: 1,
		TotalGroups: 2, FinishedGroups: 1, FailedGroups: 1}
	if s.Counts != want || !s.Groups[1].IsFailed() || s.Groups[0].IsFinished() {
		t.Errorf("submitted %+v; want counts %+v", s, want)
	}
	if s.Event.Detail != "2 tasks, by alice; 1 failed at once, unrun" {
		t.Errorf("event detail %q", s.Event.Detail)
	}
	job.Tasks[1].Spec.MaxRetries = 4
	if _, err := Submit(job, now); !errors.Is(err, model.ErrInvalid) {
		t.Errorf("a refused task with a retry left: %v; want invalid", err)
	}
}

// openTask is task i of job j with one open attempt (latest), after
// failures of the earlier ones.
func openTask(i, maxRetries, latest int) Task {
	t := task(maxRetries, latest)
	t.Row, t.TaskID = int64(10+i), fmt.Sprintf("t.%d", i)
	return t
}

func TestCancel(t *testing.T) {
	if c := Cancel("j", nil, nil, now); len(c.Attempts) != 0 || len(c.Tasks) != 0 || !c.Job.IsZero() || c.Event != (model.Event{}) {
		t.Errorf("cancel of a job with nothing open = %+v; want nothing to write", c)
	}
	// Task 0 runs its first attempt, task 1 waits for its retry, task 2 is
	// open but lost its attempt to a finish that raced the cancel.
	tasks := []Task{openTask(0, 0, 0), openTask(1, 3, 1), openTask(2, 1, 0)}
	open := []model.Attempt{{TaskRow: 10, State: model.Running, Lease: "l"}, {TaskRow: 11, Attempt: 1, State: model.Queued}}
	c := Cancel("j", tasks, open, now)
	if len(c.Attempts) != 2 || c.End != (Ending{State: model.Canceled, FinishedAt: now, Error: "canceled"}) {
		t.Errorf("ends %d attempts as %+v", len(c.Attempts), c.End)
	}
	if len(c.Tasks) != 2 || c.Tasks[0].Row != 10 || c.Tasks[1].Row != 11 {
		t.Fatalf("changed tasks %+v; want tasks 0 and 1", c.Tasks)
	}
	for _, tk := range c.Tasks {
		if g := tk.Group; !g.Cancel || !g.IsFailed() || g.Finished != g.Attempts || g.Canceled != 1 {
			t.Errorf("group of %s after the cancel: %+v", tk.TaskID, g)
		}
	}
	want := model.Counts{FinishedTasks: 2, RunningTasks: -2, FailedTasks: 2, CanceledTasks: 2, FinishedGroups: 2,
		FailedGroups: 2, CanceledGroups: 2}
	if c.Job.Counts != want || c.Job.Canceled == nil || !*c.Job.Canceled {
		t.Errorf("job change %+v; want counts %+v and canceled", c.Job, want)
	}
	wantEv := model.Event{At: now, Kind: model.EventJobCanceled, JobID: "j", Attempt: -1, Detail: "2 unfinished attempts canceled"}
	if c.Event != wantEv {
		t.Errorf("event %+v; want %+v", c.Event, wantEv)
	}
}

// groups in the states a retry tells apart.
func groups() map[string]model.Group {
	build := func(steps func(g *model.Group)) model.Group { var g model.Group; steps(&g); return g }
	return map[string]model.Group{
		"running":           build(func(g *model.Group) { g.MaxRetries = 1; g.Add(0) }),
		"passed":            build(func(g *model.Group) { g.Add(0); g.End(model.Passed) }),
		"failed":            build(func(g *model.Group) { g.Add(0); g.End(model.Failed) }),
		"failed, retry due": build(func(g *model.Group) { g.MaxRetries = 1; g.Add(0); g.End(model.Failed) }),
		"retry running":     build(func(g *model.Group) { g.MaxRetries = 1; g.Add(0); g.End(model.Failed); g.Add(1) }),
		"retry passed":      build(func(g *model.Group) { g.MaxRetries = 1; g.Add(0); g.End(model.Failed); g.Add(1); g.End(model.Passed) }),
		"retries used up":   build(func(g *model.Group) { g.MaxRetries = 1; g.Add(0); g.End(model.Failed); g.Add(1); g.End(model.TimedOut) }),
		"canceled":          build(func(g *model.Group) { g.MaxRetries = 3; g.Add(0); g.End(model.Canceled); g.Cancel = true }),
	}
}

func TestRetryRules(t *testing.T) {
	cases := []struct {
		rule  string
		fn    RetryRule
		takes []string // of groups()
	}{
		{"RetryFailed", RetryFailed, []string{"failed", "retries used up", "canceled"}},
		{"RetryAfter(0)", RetryAfter(0), []string{"failed, retry due"}},
		{"RetryAfter(1)", RetryAfter(1), nil},
	}
	for _, c := range cases {
		for name, g := range groups() {
			want := false
			for _, n := range c.takes {
				want = want || n == name
			}
			if got := c.fn(g); got != want {
				t.Errorf("%s of a group %s = %v; want %v", c.rule, name, got, want)
			}
		}
	}
}

func TestRetry(t *testing.T) {
	all := groups()
	var tasks []Task
	for i, name := range []string{"passed", "failed", "canceled", "running"} {
		tk := openTask(i, 0, 0)
		tk.Group = all[name]
		tasks = append(tasks, tk)
	}
	r := Retry(tasks, RetryFailed, ids(), now)
	if len(r.New) != 2 || len(r.Tasks) != 2 {
		t.Fatalf("queued %d attempts for %d tasks; want 2 (the failed and the canceled task)", len(r.New), len(r.Tasks))
	}
	for i, a := range r.New {
		tk := r.Tasks[i]
		want := model.Attempt{TaskRow: tk.Row, JobID: "j", TaskID: tk.TaskID, Attempt: 1, MaxRetries: tk.Group.MaxRetries,
			State: model.Queued, Token: fmt.Sprint("id-", i+1), Priority: model.Priority(20*time.Second, true), SubmittedAt: now}
		if fmt.Sprint(a) != fmt.Sprint(want) {
			t.Errorf("retry %d\n got %+v\nwant %+v", i, a, want)
		}
		if g := tk.Group; g.Latest != 1 || g.Attempts != 2 || g.Finished != 1 || g.Cancel || g.MaxRetries < 1 {
			t.Errorf("group of %s after the retry: %+v", tk.TaskID, g)
		}
	}
	if r.Tasks[1].Group.MaxRetries != 3 {
		t.Errorf("a retry lowered the retries of the canceled task to %d", r.Tasks[1].Group.MaxRetries)
	}
	want := model.Counts{TotalTasks: 2, RunningTasks: 2, RetriedTasks: 2, FinishedGroups: -2, FailedGroups: -2, CanceledGroups: -1}
	if r.Job.Counts != want || r.Job.Canceled == nil || *r.Job.Canceled {
		t.Errorf("job change %+v; want counts %+v and the job no longer canceled", r.Job, want)
	}
	if none := Retry(tasks, RetryAfter(5), ids(), now); len(none.New) != 0 || !none.Job.IsZero() {
		t.Errorf("a retry that takes no task = %+v; want nothing to write", none)
	}
}

func TestJobChange(t *testing.T) {
	yes, no := true, false
	open := model.Counts{TotalGroups: 2, FinishedGroups: 1}
	done := model.Counts{TotalGroups: 2, FinishedGroups: 2}
	earlier := now.Add(-time.Hour)
	cases := []struct {
		name     string
		job      model.Job
		change   JobChange
		finished time.Time
		canceled bool
	}{
		{"the last group finishes", model.Job{Counts: open}, JobChange{Counts: model.Counts{FinishedGroups: 1}}, now, false},
		{"a group of many finishes", model.Job{Counts: model.Counts{TotalGroups: 3}}, JobChange{Counts: model.Counts{FinishedGroups: 1}}, time.Time{}, false},
		{"finished, and moves within", model.Job{Counts: done, FinishedAt: earlier}, JobChange{Counts: model.Counts{FlakyGroups: 1}}, earlier, false},
		{"a retry opens it again", model.Job{Counts: done, FinishedAt: earlier, Canceled: true},
			JobChange{Counts: model.Counts{FinishedGroups: -1}, Canceled: &no}, time.Time{}, false},
		{"canceled", model.Job{Counts: open}, JobChange{Counts: model.Counts{FinishedGroups: 1}, Canceled: &yes}, now, true},
		{"canceled stays", model.Job{Counts: open, Canceled: true}, JobChange{Inputs: model.Inputs{HotItems: 1}}, time.Time{}, true},
	}
	for _, c := range cases {
		got := c.change.Apply(c.job, now)
		if got.Counts != c.job.Counts.Add(c.change.Counts) || got.Inputs != c.job.Inputs.Add(c.change.Inputs) ||
			!got.FinishedAt.Equal(c.finished) || got.Canceled != c.canceled {
			t.Errorf("%s: %+v; want finished at %v, canceled %v", c.name, got, c.finished, c.canceled)
		}
	}
}
