// Package storetest is the conformance suite every store.Store must pass:
// the embedded SQLite store and the MySQL store run the same cases.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// Run runs the suite. newStore returns an empty store for one subtest.
func Run(t *testing.T, newStore func(t *testing.T) store.Store) {
	cases := []struct {
		name string
		fn   func(t *testing.T, h *harness)
	}{
		{"CreateAndGet", testCreateAndGet},
		{"DuplicateJob", testDuplicateJob},
		{"RefusedTasks", testRefused},
		{"JobInParts", testParts},
		{"JobInPartsCanceled", testPartsCanceled},
		{"JobInPartsCutShort", testPartsCutShort},
		{"PassFirstTime", testPass},
		{"FailThenRetryThenPass", testFlaky},
		{"FailWithoutRetries", testFail},
		{"TimedOutCounted", testTimedOut},
		{"StaleTokenAndLease", testStale},
		{"DuplicateFinish", testDuplicateFinish},
		{"TakeoverAfterTTR", testTakeover},
		{"RequeueRun", testRequeue},
		{"AbortKeepsEntry", testAbort},
		{"Cancel", testCancel},
		{"RetryFailed", testRetry},
		{"LegacyRetryAttempt", testLegacyRetry},
		{"Durations", testDurations},
		{"FeedWindowAndOrder", testFeed},
		{"EnqueuedAndUnenqueue", testEnqueued},
		{"ClaimOnce", testClaim},
		{"UserLoad", testUserLoad},
		{"RetryAvoidsTheSlave", testRetryAvoids},
		{"Hedge", testHedge},
		{"Slaves", testSlaves},
		{"ConcurrentFinishes", testConcurrent},
		{"ConcurrentFinishesAndStale", testConcurrentStale},
		{"ListAndFilter", testList},
		{"Events", testEvents},
		{"Pages", testPages},
		{"Dashboard", testDashboard},
		{"Retention", testRetention},
		{"Secret", testSecret},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := newStore(t)
			t.Cleanup(func() { s.Close() })
			c.fn(t, &harness{t: t, s: s, ctx: context.Background(), now: time.UnixMilli(1_700_000_000_000)})
		})
	}
}

// harness holds a store and a clock that moves only when told.
type harness struct {
	t   *testing.T
	s   store.Store
	ctx context.Context
	now time.Time
}

func (h *harness) tick() time.Time { h.now = h.now.Add(time.Second); return h.now }

const hash = "0123456789abcdef0123456789abcdef01234567"

// job creates a job of n tasks with maxRetries each; priorities descend
// with the index so that task 0 is the most urgent.
func (h *harness) job(id string, n, maxRetries int) model.NewJob {
	h.t.Helper()
	j := model.NewJob{ID: id, User: "alice", Name: "unit"}
	for i := range n {
		j.Tasks = append(j.Tasks, model.NewTask{
			TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i,
			Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("test-%d", i),
				Timeout: time.Minute, MaxRetries: maxRetries, ArtifactGlobs: []string{"out/**"},
				DockerImage: image},
			Priority: model.NormalBase - uint32(n-i),
		})
	}
	if err := h.s.CreateJob(h.ctx, j, h.tick()); err != nil {
		h.t.Fatalf("CreateJob: %v", err)
	}
	return j
}

// start enqueues and starts the queued attempt of a task.
func (h *harness) start(jobID, taskID string, entry uint64) model.Attempt {
	h.t.Helper()
	a := h.queued(jobID, taskID)
	if err := h.s.MarkEnqueued(h.ctx, a.ID, a.Token, entry); err != nil {
		h.t.Fatalf("MarkEnqueued: %v", err)
	}
	// Every run is on slave-1, as if it were the only slave alive: its
	// retries run there too (testRetryAvoids tests the avoidance).
	got, spec, err := h.s.StartAttempt(h.ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: entry,
		SlaveID: "slave-1", Slot: 2, Hostname: "host-1", Anywhere: true}, h.tick())
	if err != nil {
		h.t.Fatalf("StartAttempt: %v", err)
	}
	if spec.TaskID != taskID || spec.Timeout != time.Minute || len(spec.ArtifactGlobs) != 1 || got.Lease == "" {
		h.t.Fatalf("StartAttempt returned spec %+v, lease %q", spec, got.Lease)
	}
	return got
}

// list returns a job's attempts, all or in the given states.
func (h *harness) list(jobID string, states ...model.State) ([]model.Attempt, error) {
	return h.s.PageAttempts(h.ctx, jobID, store.AttemptPage{States: states})
}

// queued returns the queued attempt of a task.
func (h *harness) queued(jobID, taskID string) model.Attempt {
	h.t.Helper()
	all, err := h.list(jobID, model.Queued)
	if err != nil {
		h.t.Fatalf("attempts: %v", err)
	}
	for _, a := range all {
		if a.TaskID == taskID {
			return a
		}
	}
	h.t.Fatalf("no queued attempt of %s", taskID)
	return model.Attempt{}
}

func (h *harness) finish(lease string, exit int, timedOut bool) store.FinishOutcome {
	h.t.Helper()
	out, err := h.s.FinishAttempt(h.ctx, lease, model.Result{ExitCode: exit, TimedOut: timedOut,
		Duration: 10 * time.Second, Outputs: model.Outputs{Stdout: "logs/x.stdout"}, Inputs: inputs, Usage: usage}, h.tick())
	if err != nil {
		h.t.Fatalf("FinishAttempt: %v", err)
	}
	return out
}

// counts checks a job's counters against want and against a recount.
func (h *harness) counts(jobID string, want model.Counts) model.Job {
	h.t.Helper()
	j, err := h.s.GetJob(h.ctx, jobID)
	if err != nil {
		h.t.Fatalf("GetJob: %v", err)
	}
	if j.Counts != want {
		h.t.Errorf("counts of %s:\n got %+v\nwant %+v", jobID, j.Counts, want)
	}
	all, err := h.list(jobID)
	if err != nil {
		h.t.Fatalf("attempts: %v", err)
	}
	if re := model.Recount(all); re != j.Counts {
		h.t.Errorf("counters of %s differ from a recount of the rows:\ncounters %+v\nrecount  %+v", jobID, j.Counts, re)
	}
	return j
}

// usage is what every finish of the harness says the run used.
var usage = model.Usage{CPUTime: 1500 * time.Millisecond, PeakMemory: 64 << 20, ImagePull: 2300 * time.Millisecond}

// image is the container image of the harness's tasks.
const image = "registry.example.com/ci/debian:12"

// inputs are the figures every finish of the harness reports.
var inputs = model.Inputs{HotItems: 3, ColdItems: 1, HotBytes: 3000, ColdBytes: 500, FetchTime: 40 * time.Millisecond}

func taskID(i int) string { return fmt.Sprintf("%s.%d", hash, i) }

func wantErr(t *testing.T, err, kind error, what string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("%s: got error %v, want %v", what, err, kind)
	}
}

func testConcurrent(t *testing.T, h *harness) {
	const n = 60
	h.job("conc", n, 1)
	var leases []string
	for i := range n {
		leases = append(leases, h.start("conc", taskID(i), uint64(i+1)).Lease)
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i, l := range leases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.s.FinishAttempt(h.ctx, l, model.Result{ExitCode: i % 2, Duration: time.Second}, h.now)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("concurrent finish: %v", err)
		}
	}
	// Odd tasks failed once and were queued again: 30 retries pending.
	h.counts("conc", model.Counts{TotalTasks: 90, FinishedTasks: 60, RunningTasks: 30, RetriedTasks: 30,
		FailedTasks: 30, SucceededTasks: 30, TotalGroups: 60, FinishedGroups: 30, SucceededGroups: 30})
}

// Finishes that arrive together, half of them with leases that are not
// current, and submissions refused after their first rows were written,
// each get their own answer: every stale finish a conflict that changes
// nothing, every refused job absent, every other finish recorded (a store
// that commits them together must keep them apart).
func testConcurrentStale(t *testing.T, h *harness) {
	const n = 40
	h.job("mix", n, 0)
	var leases []string
	for i := range n {
		leases = append(leases, h.start("mix", taskID(i), uint64(i+1)).Lease)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2*n)
	for i := range 2 * n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lease := "stale-lease-" + fmt.Sprint(i)
			if i%2 == 0 {
				lease = leases[i/2]
			}
			_, errs[i] = h.s.FinishAttempt(h.ctx, lease, model.Result{ExitCode: (i / 2) % 2, Duration: time.Second}, h.now)
		}()
	}
	bad := make([]error, 5)
	for k := range bad {
		wg.Add(1)
		go func() {
			defer wg.Done()
			j := model.NewJob{ID: fmt.Sprint("twice-", k), User: "u"}
			for range 2 { // the same task id twice: refused at the tasks' insert, after the job's
				j.Tasks = append(j.Tasks, model.NewTask{TaskID: taskID(0), Spec: model.TaskSpec{IsolateHash: hash}})
			}
			bad[k] = h.s.CreateJob(h.ctx, j, h.now)
		}()
	}
	wg.Wait()
	for k, err := range bad {
		if !errors.Is(err, model.ErrInvalid) {
			t.Errorf("job with a task id twice: %v; want invalid", err)
		}
		if _, err := h.s.GetJob(h.ctx, fmt.Sprint("twice-", k)); !errors.Is(err, model.ErrNotFound) {
			t.Errorf("refused job twice-%d: %v; want it not written", k, err)
		}
	}
	for i, err := range errs {
		if i%2 == 0 && err != nil {
			t.Errorf("finish %d: %v", i/2, err)
		}
		if i%2 == 1 && !errors.Is(err, model.ErrConflict) {
			t.Errorf("finish with a stale lease: %v; want a conflict", err)
		}
	}
	h.counts("mix", model.Counts{TotalTasks: n, FinishedTasks: n, FailedTasks: n / 2, SucceededTasks: n / 2,
		TotalGroups: n, FinishedGroups: n, SucceededGroups: n / 2, FailedGroups: n / 2})
}
