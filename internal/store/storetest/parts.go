package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// newJob is h.job's job, not yet written.
func newJob(id string, n int) model.NewJob {
	j := model.NewJob{ID: id, User: "alice", Name: "unit"}
	for i := range n {
		j.Tasks = append(j.Tasks, model.NewTask{
			TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i,
			Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("test-%d", i),
				Timeout: time.Minute, MaxRetries: 1, ArtifactGlobs: []string{"out/**"}},
			Priority: model.NormalBase - uint32(n-i),
		})
	}
	return j
}

// attemptsOf counts a job's attempts, by state.
func (h *harness) attemptsOf(jobID string) map[model.State]int {
	h.t.Helper()
	all, err := h.list(jobID)
	if err != nil {
		h.t.Fatalf("attempts of %s: %v", jobID, err)
	}
	out := map[model.State]int{}
	for _, a := range all {
		out[a.State]++
	}
	return out
}

// A job written in parts is counted whole from its first part, its first
// tasks can be fed and started at once, and once written it is the job
// CreateJob would have written.
func testParts(t *testing.T, h *harness) {
	j := newJob("parts", 7)
	until := h.now.Add(time.Minute)
	if err := h.s.BeginJob(h.ctx, j, 3, until, h.tick()); err != nil {
		t.Fatal(err)
	}
	got, err := h.s.GetJob(h.ctx, "parts")
	if err != nil || got.Counts.TotalGroups != 7 || got.Counts.RunningTasks != 7 || !got.FinishedAt.IsZero() {
		t.Fatalf("job after its first part: %+v, %v", got, err)
	}
	if n := h.attemptsOf("parts"); n[model.Queued] != 3 || len(n) != 1 {
		t.Fatalf("attempts after the first part: %v; want 3 queued", n)
	}
	// The first part runs while the rest is written.
	first := h.start("parts", taskID(0), 1)
	if ids, err := h.s.Unwritten(h.ctx, until.Add(time.Millisecond), 10); err != nil || len(ids) != 1 || ids[0] != "parts" {
		t.Fatalf("Unwritten past the claim = %v, %v; want [parts]", ids, err)
	}
	if ids, err := h.s.Unwritten(h.ctx, until.Add(-time.Millisecond), 10); err != nil || len(ids) != 0 {
		t.Fatalf("Unwritten within the claim = %v, %v; want none", ids, err)
	}
	wantErr(t, h.s.DropUnwritten(h.ctx, "parts", until.Add(-time.Millisecond)), model.ErrConflict, "DropUnwritten within the claim")
	if err := h.s.WriteTasks(h.ctx, j, 3, 5, until.Add(time.Minute), h.tick()); err != nil {
		t.Fatal(err)
	}
	// The claim moved with the part.
	if ids, _ := h.s.Unwritten(h.ctx, until.Add(time.Millisecond), 10); len(ids) != 0 {
		t.Fatalf("Unwritten after a renewal = %v; want none", ids)
	}
	if err := h.s.WriteTasks(h.ctx, j, 5, 7, until.Add(2*time.Minute), h.tick()); err != nil {
		t.Fatal(err)
	}
	h.finish(first.Lease, 0, false)
	h.counts("parts", model.Counts{TotalTasks: 7, FinishedTasks: 1, RunningTasks: 6, SucceededTasks: 1,
		TotalGroups: 7, FinishedGroups: 1, SucceededGroups: 1})
	if n := h.attemptsOf("parts"); n[model.Queued] != 6 || n[model.Passed] != 1 {
		t.Fatalf("attempts once written: %v", n)
	}
	// Written: not unwritten, not droppable, and no more parts.
	if ids, _ := h.s.Unwritten(h.ctx, until.Add(time.Hour), 10); len(ids) != 0 {
		t.Fatalf("Unwritten after the last part = %v; want none", ids)
	}
	wantErr(t, h.s.DropUnwritten(h.ctx, "parts", until.Add(time.Hour)), model.ErrConflict, "DropUnwritten of a written job")
	wantErr(t, h.s.WriteTasks(h.ctx, j, 5, 7, until, h.tick()), model.ErrConflict, "WriteTasks of a job written whole")
	wantErr(t, h.s.WriteTasks(h.ctx, j, 7, 9, until, h.tick()), model.ErrInvalid, "WriteTasks past the job's tasks")
	// A forged job: a second part for a job nobody began.
	other := newJob("never-begun", 4)
	wantErr(t, h.s.WriteTasks(h.ctx, other, 2, 4, until, h.tick()), model.ErrNotFound, "WriteTasks of no job")
	if _, err := h.s.GetJob(h.ctx, "never-begun"); err == nil {
		t.Fatal("WriteTasks of no job left a job behind")
	}
	// BeginJob keeps CreateJob's refusal of a taken id.
	wantErr(t, h.s.BeginJob(h.ctx, j, 2, until, h.tick()), model.ErrExists, "BeginJob of a taken id")
}

// A job canceled while it is written (by hand or by its failure cap)
// cancels the parts written after as well: nothing of it runs later.
func testPartsCanceled(t *testing.T, h *harness) {
	j := newJob("pc", 5)
	until := h.now.Add(time.Minute)
	if err := h.s.BeginJob(h.ctx, j, 2, until, h.tick()); err != nil {
		t.Fatal(err)
	}
	running := h.start("pc", taskID(0), 1)
	if _, err := h.s.CancelJob(h.ctx, "pc", h.tick()); err != nil {
		t.Fatal(err)
	}
	if err := h.s.WriteTasks(h.ctx, j, 2, 5, until, h.tick()); err != nil {
		t.Fatal(err)
	}
	if n := h.attemptsOf("pc"); n[model.Canceled] != 5 || len(n) != 1 {
		t.Fatalf("attempts of a job canceled while written: %v; want 5 canceled", n)
	}
	jb := h.counts("pc", model.Counts{TotalTasks: 5, FinishedTasks: 5, FailedTasks: 5, CanceledTasks: 5,
		TotalGroups: 5, FinishedGroups: 5, FailedGroups: 5, CanceledGroups: 5})
	if !jb.Canceled || jb.FinishedAt.IsZero() {
		t.Fatalf("job = %+v; want canceled and finished", jb)
	}
	if _, err := h.s.FinishAttempt(h.ctx, running.Lease, model.Result{ExitCode: 0, Duration: time.Second}, h.tick()); err == nil {
		t.Fatal("a canceled run's finish was taken")
	}
}

// A submission cut short (its writer died between parts) is found once its
// claim runs out and removed whole, with the runs of its first part; a
// writer that comes back late is refused rather than completing it.
func testPartsCutShort(t *testing.T, h *harness) {
	j := newJob("cut", 4)
	until := h.now.Add(time.Minute)
	if err := h.s.BeginJob(h.ctx, j, 2, until, h.tick()); err != nil {
		t.Fatal(err)
	}
	run := h.start("cut", taskID(0), 1)
	after := until.Add(time.Second)
	wantErr(t, h.s.DropUnwritten(h.ctx, "nope", after), model.ErrNotFound, "DropUnwritten of no job")
	if err := h.s.DropUnwritten(h.ctx, "cut", after); err != nil {
		t.Fatal(err)
	}
	if _, err := h.s.GetJob(h.ctx, "cut"); err == nil {
		t.Fatal("the job cut short is still there")
	}
	if _, err := h.list("cut"); err == nil {
		t.Fatal("the attempts of the job cut short are still there")
	}
	wantErr(t, h.s.WriteTasks(h.ctx, j, 2, 4, after, h.tick()), model.ErrNotFound, "WriteTasks after the drop")
	if _, err := h.s.FinishAttempt(h.ctx, run.Lease, model.Result{Duration: time.Second}, h.tick()); err == nil {
		t.Fatal("a run of a removed job was finished")
	}
	// The id is free again, for a whole submission.
	h.job("cut", 3, 0)
	h.counts("cut", model.Counts{TotalTasks: 3, RunningTasks: 3, TotalGroups: 3})
}
