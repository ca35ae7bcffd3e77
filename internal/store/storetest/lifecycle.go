package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
)

func testCreateAndGet(t *testing.T, h *harness) {
	h.job("j1", 3, 2)
	j := h.counts("j1", model.Counts{TotalTasks: 3, RunningTasks: 3, TotalGroups: 3})
	if j.User != "alice" || j.Name != "unit" || j.Counts.Status() != "running" || !j.FinishedAt.IsZero() {
		t.Errorf("job = %+v", j)
	}
	if _, err := h.s.GetJob(h.ctx, "nope"); err == nil {
		t.Fatal("GetJob of an unknown job succeeded")
	} else {
		wantErr(t, err, model.ErrNotFound, "GetJob unknown")
	}
	_, err := h.list("nope")
	wantErr(t, err, model.ErrNotFound, "attempts of an unknown job")
}

func testDuplicateJob(t *testing.T, h *harness) {
	j := h.job("dup", 2, 0)
	j.Tasks = j.Tasks[:1]
	err := h.s.CreateJob(h.ctx, j, h.tick())
	wantErr(t, err, model.ErrExists, "second CreateJob")
	h.counts("dup", model.Counts{TotalTasks: 2, RunningTasks: 2, TotalGroups: 2})
}

// A refused task is written failed at submission: never queued, never
// fed, counted as a failed group; a job of refused tasks alone is finished
// as it is written. Its spec's retries are the master's to take away.
func testRefused(t *testing.T, h *harness) {
	refuse := func(j *model.NewJob, i int) {
		j.Tasks[i].Spec.MaxRetries = 0
		j.Tasks[i].Refused = &model.Refusal{Error: "inputs missing", Stderr: "outputs/r/missing.stderr"}
	}
	j := model.NewJob{ID: "r", User: "alice"}
	for i := range 3 {
		j.Tasks = append(j.Tasks, model.NewTask{TaskID: taskID(i), Index: i,
			Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("test-%d", i), MaxRetries: 2}})
	}
	refuse(&j, 1)
	if err := h.s.CreateJob(h.ctx, j, h.tick()); err != nil {
		t.Fatal(err)
	}
	j1 := h.counts("r", model.Counts{TotalTasks: 3, FinishedTasks: 1, RunningTasks: 2, FailedTasks: 1,
		TotalGroups: 3, FinishedGroups: 1, FailedGroups: 1})
	if !j1.FinishedAt.IsZero() {
		t.Errorf("job with queued tasks has finished_at %v", j1.FinishedAt)
	}
	got, err := h.s.GetAttempt(h.ctx, "r", taskID(1), 0)
	if err != nil || got.State != model.Failed || got.Error != "inputs missing" || got.Outputs.Stderr != "outputs/r/missing.stderr" ||
		got.ExitCode != nil || got.FinishedAt.IsZero() || !got.StartedAt.IsZero() || got.MaxRetries != 0 {
		t.Errorf("refused attempt = %+v, %v", got, err)
	}
	waiting, err := h.s.Waiting(h.ctx, "r", 10)
	if err != nil || len(waiting) != 2 {
		t.Errorf("Waiting = %d attempts, %v; want the 2 not refused", len(waiting), err)
	}
	for _, a := range waiting {
		if a.TaskID == taskID(1) {
			t.Errorf("the refused task waits for the queue: %+v", a)
		}
	}

	all := model.NewJob{ID: "r-all", User: "alice", Tasks: slices.Clone(j.Tasks[:2])}
	refuse(&all, 0)
	if err := h.s.CreateJob(h.ctx, all, h.tick()); err != nil {
		t.Fatal(err)
	}
	j2 := h.counts("r-all", model.Counts{TotalTasks: 2, FinishedTasks: 2, FailedTasks: 2,
		TotalGroups: 2, FinishedGroups: 2, FailedGroups: 2})
	if j2.FinishedAt.IsZero() || j2.Counts.Status() != "finished" {
		t.Errorf("a job of refused tasks alone is not finished: %+v", j2)
	}
	// The user may still run it again, once the inputs are there.
	ids, err := h.s.Retry(h.ctx, "r-all", []string{taskID(0)}, lifecycle.RetryFailed, h.tick())
	if err != nil || len(ids) != 1 {
		t.Fatalf("Retry of a refused task = %v, %v", ids, err)
	}
	h.counts("r-all", model.Counts{TotalTasks: 3, FinishedTasks: 2, RunningTasks: 1, RetriedTasks: 1, FailedTasks: 2,
		TotalGroups: 2, FinishedGroups: 1, FailedGroups: 1})

	bad := model.NewJob{ID: "r-bad", User: "alice", Tasks: []model.NewTask{j.Tasks[0]}}
	bad.Tasks[0].Refused = &model.Refusal{Error: "x"} // MaxRetries 2
	wantErr(t, h.s.CreateJob(h.ctx, bad, h.tick()), model.ErrInvalid, "a refused task with retries left")
	if _, err := h.s.GetJob(h.ctx, "r-bad"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("the refused submission wrote a job: %v", err)
	}
}

func testPass(t *testing.T, h *harness) {
	h.job("p", 1, 0)
	a := h.start("p", taskID(0), 7)
	if a.State != model.Running || a.SlaveID != "slave-1" || a.Slot != 2 || a.Runs != 1 || a.EntryID != 7 {
		t.Errorf("started attempt = %+v", a)
	}
	out := h.finish(a.Lease, 0, false)
	if out.Attempt.State != model.Passed || out.Next != nil || out.Duplicate {
		t.Errorf("finish outcome = %+v", out)
	}
	j := h.counts("p", model.Counts{TotalTasks: 1, FinishedTasks: 1, SucceededTasks: 1, TotalGroups: 1,
		FinishedGroups: 1, SucceededGroups: 1})
	if j.FinishedAt.IsZero() || j.Counts.Status() != "finished" || j.Inputs != inputs {
		t.Errorf("finished job = %+v", j)
	}
	got, err := h.s.GetAttempt(h.ctx, "p", taskID(0), 0)
	if err != nil || got.State != model.Passed || got.ExitCode == nil || *got.ExitCode != 0 ||
		got.Outputs.Stdout != "logs/x.stdout" || got.FinishedAt.IsZero() || got.Hostname != "host-1" || got.Inputs != inputs ||
		got.Usage != usage || got.DockerImage != image || a.DockerImage != image {
		t.Errorf("GetAttempt = %+v, %v", got, err)
	}
}

func testFlaky(t *testing.T, h *harness) {
	h.job("f", 1, 2)
	a := h.start("f", taskID(0), 1)
	out := h.finish(a.Lease, 1, false)
	if out.Next == nil || out.Next.Attempt != 1 || out.Next.State != model.Queued || out.Next.Priority >= model.NormalBase-1 {
		t.Fatalf("failed attempt queued next = %+v", out.Next)
	}
	if out.Next.Priority > model.RetryBase {
		t.Errorf("retry priority %d is not in the retry band", out.Next.Priority)
	}
	h.counts("f", model.Counts{TotalTasks: 2, FinishedTasks: 1, RunningTasks: 1, RetriedTasks: 1, FailedTasks: 1,
		TotalGroups: 1})
	b := h.start("f", taskID(0), 2)
	if b.Attempt != 1 {
		t.Fatalf("second start got attempt %d", b.Attempt)
	}
	h.finish(b.Lease, 0, false)
	j := h.counts("f", model.Counts{TotalTasks: 2, FinishedTasks: 2, RetriedTasks: 1, FailedTasks: 1, SucceededTasks: 1,
		TotalGroups: 1, FinishedGroups: 1, SucceededGroups: 1, FlakyGroups: 1, FlakyTasks: 1})
	if j.Inputs != inputs.Add(inputs) {
		t.Errorf("job input figures %+v, want the sum of two attempts' %+v", j.Inputs, inputs)
	}
}

func testFail(t *testing.T, h *harness) {
	h.job("x", 2, 1)
	for _, i := range []int{0, 0} { // attempt 0, then its retry
		a := h.start("x", taskID(i), 0)
		h.finish(a.Lease, 3, false)
	}
	a := h.start("x", taskID(1), 0)
	h.finish(a.Lease, 0, false)
	j := h.counts("x", model.Counts{TotalTasks: 3, FinishedTasks: 3, RetriedTasks: 1, FailedTasks: 2,
		SucceededTasks: 1, TotalGroups: 2, FinishedGroups: 2, FailedGroups: 1, SucceededGroups: 1})
	if j.Counts.Status() != "finished" {
		t.Errorf("status = %s", j.Counts.Status())
	}
}

func testTimedOut(t *testing.T, h *harness) {
	h.job("to", 1, 0)
	a := h.start("to", taskID(0), 0)
	out := h.finish(a.Lease, -15, true)
	if out.Attempt.State != model.TimedOut {
		t.Errorf("state = %s", out.Attempt.State)
	}
	h.counts("to", model.Counts{TotalTasks: 1, FinishedTasks: 1, TimedoutTasks: 1, FailedTasks: 1,
		TotalGroups: 1, FinishedGroups: 1, FailedGroups: 1})
}

func testStale(t *testing.T, h *harness) {
	h.job("s", 1, 0)
	a := h.queued("s", taskID(0))
	_, _, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: "forged", EntryID: 1, SlaveID: "x"}, h.tick())
	wantErr(t, err, model.ErrConflict, "start with a forged token")
	_, _, err = h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: a.ID + 1000, Token: a.Token, EntryID: 1}, h.tick())
	wantErr(t, err, model.ErrConflict, "start of an unknown attempt")
	started := h.start("s", taskID(0), 1)
	_, err = h.s.FinishAttempt(h.ctx, "not-a-lease", model.Result{}, h.tick())
	wantErr(t, err, model.ErrConflict, "finish with a stale lease")
	h.counts("s", model.Counts{TotalTasks: 1, RunningTasks: 1, TotalGroups: 1})
	if got, err := h.s.RunningByLease(h.ctx, started.Lease); err != nil || got.ID != a.ID {
		t.Errorf("RunningByLease = %+v, %v", got, err)
	}
	_, err = h.s.RunningByLease(h.ctx, "nope")
	wantErr(t, err, model.ErrConflict, "RunningByLease of an unknown lease")
}

func testDuplicateFinish(t *testing.T, h *harness) {
	h.job("d", 1, 1)
	a := h.start("d", taskID(0), 1)
	first := h.finish(a.Lease, 1, false)
	second := h.finish(a.Lease, 1, false)
	if !second.Duplicate || second.Attempt.State != model.Failed || second.Next == nil || second.Next.ID != first.Next.ID {
		t.Errorf("duplicate finish = %+v (first %+v)", second, first)
	}
	h.counts("d", model.Counts{TotalTasks: 2, FinishedTasks: 1, RunningTasks: 1, RetriedTasks: 1, FailedTasks: 1, TotalGroups: 1})
}

func testTakeover(t *testing.T, h *harness) {
	h.job("t", 1, 0)
	first := h.start("t", taskID(0), 5)
	a := h.queuedOrRunning("t")
	// The same entry delivered again: its TTR ran out. The store says who
	// holds it, and takes it over only when told to.
	_, _, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: 5, SlaveID: "slave-2"}, h.tick())
	var held *lifecycle.HeldError
	if !errors.As(err, &held) || held.SlaveID != "slave-1" || !errors.Is(err, model.ErrConflict) {
		t.Fatalf("start of a held attempt: %v; want HeldError naming slave-1", err)
	}
	again, _, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: 5, SlaveID: "slave-2", Takeover: true}, h.tick())
	if err != nil || again.Lease == first.Lease || again.Runs != 2 || again.SlaveID != "slave-2" {
		t.Fatalf("takeover start = %+v, %v", again, err)
	}
	// A different entry for a running attempt is a duplicate put: refused.
	_, _, err = h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: 6, SlaveID: "slave-3", Takeover: true}, h.tick())
	wantErr(t, err, model.ErrConflict, "start from another entry")
	_, err = h.s.FinishAttempt(h.ctx, first.Lease, model.Result{}, h.tick())
	wantErr(t, err, model.ErrConflict, "finish by the superseded run")
	// The superseded lease is no longer current; the new one is.
	for slave, want := range map[string][]string{"slave-1": nil, "slave-2": {again.Lease}} {
		runs, err := h.s.RunningOn(h.ctx, slave)
		var cur []string
		for _, r := range runs {
			cur = append(cur, r.Lease)
		}
		if err != nil || fmt.Sprint(cur) != fmt.Sprint(want) {
			t.Errorf("current leases of %s = %v, %v; want %v", slave, cur, err, want)
		}
	}
	h.finish(again.Lease, 0, false)
	h.counts("t", model.Counts{TotalTasks: 1, FinishedTasks: 1, SucceededTasks: 1, TotalGroups: 1, FinishedGroups: 1, SucceededGroups: 1})
}

func (h *harness) queuedOrRunning(jobID string) model.Attempt {
	h.t.Helper()
	all, err := h.list(jobID, model.Queued, model.Running)
	if err != nil || len(all) != 1 {
		h.t.Fatalf("attempts = %v, %v", all, err)
	}
	return all[0]
}

func testRequeue(t *testing.T, h *harness) {
	h.job("r", 1, 0)
	a := h.start("r", taskID(0), 1)
	if err := h.s.RequeueRun(h.ctx, a.Lease, "slave lost", false, h.tick()); err != nil {
		t.Fatalf("RequeueRun: %v", err)
	}
	err := h.s.RequeueRun(h.ctx, a.Lease, "again", false, h.tick())
	wantErr(t, err, model.ErrConflict, "second RequeueRun")
	q := h.queued("r", taskID(0))
	if q.Token == a.Token || q.Enqueued || q.Attempt != 0 || q.Lease != "" || q.Priority > model.RetryBase || q.Error != "slave lost" {
		t.Errorf("requeued attempt = %+v", q)
	}
	_, _, err = h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: q.ID, Token: a.Token, EntryID: 1}, h.tick())
	wantErr(t, err, model.ErrConflict, "start with the old token")
	_, err = h.s.FinishAttempt(h.ctx, a.Lease, model.Result{}, h.tick())
	wantErr(t, err, model.ErrConflict, "finish by the lost run")
	h.counts("r", model.Counts{TotalTasks: 1, RunningTasks: 1, TotalGroups: 1})
	b := h.start("r", taskID(0), 2)
	if b.Runs != 2 || b.Attempt != 0 {
		t.Errorf("restarted attempt = %+v", b)
	}
}

func testAbort(t *testing.T, h *harness) {
	h.job("ab", 1, 0)
	a := h.start("ab", taskID(0), 9)
	if err := h.s.RequeueRun(h.ctx, a.Lease, "slave shut down", true, h.tick()); err != nil {
		t.Fatalf("RequeueRun keeping the entry: %v", err)
	}
	q := h.queuedOrRunning("ab")
	if q.State != model.Queued || q.Token != a.Token || !q.Enqueued || q.EntryID != 9 || q.Lease != "" {
		t.Fatalf("aborted attempt = %+v", q)
	}
	// The released entry is still good: another slot starts it.
	b, _, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: q.ID, Token: a.Token, EntryID: 9, SlaveID: "slave-2"}, h.tick())
	if err != nil || b.Runs != 2 {
		t.Fatalf("start after abort = %+v, %v", b, err)
	}
	h.counts("ab", model.Counts{TotalTasks: 1, RunningTasks: 1, TotalGroups: 1})
}

func testCancel(t *testing.T, h *harness) {
	h.job("c", 3, 3)
	run := h.start("c", taskID(0), 1)
	done := h.start("c", taskID(1), 2)
	h.finish(done.Lease, 0, false)
	canceled, err := h.s.CancelJob(h.ctx, "c", h.tick())
	if err != nil || len(canceled) != 2 {
		t.Fatalf("CancelJob = %v, %v", canceled, err)
	}
	j := h.counts("c", model.Counts{TotalTasks: 3, FinishedTasks: 3, FailedTasks: 2, SucceededTasks: 1,
		CanceledTasks: 2, TotalGroups: 3, FinishedGroups: 3, FailedGroups: 2, SucceededGroups: 1, CanceledGroups: 2})
	if !j.Canceled || j.FinishedAt.IsZero() {
		t.Errorf("canceled job = %+v", j)
	}
	_, err = h.s.FinishAttempt(h.ctx, run.Lease, model.Result{}, h.tick())
	wantErr(t, err, model.ErrConflict, "finish after cancel")
	if again, err := h.s.CancelJob(h.ctx, "c", h.tick()); err != nil || len(again) != 0 {
		t.Errorf("second cancel = %v, %v", again, err)
	}
	_, err = h.s.CancelJob(h.ctx, "nope", h.tick())
	wantErr(t, err, model.ErrNotFound, "cancel of an unknown job")
}

func testRetry(t *testing.T, h *harness) {
	h.job("rt", 2, 0)
	a := h.start("rt", taskID(0), 1)
	h.finish(a.Lease, 1, false)
	b := h.start("rt", taskID(1), 2)
	h.finish(b.Lease, 0, false)
	_, err := h.s.Retry(h.ctx, "rt", []string{"nope"}, lifecycle.RetryFailed, h.tick())
	wantErr(t, err, model.ErrNotFound, "retry of an unknown task")
	got, err := h.s.Retry(h.ctx, "rt", nil, lifecycle.RetryFailed, h.tick())
	if err != nil || len(got) != 1 || got[0] != taskID(0) {
		t.Fatalf("Retry = %v, %v", got, err)
	}
	j := h.counts("rt", model.Counts{TotalTasks: 3, FinishedTasks: 2, RunningTasks: 1, RetriedTasks: 1, FailedTasks: 1,
		SucceededTasks: 1, TotalGroups: 2, FinishedGroups: 1, SucceededGroups: 1})
	if !j.FinishedAt.IsZero() {
		t.Errorf("reopened job still has finished_at")
	}
	c := h.start("rt", taskID(0), 3)
	h.finish(c.Lease, 0, false)
	h.counts("rt", model.Counts{TotalTasks: 3, FinishedTasks: 3, RetriedTasks: 1, FailedTasks: 1, SucceededTasks: 2,
		TotalGroups: 2, FinishedGroups: 2, SucceededGroups: 2, FlakyGroups: 1, FlakyTasks: 1})
}

func testLegacyRetry(t *testing.T, h *harness) {
	h.job("lr", 1, 1)
	a := h.start("lr", taskID(0), 1)
	h.finish(a.Lease, 1, false) // the master already queued attempt 1
	got, err := h.s.Retry(h.ctx, "lr", []string{taskID(0)}, lifecycle.RetryAfter(0), h.tick())
	if ok := len(got) > 0; err != nil || ok {
		t.Errorf("legacy retry of attempt 0 = %v, %v (attempt 1 exists)", ok, err)
	}
	_, err = h.s.Retry(h.ctx, "lr", []string{"nope"}, lifecycle.RetryAfter(0), h.tick())
	wantErr(t, err, model.ErrNotFound, "legacy retry of an unknown task")
	h.counts("lr", model.Counts{TotalTasks: 2, FinishedTasks: 1, RunningTasks: 1, RetriedTasks: 1, FailedTasks: 1, TotalGroups: 1})
}

func testDurations(t *testing.T, h *harness) {
	h.job("du", 2, 0)
	for i, d := range []time.Duration{10 * time.Second, 20 * time.Second} {
		a := h.start("du", taskID(0), uint64(i))
		if _, err := h.s.FinishAttempt(h.ctx, a.Lease, model.Result{ExitCode: 1, Duration: d}, h.tick()); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if _, err := h.s.Retry(h.ctx, "du", nil, lifecycle.RetryFailed, h.tick()); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := h.s.Durations(h.ctx, []string{"test-0", "test-1", "unknown"})
	if err != nil {
		t.Fatal(err)
	}
	// 0.7 × 10 s + 0.3 × 20 s = 13 s; the p90 of two runs is the longer.
	if r := got["test-0"]; len(got) != 1 || r.EWMA != 13*time.Second || r.P90 != 20*time.Second {
		t.Errorf("Durations = %v, want test-0: EWMA 13s, p90 20s", got)
	}
	// The p90 is over the latest model.RecentRuns runs: 30 runs, the
	// first five slow, then fast ones; the slow ones age out.
	h.job("dw", 1, 40)
	for i := range 30 {
		d := time.Second
		if i < 5 {
			d = time.Minute
		}
		a := h.start("dw", taskID(0), uint64(100+i))
		if _, err := h.s.FinishAttempt(h.ctx, a.Lease, model.Result{ExitCode: 1, Duration: d}, h.tick()); err != nil {
			t.Fatal(err)
		}
		if i == 9 || i == 29 {
			got, err := h.s.Durations(h.ctx, []string{"test-0"})
			if err != nil {
				t.Fatal(err)
			}
			r := got["test-0"]
			want, n := time.Minute, 20 // with the two runs of job du: 12 kept
			if i == 9 {
				n = 12
			} else {
				want = time.Second
			}
			if r.P90 != want || len(r.Recent) != n {
				t.Errorf("after %d runs: p90 %v of %d kept, want %v of %d", i+1, r.P90, len(r.Recent), want, n)
			}
		}
	}
}
