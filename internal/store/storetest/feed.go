package storetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

func testFeed(t *testing.T, h *harness) {
	h.job("old", 5, 0)
	h.job("new", 3, 0)
	backlog := func() map[string]store.JobBacklog {
		t.Helper()
		all, err := h.s.Backlog(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]store.JobBacklog{}
		for _, b := range all {
			out[b.JobID] = b
		}
		return out
	}
	waiting := func(jobID string, limit int) []model.Attempt {
		t.Helper()
		got, err := h.s.Waiting(h.ctx, jobID, limit)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	b := backlog()
	if o, n := b["old"], b["new"]; len(b) != 2 || o.Waiting != 5 || o.InQueue != 0 || n.Waiting != 3 || o.Retries != 0 ||
		o.Oldest >= n.Oldest || o.User != "alice" || n.User != "alice" {
		t.Fatalf("Backlog of two new jobs = %+v", b)
	}
	// Each job's in priority order; at most limit.
	got := waiting("old", 2)
	got = append(got, waiting("new", 2)...)
	want := []string{"old/" + taskID(0), "old/" + taskID(1), "new/" + taskID(0), "new/" + taskID(1)}
	if len(got) != len(want) {
		t.Fatalf("Waiting gave %d attempts, want %d", len(got), len(want))
	}
	for i, a := range got {
		if a.JobID+"/"+a.TaskID != want[i] {
			t.Errorf("Waiting[%d] = %s/%s, want %s", i, a.JobID, a.TaskID, want[i])
		}
	}
	for i, a := range got[:3] {
		if err := h.s.MarkEnqueued(h.ctx, a.ID, a.Token, uint64(100+i)); err != nil {
			t.Fatal(err)
		}
	}
	// old has 2 in the queue, new 1; the next of new is its task 1.
	b = backlog()
	if o, n := b["old"], b["new"]; o.Waiting != 3 || o.InQueue != 2 || n.Waiting != 2 || n.InQueue != 1 {
		t.Fatalf("Backlog with entries = %+v", b)
	}
	if got := waiting("new", 1); len(got) != 1 || got[0].TaskID != taskID(1) {
		t.Fatalf("Waiting of new = %+v", got)
	}
	got = waiting("old", 10)
	if len(got) != 3 {
		t.Errorf("Waiting of old gave %d, want 3", len(got))
	}
	err := h.s.MarkEnqueued(h.ctx, got[0].ID, "forged", 999)
	wantErr(t, err, model.ErrConflict, "MarkEnqueued with a wrong token")

	// A run queued again after its slave was lost waits again, in the
	// retry band: the feeder puts it despite a full window.
	for _, a := range append(got, waiting("new", 10)...) {
		if err := h.s.MarkEnqueued(h.ctx, a.ID, a.Token, 200+uint64(a.ID)); err != nil {
			t.Fatal(err)
		}
	}
	if b := backlog(); len(b) != 0 {
		t.Fatalf("Backlog with every attempt in the queue = %+v", b)
	}
	r := h.start("old", taskID(0), 100)
	if err := h.s.RequeueRun(h.ctx, r.Lease, "lost", false, h.tick()); err != nil {
		t.Fatal(err)
	}
	b = backlog()
	if o := b["old"]; len(b) != 1 || o.Waiting != 1 || o.Retries != 1 || o.InQueue != 4 || o.Oldest != r.ID {
		t.Fatalf("Backlog with the requeued run = %+v", b)
	}
	if got := waiting("old", 10); len(got) != 1 || got[0].ID != r.ID || got[0].Priority > model.RetryBase {
		t.Fatalf("Waiting with the requeued run = %+v", got)
	}
}

// UserLoad counts each user's attempts that hold a slot or a queue entry:
// running, or queued with an entry; not those waiting for one, nor ended.
func testUserLoad(t *testing.T, h *harness) {
	load := func() map[string]int {
		t.Helper()
		got, err := h.s.UserLoad(h.ctx)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := load(); len(got) != 0 {
		t.Fatalf("UserLoad of an empty store = %v", got)
	}
	h.job("ul", 4, 0)
	bob := model.NewJob{ID: "ul-bob", User: "bob", Tasks: []model.NewTask{{TaskID: hash + ".0",
		Spec: model.TaskSpec{IsolateHash: hash, Description: "b", ArtifactGlobs: []string{}}, Priority: model.NormalBase}}}
	if err := h.s.CreateJob(h.ctx, bob, h.tick()); err != nil {
		t.Fatal(err)
	}
	if got := load(); len(got) != 0 {
		t.Fatalf("UserLoad with nothing in the queue = %v", got)
	}
	a := h.start("ul", taskID(0), 1) // running
	h.start("ul", taskID(1), 2)      // running
	q := h.queued("ul", taskID(2))   // in the queue
	if err := h.s.MarkEnqueued(h.ctx, q.ID, q.Token, 3); err != nil {
		t.Fatal(err)
	}
	h.finish(a.Lease, 0, false) // ended: no longer counts
	b := h.queued("ul-bob", hash+".0")
	if err := h.s.MarkEnqueued(h.ctx, b.ID, b.Token, 4); err != nil {
		t.Fatal(err)
	}
	if got := load(); len(got) != 2 || got["alice"] != 2 || got["bob"] != 1 {
		t.Errorf("UserLoad = %v; want alice 2 (one running, one in the queue), bob 1", got)
	}
}

// The retry of a failure, and a run queued again, record the slave to
// avoid, and a start elsewhere keeps it no longer binding.
func testRetryAvoids(t *testing.T, h *harness) {
	h.job("av", 1, 1)
	a := h.start("av", taskID(0), 1)
	out := h.finish(a.Lease, 1, false)
	if out.Next == nil || out.Next.AvoidSlave != "slave-1" {
		t.Fatalf("retry = %+v; want it to avoid slave-1", out.Next)
	}
	q := h.queued("av", taskID(0))
	if q.AvoidSlave != "slave-1" {
		t.Fatalf("stored retry avoids %q, want slave-1", q.AvoidSlave)
	}
	_, _, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: q.ID, Token: q.Token, SlaveID: "slave-1"}, h.tick())
	var avoid *lifecycle.AvoidError
	if !errors.As(err, &avoid) {
		t.Fatalf("start on the slave to avoid: %v; want an AvoidError", err)
	}
	if got := h.queued("av", taskID(0)); got.State != model.Queued || got.Runs != 0 {
		t.Errorf("a refused start changed the attempt: %+v", got)
	}
	r, _, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: q.ID, Token: q.Token, SlaveID: "slave-2"}, h.tick())
	if err != nil || r.SlaveID != "slave-2" {
		t.Fatalf("start elsewhere: %+v, %v", r, err)
	}
	if err := h.s.RequeueRun(h.ctx, r.Lease, "lost", false, h.tick()); err != nil {
		t.Fatal(err)
	}
	if got := h.queued("av", taskID(0)); got.AvoidSlave != "slave-2" {
		t.Errorf("run queued again avoids %q, want slave-2", got.AvoidSlave)
	}
}

// A hedged attempt has two runs, each on its slave's list; a lost second
// run is dropped, a lost first run leaves the second as the attempt's run;
// a cancel ends both. The counters count one attempt throughout.
func testHedge(t *testing.T, h *harness) {
	h.job("hg", 2, 0)
	a := h.start("hg", taskID(0), 1)
	hedge := func(a model.Attempt) model.Attempt {
		t.Helper()
		got, err := h.s.HedgeAttempt(h.ctx, a.ID, h.tick())
		if err != nil || got.Hedge.Token == "" {
			t.Fatalf("HedgeAttempt = %+v, %v", got, err)
		}
		if _, err := h.s.HedgeAttempt(h.ctx, a.ID, h.tick()); !errors.Is(err, model.ErrConflict) {
			t.Fatalf("hedging twice: %v; want a conflict", err)
		}
		run, _, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: got.Hedge.Token, SlaveID: "slave-2", Slot: 1}, h.tick())
		if err != nil || run.SlaveID != "slave-2" || run.Lease == "" || run.Lease == a.Lease {
			t.Fatalf("start of the second run = %+v, %v", run, err)
		}
		return run
	}
	onSlave := func(slave string) []string {
		t.Helper()
		runs, err := h.s.RunningOn(h.ctx, slave)
		if err != nil {
			t.Fatal(err)
		}
		var leases []string
		for _, r := range runs {
			leases = append(leases, r.Lease)
		}
		return leases
	}
	second := hedge(a)
	if got := onSlave("slave-2"); len(got) != 1 || got[0] != second.Lease {
		t.Errorf("runs on slave-2 = %v; want the second run %s", got, second.Lease)
	}
	if got, err := h.s.RunningByLease(h.ctx, second.Lease); err != nil || got.SlaveID != "slave-2" || got.Lease != second.Lease {
		t.Errorf("RunningByLease of the second run = %+v, %v", got, err)
	}
	want := model.Counts{TotalTasks: 2, RunningTasks: 2, TotalGroups: 2}
	h.counts("hg", want)
	// slave-2 is lost: the first run goes on alone.
	if err := h.s.RequeueRun(h.ctx, second.Lease, "lost", false, h.tick()); err != nil {
		t.Fatal(err)
	}
	if got := onSlave("slave-2"); len(got) != 0 {
		t.Errorf("runs on slave-2 after its loss = %v", got)
	}
	if got, err := h.s.RunningByLease(h.ctx, a.Lease); err != nil || got.Hedge.Token != "" {
		t.Errorf("the first run after the second's loss = %+v, %v", got, err)
	}
	// Hedged again; now slave-1 is lost: the second run is the attempt's.
	second = hedge(a)
	if err := h.s.RequeueRun(h.ctx, a.Lease, "lost", false, h.tick()); err != nil {
		t.Fatal(err)
	}
	got, err := h.s.RunningByLease(h.ctx, second.Lease)
	if err != nil || got.SlaveID != "slave-2" || got.State != model.Running {
		t.Errorf("the second run after the first's loss = %+v, %v", got, err)
	}
	if _, err := h.s.RunningByLease(h.ctx, a.Lease); !errors.Is(err, model.ErrConflict) {
		t.Errorf("the lost first run's lease: %v; want a conflict", err)
	}
	h.counts("hg", want)
	// Stragglers: running attempts of hedging jobs past HedgeAfter their
	// expected runtime, without a hedge yet; Runs counts the hedges too.
	sj := model.NewJob{ID: "hg-s", User: "alice", Hedge: true}
	for i, exp := range []time.Duration{10 * time.Second, time.Minute, 0} {
		sj.Tasks = append(sj.Tasks, model.NewTask{TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i, Expected: exp,
			Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("s-%d", i), Timeout: time.Minute,
				ArtifactGlobs: []string{"out/**"}}, Priority: model.NormalBase})
	}
	if err := h.s.CreateJob(h.ctx, sj, h.tick()); err != nil {
		t.Fatal(err)
	}
	var started []model.Attempt
	for i := range 3 {
		started = append(started, h.start("hg-s", taskID(i), uint64(50+i)))
	}
	begin := started[2].StartedAt
	stragglers := func(after time.Duration) []string {
		t.Helper()
		got, err := h.s.Stragglers(h.ctx, begin.Add(after), 10)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range got {
			ids = append(ids, a.TaskID)
		}
		return ids
	}
	// Task 0 (p90 10 s) straggles after 40 s, task 1 (p90 1 min) after
	// 2 min, task 2 (no history) never; job hg does not hedge.
	if got := stragglers(30 * time.Second); len(got) != 0 {
		t.Errorf("stragglers at 30 s = %v", got)
	}
	if got := stragglers(45 * time.Second); len(got) != 1 || got[0] != taskID(0) {
		t.Errorf("stragglers at 45 s = %v; want task 0", got)
	}
	if got := stragglers(time.Hour); len(got) != 2 {
		t.Errorf("stragglers after an hour = %v; want tasks 0 and 1", got)
	}
	if n, err := h.s.Runs(h.ctx); err != nil || n != 4 {
		t.Errorf("Runs = %d, %v; want hg's one attempt with its second run, and hg-s's three", n, err)
	}
	hedge(started[0])
	if got := stragglers(time.Hour); len(got) != 1 || got[0] != taskID(1) {
		t.Errorf("stragglers once task 0 is hedged = %v", got)
	}
	if n, _ := h.s.Runs(h.ctx); n != 5 {
		t.Errorf("Runs = %d; want 5", n)
	}
	if _, err := h.s.CancelJob(h.ctx, "hg-s", h.tick()); err != nil {
		t.Fatal(err)
	}

	// A cancel ends both runs of another hedged attempt.
	b := h.start("hg", taskID(1), 2)
	third := hedge(b)
	if _, err := h.s.CancelJob(h.ctx, "hg", h.tick()); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{b.Lease, third.Lease, second.Lease} {
		if _, err := h.s.RunningByLease(h.ctx, l); !errors.Is(err, model.ErrConflict) {
			t.Errorf("lease %s after cancel: %v; want a conflict", l, err)
		}
	}
	h.counts("hg", model.Counts{TotalTasks: 2, FinishedTasks: 2, CanceledTasks: 2, FailedTasks: 2, TotalGroups: 2,
		FinishedGroups: 2, FailedGroups: 2, CanceledGroups: 2})
}

func testEnqueued(t *testing.T, h *harness) {
	h.job("e", 3, 0)
	all, err := h.s.Waiting(h.ctx, "e", 10)
	if err != nil || len(all) != 3 {
		t.Fatalf("Waiting = %d, %v", len(all), err)
	}
	for i, a := range all {
		if err := h.s.MarkEnqueued(h.ctx, a.ID, a.Token, uint64(10+i)); err != nil {
			t.Fatal(err)
		}
	}
	page, err := h.s.Enqueued(h.ctx, 0, 2)
	if err != nil || len(page) != 2 || page[0].EntryID != 10 || !page[0].Enqueued {
		t.Fatalf("Enqueued page 1 = %+v, %v", page, err)
	}
	rest, err := h.s.Enqueued(h.ctx, page[1].ID, 10)
	if err != nil || len(rest) != 1 || rest[0].EntryID != 12 {
		t.Fatalf("Enqueued page 2 = %+v, %v", rest, err)
	}
	// A stale entry id does not unmark; the recorded one does.
	if err := h.s.Unenqueue(h.ctx, page[0].ID, 999); err != nil {
		t.Fatal(err)
	}
	if err := h.s.Unenqueue(h.ctx, page[1].ID, page[1].EntryID); err != nil {
		t.Fatal(err)
	}
	again, err := h.s.Waiting(h.ctx, "e", 10)
	if err != nil || len(again) != 1 || again[0].ID != page[1].ID {
		t.Fatalf("after Unenqueue, Waiting = %+v, %v", again, err)
	}
	// A start that races ahead of MarkEnqueued is not a conflict.
	h.start("e", again[0].TaskID, 50)
	if err := h.s.MarkEnqueued(h.ctx, again[0].ID, again[0].Token, 50); err != nil {
		t.Errorf("MarkEnqueued after the entry was started: %v", err)
	}
}

func testSlaves(t *testing.T, h *harness) {
	reg := h.tick()
	for _, id := range []string{"s1", "s2"} {
		if err := h.s.RegisterSlave(h.ctx, model.Slave{ID: id, Hostname: "host-" + id, Slots: 4, Version: "v1",
			CPUs: 8, MemoryBytes: 1 << 30, DiskFreeBytes: 1 << 40, RegisteredAt: reg}); err != nil {
			t.Fatal(err)
		}
	}
	err := h.s.RegisterSlave(h.ctx, model.Slave{ID: "s1", Hostname: "again", RegisteredAt: reg})
	wantErr(t, err, model.ErrExists, "second registration of s1")
	hb := h.tick()
	before, err := h.s.Heartbeat(h.ctx, "s1", hb)
	if err != nil || before.State != model.SlaveAlive || !before.LastHeartbeat.Equal(reg) {
		t.Fatalf("Heartbeat = %+v, %v", before, err)
	}
	if got, err := h.s.GetSlave(h.ctx, "s2"); err != nil || got.Hostname != "host-s2" || got.Slots != 4 {
		t.Errorf("GetSlave = %+v, %v", got, err)
	}
	_, err = h.s.GetSlave(h.ctx, "nope")
	wantErr(t, err, model.ErrNotFound, "GetSlave of an unknown slave")
	_, err = h.s.Heartbeat(h.ctx, "nope", hb)
	wantErr(t, err, model.ErrNotFound, "heartbeat of an unknown slave")
	h.job("sj", 1, 0)
	a := h.start("sj", taskID(0), 1) // runs on slave-1
	if err := h.s.SetSlaveState(h.ctx, "s2", model.SlaveLost, h.tick()); err != nil {
		t.Fatal(err)
	}
	alive, err := h.s.ListSlaves(h.ctx, true)
	if err != nil || len(alive) != 1 || alive[0].ID != "s1" || !alive[0].LastHeartbeat.Equal(hb) ||
		alive[0].CPUs != 8 || alive[0].DiskFreeBytes != 1<<40 {
		t.Fatalf("ListSlaves(alive) = %+v, %v", alive, err)
	}
	all, err := h.s.ListSlaves(h.ctx, false)
	if err != nil || len(all) != 2 || all[1].State != model.SlaveLost {
		t.Fatalf("ListSlaves = %+v, %v", all, err)
	}
	running, err := h.s.RunningOn(h.ctx, "slave-1")
	if err != nil || len(running) != 1 || running[0].Lease != a.Lease {
		t.Fatalf("RunningOn = %+v, %v", running, err)
	}
	err = h.s.SetSlaveState(h.ctx, "nope", model.SlaveLost, h.tick())
	wantErr(t, err, model.ErrNotFound, "SetSlaveState of an unknown slave")
}

func testList(t *testing.T, h *harness) {
	h.job("l1", 2, 0)
	h.now = h.now.Add(time.Hour)
	h.job("l2", 1, 0)
	a := h.start("l1", taskID(1), 1)
	h.finish(a.Lease, 1, false)
	jobs, err := h.s.ListJobs(h.ctx, time.Time{}, 10)
	if err != nil || len(jobs) != 2 || jobs[0].ID != "l2" || jobs[1].ID != "l1" {
		t.Fatalf("ListJobs = %+v, %v", jobs, err)
	}
	recent, err := h.s.ListJobs(h.ctx, h.now.Add(-time.Minute), 10)
	if err != nil || len(recent) != 1 {
		t.Fatalf("ListJobs since = %+v, %v", recent, err)
	}
	failed, err := h.list("l1", model.Failed, model.TimedOut)
	if err != nil || len(failed) != 1 || failed[0].TaskID != taskID(1) {
		t.Fatalf("failed attempts = %+v, %v", failed, err)
	}
	all, err := h.list("l1")
	if err != nil || len(all) != 2 || all[0].TaskID != taskID(0) || all[0].Description != "test-0" || all[0].IsolateHash != hash {
		t.Fatalf("attempts = %+v, %v", all, err)
	}
	_, err = h.s.GetAttempt(h.ctx, "l1", taskID(0), 5)
	wantErr(t, err, model.ErrNotFound, "GetAttempt of an unknown attempt")
}

func testEvents(t *testing.T, h *harness) {
	if err := h.s.RegisterSlave(h.ctx, model.Slave{ID: "ev", Hostname: "h", Slots: 1, RegisteredAt: h.tick()}); err != nil {
		t.Fatal(err)
	}
	h.job("evj", 1, 1)
	a := h.start("evj", taskID(0), 1)
	if err := h.s.RequeueRun(h.ctx, a.Lease, "slave lost", false, h.tick()); err != nil {
		t.Fatal(err)
	}
	b := h.start("evj", taskID(0), 2)
	if err := h.s.RequeueRun(h.ctx, b.Lease, "slave shut down", true, h.tick()); err != nil {
		t.Fatal(err)
	}
	c := h.start("evj", taskID(0), 2)
	h.finish(c.Lease, 1, false)
	for _, st := range []model.SlaveState{model.SlaveLost, model.SlaveLost, model.SlaveAlive, model.SlaveTerminated} {
		if err := h.s.SetSlaveState(h.ctx, "ev", st, h.tick()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.s.CancelJob(h.ctx, "evj", h.tick()); err != nil {
		t.Fatal(err)
	}
	if err := h.s.AddEvent(h.ctx, model.Event{At: h.tick(), Kind: model.EventQueueEntriesLost, Attempt: -1, Detail: "3"}); err != nil {
		t.Fatal(err)
	}
	all, err := h.s.Events(h.ctx, store.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range all {
		kinds = append(kinds, string(e.Kind))
	}
	want := "slave_started job_submitted attempt_started attempt_requeued attempt_started attempt_aborted " +
		"attempt_started attempt_finished slave_lost slave_reset slave_terminated job_canceled queue_entries_lost"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("events:\n got %s\nwant %s", got, want)
	}
	finished := all[7]
	if finished.JobID != "evj" || finished.TaskID != taskID(0) || finished.Attempt != 0 || finished.SlaveID != "slave-1" ||
		!strings.HasPrefix(finished.Detail, "failed; attempt 1 queued") {
		t.Errorf("attempt_finished event = %+v", finished)
	}
	mine, err := h.s.Events(h.ctx, store.EventFilter{SlaveID: "ev"})
	if err != nil || len(mine) != 4 {
		t.Errorf("events of slave ev: %d, %v; want 4", len(mine), err)
	}
	page, err := h.s.Events(h.ctx, store.EventFilter{JobID: "evj", After: all[3].ID, Limit: 2})
	if err != nil || len(page) != 2 || page[0].ID != all[4].ID {
		t.Errorf("a page of the job's events after %d = %+v, %v", all[3].ID, page, err)
	}
}
