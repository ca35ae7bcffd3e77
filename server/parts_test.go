package server_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/server"
)

// failingParts fails the WriteTasks call number failAt (from 1), as a
// database that goes away in the middle of a large submission.
type failingParts struct {
	store.Store
	calls, failAt int32
}

func (f *failingParts) WriteTasks(ctx context.Context, job model.NewJob, from, to int, until, now time.Time) error {
	if atomic.AddInt32(&f.calls, 1) == f.failAt {
		return fmt.Errorf("%w: the database went away", model.ErrUnavailable)
	}
	return f.Store.WriteTasks(ctx, job, from, to, until, now)
}

func bigSubmission(id string, n int) server.Submission {
	sub := server.Submission{ID: id}
	for i := range n {
		sub.Tasks = append(sub.Tasks, model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("t-%d", i)})
	}
	return sub
}

func (f *fixture) allAttempts(jobID string) []model.Attempt {
	f.t.Helper()
	all, err := f.m.Attempts(f.ctx, jobID, store.AttemptPage{})
	if err != nil {
		f.t.Fatal(err)
	}
	return all
}

// A large job is written in parts and lands whole: every task once, in
// their submitted indexes, counters equal to a recount, nothing left
// marked as being written; its longest tasks are in its first part.
func TestSubmitInParts(t *testing.T) {
	f := newFixture(t, server.Config{})
	// History: t-2400 is the longest known test; it must be in the
	// first part although it comes last.
	const n = 2401
	sub := bigSubmission("big", n)
	runtimes := map[string]time.Duration{"t-2400": time.Hour}
	descs := []string{"t-2400"}
	for i := range 10 {
		d := fmt.Sprintf("t-%d", i)
		runtimes[d] = time.Second
		descs = append(descs, d)
	}
	f.submit("history", descs...)
	f.drain(f.slave(), runtimes)
	if _, err := f.m.Submit(f.ctx, sub); err != nil {
		t.Fatal(err)
	}
	all := f.allAttempts("big")
	if len(all) != n {
		t.Fatalf("%d attempts; want %d", len(all), n)
	}
	for i, a := range all {
		if a.TaskID != fmt.Sprintf("%s.%d", hash, i) || a.State != model.Queued {
			t.Fatalf("attempt %d = %s %s; want task %d queued", i, a.TaskID, a.State, i)
		}
	}
	j, err := f.m.Job(f.ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if re := model.Recount(all); re != j.Counts || j.Counts.TotalGroups != n {
		t.Fatalf("counters %+v; recount %+v", j.Counts, re)
	}
	if ids, err := f.st.Unwritten(f.ctx, f.clock.Now().Add(24*time.Hour), 10); err != nil || len(ids) != 0 {
		t.Fatalf("jobs left being written: %v, %v", ids, err)
	}
	// The feeder's first round puts the longest first.
	w, err := f.st.Waiting(f.ctx, "big", 1)
	if err != nil || len(w) != 1 || w[0].TaskID != hash+".2400" {
		t.Fatalf("first waiting = %+v, %v; want task 2400", w, err)
	}
}

// A part that fails takes the whole submission back: the job is gone (its
// first part's runs with it), and the same id can be submitted again.
func TestSubmitPartFailsLeavesNothing(t *testing.T) {
	fail := &failingParts{failAt: 2}
	f := newFixtureOver(t, server.Config{}, func(s store.Store) store.Store { fail.Store = s; return fail })
	_, err := f.m.Submit(f.ctx, bigSubmission("j", 2600))
	if !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Submit = %v; want the store's unavailable error", err)
	}
	if _, err := f.m.Job(f.ctx, "j"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("the job of a failed submission: %v; want not found", err)
	}
	if _, err := f.m.Submit(f.ctx, bigSubmission("j", 2600)); err != nil {
		t.Fatalf("submitting again: %v", err)
	}
	if got := len(f.allAttempts("j")); got != 2600 {
		t.Fatalf("%d attempts after the second submission; want 2600", got)
	}
}

// A submission cut short (its master died between parts) is removed once
// its claim runs out: by the sweep, or by a new submission of its id; not
// before.
func TestSubmissionCutShort(t *testing.T) {
	f := newFixture(t, server.Config{})
	cut := func(id string) {
		t.Helper()
		j := model.NewJob{ID: id}
		for i := range 4 {
			j.Tasks = append(j.Tasks, model.NewTask{TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i,
				Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("t-%d", i)}})
		}
		if err := f.st.BeginJob(f.ctx, j, 2, f.clock.Now().Add(30*time.Second), f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cut("a")
	cut("b")
	if n, err := f.m.SweepUnwrittenOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("sweep within the claim removed %d, %v", n, err)
	}
	if _, err := f.m.Submit(f.ctx, bigSubmission("b", 3)); !errors.Is(err, model.ErrExists) {
		t.Fatalf("submitting over a job being written: %v; want exists", err)
	}
	f.clock.Add(31 * time.Second)
	// b's id is taken over by a new submission; a is swept.
	if _, err := f.m.Submit(f.ctx, bigSubmission("b", 3)); err != nil {
		t.Fatalf("submitting over a submission cut short: %v", err)
	}
	if got := len(f.allAttempts("b")); got != 3 {
		t.Fatalf("b has %d attempts; want the new submission's 3", got)
	}
	if n, err := f.m.SweepUnwrittenOnce(f.ctx); err != nil || n != 1 {
		t.Fatalf("sweep removed %d, %v; want 1", n, err)
	}
	if _, err := f.m.Job(f.ctx, "a"); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("job a after the sweep: %v; want not found", err)
	}
	if _, err := f.m.Job(f.ctx, "b"); err != nil {
		t.Fatalf("job b after the sweep: %v", err)
	}
}
