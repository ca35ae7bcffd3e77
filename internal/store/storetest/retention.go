package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// testRetention: old jobs are found oldest first and deleted with all their
// rows; newer jobs, their counters and the feed are untouched; old events
// and ended slaves go, alive slaves stay.
func testRetention(t *testing.T, h *harness) {
	h.job("old1", 3, 1)
	a := h.start("old1", taskID(0), 1)
	h.finish(a.Lease, 1, false) // a failure with a retry: two attempts, events
	h.job("old2", 2, 0)
	if err := h.s.RegisterSlave(h.ctx, model.Slave{ID: "gone", Hostname: "h", Slots: 1, RegisteredAt: h.tick()}); err != nil {
		t.Fatal(err)
	}
	if err := h.s.SetSlaveState(h.ctx, "gone", model.SlaveTerminated, h.tick()); err != nil {
		t.Fatal(err)
	}
	if err := h.s.RegisterSlave(h.ctx, model.Slave{ID: "alive", Hostname: "h", Slots: 1, RegisteredAt: h.tick()}); err != nil {
		t.Fatal(err)
	}
	cutoff := h.tick()
	h.now = h.now.Add(time.Hour)
	h.job("new", 2, 0)
	newJob := h.counts("new", model.Counts{TotalTasks: 2, RunningTasks: 2, TotalGroups: 2})

	old, err := h.s.OldJobs(h.ctx, cutoff, 10)
	if err != nil || !slices.Equal(old, []string{"old1", "old2"}) {
		t.Fatalf("OldJobs = %v, %v; want [old1 old2]", old, err)
	}
	if first, _ := h.s.OldJobs(h.ctx, cutoff, 1); !slices.Equal(first, []string{"old1"}) {
		t.Fatalf("OldJobs with limit 1 = %v", first)
	}
	for _, id := range old {
		if err := h.s.DeleteJob(h.ctx, id); err != nil {
			t.Fatalf("DeleteJob(%s): %v", id, err)
		}
	}
	wantErr(t, h.s.DeleteJob(h.ctx, "old1"), model.ErrNotFound, "DeleteJob again")
	_, err = h.s.GetJob(h.ctx, "old1")
	wantErr(t, err, model.ErrNotFound, "GetJob of a deleted job")
	_, err = h.s.PageAttempts(h.ctx, "old2", store.AttemptPage{})
	wantErr(t, err, model.ErrNotFound, "attempts of a deleted job")
	if ev, err := h.s.Events(h.ctx, store.EventFilter{JobID: "old1"}); err != nil || len(ev) != 0 {
		t.Errorf("events of a deleted job: %v, %v", ev, err)
	}
	if left, _ := h.s.OldJobs(h.ctx, cutoff, 10); len(left) != 0 {
		t.Errorf("OldJobs after deleting them = %v", left)
	}
	if j := h.counts("new", model.Counts{TotalTasks: 2, RunningTasks: 2, TotalGroups: 2}); j.SubmittedAt != newJob.SubmittedAt {
		t.Errorf("the new job changed: %+v", j)
	}
	todo, err := h.s.Backlog(h.ctx)
	if err != nil || len(todo) != 1 || todo[0].JobID != "new" || todo[0].Waiting != 2 {
		t.Errorf("Backlog after deleting the old jobs = %+v, %v; want the new job's 2 attempts", todo, err)
	}

	n, err := h.s.PruneBefore(h.ctx, cutoff)
	if err != nil || n == 0 {
		t.Fatalf("PruneBefore = %d, %v", n, err)
	}
	if _, err := h.s.GetSlave(h.ctx, "gone"); err == nil {
		t.Error("a slave that ended before the cutoff is still there")
	}
	if _, err := h.s.GetSlave(h.ctx, "alive"); err != nil {
		t.Errorf("an alive slave was pruned: %v", err)
	}
	ev, err := h.s.Events(h.ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev {
		if e.At.Before(cutoff) {
			t.Errorf("event %+v from before the cutoff kept", e)
		}
	}
	if !slices.ContainsFunc(ev, func(e model.Event) bool { return e.JobID == "new" }) {
		t.Error("the new job's events were pruned")
	}
}
