package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/server"
)

// clock is a clock that moves only when told.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// allInputs says every input is on the isolate server.
type allInputs struct{}

func (allInputs) UseManifests(context.Context, []string) ([]string, error) { return nil, nil }

type fixture struct {
	t     *testing.T
	m     *server.Master
	q     queue.Queue
	clock *clock
	ctx   context.Context
	st    store.Store // the store under the master's wrapper
}

func newFixture(t *testing.T, cfg server.Config) *fixture {
	return newFixtureOver(t, cfg, func(s store.Store) store.Store { return s })
}

// newFixtureOver is newFixture with the master's store wrapped by wrap.
func newFixtureOver(t *testing.T, cfg server.Config, wrap func(store.Store) store.Store) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := wrap(db)
	blobs, err := local.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	q := mem.New()
	t.Cleanup(func() { q.Close() })
	c := &clock{now: time.UnixMilli(1_800_000_000_000)}
	m, err := server.New(st, q, blobs, allInputs{}, server.Options{Config: cfg, Now: c.Now,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{t: t, m: m, q: q, clock: c, ctx: ctx, st: db}
}

const hash = "0123456789abcdef0123456789abcdef01234567"

func (f *fixture) submit(id string, descs ...string) {
	f.t.Helper()
	sub := server.Submission{ID: id}
	for _, d := range descs {
		sub.Tasks = append(sub.Tasks, model.TaskSpec{IsolateHash: hash, Description: d})
	}
	if _, err := f.m.Submit(f.ctx, sub); err != nil {
		f.t.Fatal(err)
	}
}

// drain runs every queued task as one slot would, in the order the queue
// gives them, each taking the runtime that runtimes names (1 s if absent);
// it returns the descriptions in the order they started.
func (f *fixture) drain(slaveID string, runtimes map[string]time.Duration) []string {
	f.t.Helper()
	c, err := f.q.NewConsumer(f.ctx)
	if err != nil {
		f.t.Fatal(err)
	}
	defer c.Close()
	var order []string
	for {
		if _, err := f.m.FeedOnce(f.ctx); err != nil {
			f.t.Fatal(err)
		}
		res, err := c.Reserve(f.ctx, 0)
		if errors.Is(err, queue.ErrTimeout) {
			return order
		} else if err != nil {
			f.t.Fatal(err)
		}
		var e protocol.Entry
		if err := json.Unmarshal(res.Body, &e); err != nil {
			f.t.Fatal(err)
		}
		a, spec, err := f.m.Start(f.ctx, protocol.Start{SlaveID: slaveID, EntryID: res.ID, Entry: e})
		if err != nil {
			f.t.Fatal(err)
		}
		order = append(order, spec.Description)
		d, ok := runtimes[spec.Description]
		if !ok {
			d = time.Second
		}
		if _, _, err := f.m.Finish(f.ctx, a.Lease, protocol.Finish{DurationMS: d.Milliseconds()}); err != nil {
			f.t.Fatal(err)
		}
		if err := c.Delete(f.ctx, res.ID); err != nil {
			f.t.Fatal(err)
		}
	}
}

// reserve takes the next ready entry, as a slave slot would, and decodes it.
func (f *fixture) reserve(c queue.Consumer) (queue.Reserved, protocol.Entry) {
	f.t.Helper()
	res, err := c.Reserve(f.ctx, 0)
	if err != nil {
		f.t.Fatalf("reserve: %v", err)
	}
	var e protocol.Entry
	if err := json.Unmarshal(res.Body, &e); err != nil {
		f.t.Fatal(err)
	}
	return res, e
}

func (f *fixture) slave() string {
	f.t.Helper()
	s, err := f.m.Register(f.ctx, protocol.Register{Hostname: "host", Slots: 1})
	if err != nil {
		f.t.Fatal(err)
	}
	return s.ID
}

// With one slot and a runtime history, tasks start longest first, and those
// without a history start before those known to be short.
func TestLongestFirst(t *testing.T) {
	f := newFixture(t, server.Config{})
	slave := f.slave()
	history := map[string]time.Duration{"a": 40 * time.Second, "b": 10 * time.Second, "c": 30 * time.Second, "d": 2 * time.Second, "e": time.Second}
	f.submit("history", "a", "b", "c", "d", "e")
	f.drain(slave, history)
	// Known mean: 16.6 s. New tasks x and y rank just above it.
	f.submit("ordered", "e", "x", "d", "a", "y", "b", "c")
	got := f.drain(slave, history)
	want := []string{"a", "c", "x", "y", "b", "d", "e"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("start order %v, want %v", got, want)
	}
}

// Retries run ahead of any first attempt, even of a later job.
func TestRetriesGoFirst(t *testing.T) {
	f := newFixture(t, server.Config{})
	slave := f.slave()
	if _, err := f.m.Submit(f.ctx, server.Submission{ID: "j1", Tasks: []model.TaskSpec{
		{IsolateHash: hash, Description: "flaky", MaxRetries: 1}}}); err != nil {
		t.Fatal(err)
	}
	c, _ := f.q.NewConsumer(f.ctx)
	defer c.Close()
	f.m.FeedOnce(f.ctx)
	res, e := f.reserve(c)
	a, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: slave, EntryID: res.ID, Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	c.Delete(f.ctx, res.ID)
	f.submit("j2", "other1", "other2")
	if _, _, err := f.m.Finish(f.ctx, a.Lease, protocol.Finish{ExitCode: 1}); err != nil {
		t.Fatal(err)
	}
	got := f.drain(slave, nil)
	if len(got) != 3 || got[0] != "flaky" {
		t.Errorf("start order %v; want the retry first", got)
	}
}

// The feeder keeps at most a window of each job in the queue, so a job
// submitted later is not stuck behind all of an earlier one.
func TestFeederSharesTheQueue(t *testing.T) {
	f := newFixture(t, server.Config{QueueWindow: 3})
	f.submit("big", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8")
	f.submit("small", "s1", "s2")
	n, err := f.m.FeedOnce(f.ctx)
	if err != nil || n != 5 {
		t.Fatalf("FeedOnce put %d, %v; want 3 of big and 2 of small", n, err)
	}
	st, _ := f.q.Stats(f.ctx)
	if st.Ready != 5 {
		t.Errorf("queue holds %d ready entries, want 5", st.Ready)
	}
	if n, _ := f.m.FeedOnce(f.ctx); n != 0 {
		t.Errorf("a full window was fed %d more", n)
	}
}

// Entries the queue lost (a restart without its log) are put again.
func TestReconcilerPutsLostEntriesAgain(t *testing.T) {
	f := newFixture(t, server.Config{})
	f.submit("j", "a", "b", "c")
	if n, _ := f.m.FeedOnce(f.ctx); n != 3 {
		t.Fatalf("fed %d", n)
	}
	// Lose two entries behind the master's back.
	for id := uint64(1); id <= 2; id++ {
		if err := f.q.Delete(f.ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	lost, err := f.m.ReconcileOnce(f.ctx)
	if err != nil || lost != 2 {
		t.Fatalf("ReconcileOnce found %d lost, %v; want 2", lost, err)
	}
	if n, _ := f.m.FeedOnce(f.ctx); n != 2 {
		t.Errorf("fed %d after reconciling, want 2", n)
	}
	if lost, _ := f.m.ReconcileOnce(f.ctx); lost != 0 {
		t.Errorf("second ReconcileOnce found %d lost", lost)
	}
	if got := f.drain(f.slave(), nil); len(got) != 3 {
		t.Errorf("ran %v; want each task once", got)
	}
}

// A silent slave is declared lost after the heartbeat timeout, but never
// within the grace period after the master starts; its runs are queued
// again under new tokens and its late result is refused.
func TestReaper(t *testing.T) {
	f := newFixture(t, server.Config{HeartbeatInterval: time.Second})
	slave := f.slave()
	f.submit("j", "a")
	c, _ := f.q.NewConsumer(f.ctx)
	defer c.Close()
	f.m.FeedOnce(f.ctx)
	res, e := f.reserve(c)
	a, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: slave, EntryID: res.ID, Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Add(2500 * time.Millisecond) // silent, but within the 3 s grace
	if lost, _ := f.m.ReapOnce(f.ctx); len(lost) != 0 {
		t.Fatalf("slave declared lost within the start grace: %v", lost)
	}
	f.clock.Add(2 * time.Second) // 4.5 s silent: over the 3 s timeout
	lost, err := f.m.ReapOnce(f.ctx)
	if err != nil || len(lost) != 1 || lost[0] != slave {
		t.Fatalf("ReapOnce = %v, %v", lost, err)
	}
	if _, _, err := f.m.Finish(f.ctx, a.Lease, protocol.Finish{}); !errors.Is(err, model.ErrConflict) {
		t.Errorf("late finish of the lost run: %v; want conflict", err)
	}
	reply, err := f.m.Heartbeat(f.ctx, slave, protocol.Heartbeat{Running: []string{a.Lease}})
	if err != nil || !reply.Reset {
		t.Errorf("first heartbeat after loss = %+v, %v; want reset", reply, err)
	}
	if got := f.drain(f.slave(), nil); len(got) != 1 || got[0] != "a" {
		t.Errorf("after the loss the task ran as %v", got)
	}
	job, _ := f.m.Job(f.ctx, "j")
	if job.Counts.SucceededTasks != 1 || job.Counts.TotalTasks != 1 || job.Counts.Status() != "finished" {
		t.Errorf("job counts %+v", job.Counts)
	}
}

// An attempt started again and again without a result (each time its slave
// died and was declared lost) is refused as poison once MaxRuns is passed,
// and ends as failed, with a retry when one is left.
func TestPoisonEntryIsRefused(t *testing.T) {
	f := newFixture(t, server.Config{MaxRuns: 2, HeartbeatInterval: time.Second})
	if _, err := f.m.Submit(f.ctx, server.Submission{ID: "p", Tasks: []model.TaskSpec{
		{IsolateHash: hash, Description: "crasher", MaxRetries: 1}}}); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 3; run++ {
		slave := f.slave()
		f.m.FeedOnce(f.ctx)
		c, _ := f.q.NewConsumer(f.ctx)
		var err error
		for { // as a slave does: stale entries of the lost runs are deleted
			res, rerr := c.Reserve(f.ctx, 0)
			if rerr != nil {
				t.Fatalf("run %d: %v", run, rerr)
			}
			var e protocol.Entry
			json.Unmarshal(res.Body, &e)
			_, _, err = f.m.Start(f.ctx, protocol.Start{SlaveID: slave, EntryID: res.ID, Entry: e})
			if !errors.Is(err, model.ErrConflict) {
				break
			}
			c.Delete(f.ctx, res.ID)
		}
		switch {
		case run <= 2 && err != nil:
			t.Fatalf("run %d refused: %v", run, err)
		case run == 3 && !errors.Is(err, model.ErrPoison):
			t.Fatalf("run %d: %v; want poison", run, err)
		}
		c.Close() // the slave dies with its task...
		f.clock.Add(10 * time.Second)
		if _, err := f.m.ReapOnce(f.ctx); err != nil { // ...and is declared lost
			t.Fatal(err)
		}
	}
	job, _ := f.m.Job(f.ctx, "p")
	if job.Counts.FailedTasks != 1 || job.Counts.TotalTasks != 2 || job.Counts.RetriedTasks != 1 {
		t.Errorf("after the poison: %+v; want attempt 0 failed and attempt 1 queued", job.Counts)
	}
	attempts, _ := f.m.Attempts(f.ctx, "p", store.AttemptPage{States: []model.State{model.Failed}})
	if len(attempts) != 1 || !strings.Contains(attempts[0].Error, "never reported") {
		t.Errorf("failed attempt = %+v; want the reason recorded", attempts)
	}
}

// While the slave that runs an attempt is alive, a second delivery of its
// queue entry (its lease ran out in the queue) is refused: no task runs
// twice. Once the holder is gone, the run is taken over.
func TestRedeliveryDoesNotRunTwice(t *testing.T) {
	f := newFixture(t, server.Config{HeartbeatInterval: time.Second})
	holder, other := f.slave(), f.slave()
	f.submit("r", "t")
	f.m.FeedOnce(f.ctx)
	c, _ := f.q.NewConsumer(f.ctx)
	res, e := f.reserve(c)
	first, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: holder, EntryID: res.ID, Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // the entry is ready again, the holder still runs the task
	c2, _ := f.q.NewConsumer(f.ctx)
	defer c2.Close()
	res2, err := c2.Reserve(f.ctx, 0)
	if err != nil || res2.ID != res.ID {
		t.Fatalf("second delivery: %+v, %v", res2, err)
	}
	if _, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: other, EntryID: res2.ID, Entry: e}); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("start while the holder is alive: %v; want conflict", err)
	}
	f.clock.Add(4 * time.Second) // the holder falls silent past the timeout
	if _, err := f.m.Heartbeat(f.ctx, other, protocol.Heartbeat{}); err != nil {
		t.Fatal(err)
	}
	second, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: other, EntryID: res2.ID, Entry: e})
	if err != nil || second.Lease == first.Lease {
		t.Fatalf("start after the holder went silent: %+v, %v; want a takeover", second, err)
	}
	if _, _, err := f.m.Finish(f.ctx, first.Lease, protocol.Finish{}); !errors.Is(err, model.ErrConflict) {
		t.Errorf("finish by the superseded run: %v; want conflict", err)
	}
}

// Once the queue has handed a running attempt's entry to another slave, a
// holder silent for one and a half heartbeat intervals (short of the
// heartbeat timeout) is taken for dead and its run taken over; one heard
// from more recently is not. The superseded run's finish is refused, and
// its slave is told to kill it.
func TestRedeliveryTakesOverSilentHolder(t *testing.T) {
	f := newFixture(t, server.Config{HeartbeatInterval: time.Second}) // timeout 3 s
	holder, other := f.slave(), f.slave()
	f.clock.Add(4 * time.Second) // past the master's start grace
	for _, s := range []string{holder, other} {
		if _, err := f.m.Heartbeat(f.ctx, s, protocol.Heartbeat{}); err != nil {
			t.Fatal(err)
		}
	}
	f.submit("r", "t")
	f.m.FeedOnce(f.ctx)
	c, _ := f.q.NewConsumer(f.ctx)
	res, e := f.reserve(c)
	first, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: holder, EntryID: res.ID, Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	c.Close() // the holder's connection to the queue drops: the entry is ready again
	c2, _ := f.q.NewConsumer(f.ctx)
	defer c2.Close()
	res2, e2 := f.reserve(c2)
	if res2.ID != res.ID {
		t.Fatalf("second delivery: %+v", res2)
	}

	f.clock.Add(time.Second) // the holder's next heartbeat is not late yet
	if _, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: other, EntryID: res2.ID, Entry: e2}); !errors.Is(err, model.ErrConflict) {
		t.Fatalf("start while the holder was heard from 1 s ago: %v; want conflict", err)
	}
	f.clock.Add(600 * time.Millisecond) // 1.6 intervals of silence
	second, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: other, EntryID: res2.ID, Entry: e2})
	if err != nil || second.Lease == first.Lease || second.SlaveID != other || second.Runs != 2 {
		t.Fatalf("start after 1.6 intervals of silence: %+v, %v; want a takeover by the other slave", second, err)
	}
	if _, _, err := f.m.Finish(f.ctx, first.Lease, protocol.Finish{}); !errors.Is(err, model.ErrConflict) {
		t.Errorf("finish by the superseded run: %v; want conflict", err)
	}
	reply, err := f.m.Heartbeat(f.ctx, holder, protocol.Heartbeat{Running: []string{first.Lease}})
	if err != nil || len(reply.Kill) != 1 || reply.Kill[0] != first.Lease {
		t.Errorf("the holder's late heartbeat: %+v, %v; want its superseded run killed", reply, err)
	}
	out, _, err := f.m.Finish(f.ctx, second.Lease, protocol.Finish{})
	if err != nil || out.Attempt.State != model.Passed {
		t.Fatalf("finish of the run that took over: %+v, %v", out, err)
	}
	job, _ := f.m.Job(f.ctx, "r")
	if job.Counts.TotalTasks != 1 || job.Counts.SucceededTasks != 1 || job.Counts.FinishedTasks != 1 {
		t.Errorf("counters: %+v; want one task, passed once", job.Counts)
	}
}

// A run the store has on a slave that the slave does not report (running
// or pending) is queued again at the slave's heartbeat, once it is older
// than two heartbeat intervals; one it reports, or a pending result, stays.
func TestHeartbeatReconcilesRuns(t *testing.T) {
	f := newFixture(t, server.Config{HeartbeatInterval: time.Second})
	slave := f.slave()
	f.submit("h", "running", "pending", "unknown")
	f.m.FeedOnce(f.ctx)
	c, _ := f.q.NewConsumer(f.ctx)
	defer c.Close()
	leases := map[string]string{}
	for range 3 {
		res, e := f.reserve(c)
		a, spec, err := f.m.Start(f.ctx, protocol.Start{SlaveID: slave, EntryID: res.ID, Entry: e})
		if err != nil {
			t.Fatal(err)
		}
		leases[spec.Description] = a.Lease
	}
	hb := protocol.Heartbeat{Running: []string{leases["running"]}, Pending: []string{leases["pending"]}}
	if _, err := f.m.Heartbeat(f.ctx, slave, hb); err != nil {
		t.Fatal(err)
	}
	if q, _ := f.m.Attempts(f.ctx, "h", store.AttemptPage{States: []model.State{model.Queued}}); len(q) != 0 {
		t.Fatalf("a run just started was queued again: %+v", q)
	}
	f.clock.Add(3 * time.Second)
	if _, err := f.m.Heartbeat(f.ctx, slave, hb); err != nil {
		t.Fatal(err)
	}
	q, _ := f.m.Attempts(f.ctx, "h", store.AttemptPage{States: []model.State{model.Queued}})
	if len(q) != 1 || q[0].Description != "unknown" {
		t.Fatalf("queued again: %+v; want only the run the slave did not know", q)
	}
	if _, _, err := f.m.Finish(f.ctx, leases["pending"], protocol.Finish{}); err != nil {
		t.Errorf("the pending result was refused: %v", err)
	}
}

// A task that cannot run at all (its inputs cannot be fetched) is queued
// again for another slave, with its entry, using no retry; after MaxRuns
// such runs it ends as infra_failed, not as a test failure.
func TestInfrastructureFailure(t *testing.T) {
	f := newFixture(t, server.Config{MaxRuns: 2})
	slave := f.slave()
	f.submit("i", "unlucky")
	f.m.FeedOnce(f.ctx)
	c, _ := f.q.NewConsumer(f.ctx)
	defer c.Close()
	res, e := f.reserve(c)
	for run := 1; run <= 2; run++ {
		a, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: slave, EntryID: res.ID, Entry: e})
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		_, requeued, err := f.m.Finish(f.ctx, a.Lease, protocol.Finish{ExitCode: -1, Infra: true, Error: "isolate server unreachable"})
		if err != nil || requeued != (run == 1) {
			t.Fatalf("run %d: requeued %v, %v", run, requeued, err)
		}
	}
	job, _ := f.m.Job(f.ctx, "i")
	if job.Counts.FailedTasks != 1 || job.Counts.FailedGroups != 1 || job.Counts.TotalTasks != 1 || job.Counts.RetriedTasks != 0 {
		t.Errorf("counts %+v; want one attempt, failed, no retry used", job.Counts)
	}
	got, _ := f.m.Attempts(f.ctx, "i", store.AttemptPage{States: []model.State{model.InfraFailed}})
	if len(got) != 1 || !strings.Contains(got[0].Error, "isolate server unreachable") || got[0].Runs != 2 {
		t.Errorf("attempt = %+v; want infra_failed after 2 runs with the reason", got)
	}
}

// With two users' jobs queued, the slots are shared by user: a user's small
// job of new tests starts beside another's big job of tests known to be
// long, instead of after all of it (as within one user, where the longest
// go first), and the big one gets every slot once the small one is done.
func TestFairShareBetweenUsers(t *testing.T) {
	for _, c := range []struct {
		name      string
		bobUser   string
		wantShare bool
	}{{"two users", "bob", true}, {"one user", "ann", false}} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, server.Config{})
			reg, err := f.m.Register(f.ctx, protocol.Register{Hostname: "host", Slots: 4})
			if err != nil {
				t.Fatal(err)
			}
			submit := func(id, user, desc string, n int) {
				sub := server.Submission{ID: id, User: user}
				for i := range n {
					sub.Tasks = append(sub.Tasks, model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("%s-%d", desc, i)})
				}
				if _, err := f.m.Submit(f.ctx, sub); err != nil {
					t.Fatal(err)
				}
			}
			submit("history", "ann", "big", 100)
			long := map[string]time.Duration{}
			for i := range 100 {
				long[fmt.Sprintf("big-%d", i)] = time.Minute
			}
			f.drain(reg.ID, long)
			submit("big", "ann", "big", 100)
			submit("small", c.bobUser, "small", 10)
			c2, _ := f.q.NewConsumer(f.ctx)
			defer c2.Close()
			type run struct {
				lease string
				entry uint64
			}
			var running []run
			var starts []string // the job of each start, in order
			for {
				if _, err := f.m.FeedOnce(f.ctx); err != nil {
					t.Fatal(err)
				}
				res, err := c2.Reserve(f.ctx, 0)
				if errors.Is(err, queue.ErrTimeout) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				var e protocol.Entry
				if err := json.Unmarshal(res.Body, &e); err != nil {
					t.Fatal(err)
				}
				a, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: reg.ID, EntryID: res.ID, Entry: e})
				if err != nil {
					t.Fatal(err)
				}
				starts = append(starts, a.JobID)
				running = append(running, run{a.Lease, res.ID})
				if len(running) == 4 || len(starts) > 200 {
					// The slave's four slots are busy: the oldest run ends.
					r := running[0]
					running = running[1:]
					if _, _, err := f.m.Finish(f.ctx, r.lease, protocol.Finish{}); err != nil {
						t.Fatal(err)
					}
					c2.Delete(f.ctx, r.entry)
				}
			}
			lastSmall, smallIn20 := -1, 0
			for i, j := range starts {
				if j == "small" {
					lastSmall = i
					if i < 20 {
						smallIn20++
					}
				}
			}
			t.Logf("the small job's starts among the first 20: %d; its last start: %d", smallIn20, lastSmall+1)
			if len(starts) != 110 {
				t.Fatalf("%d starts; want each of the 110 tasks once", len(starts))
			}
			// Shared evenly, the small job's 10 tasks have all started by
			// about the 20th start; behind the big job, at the 110th.
			if shared := lastSmall < 25 && smallIn20 >= 9; shared != c.wantShare {
				t.Errorf("the small job's last task started at start %d of %d (sharing between users: %v, want %v); starts: %v",
					lastSmall+1, len(starts), shared, c.wantShare, starts[:30])
			}
		})
	}
}

// A failed task's retry runs on another slave while one is alive; on the
// same slave only when it is the last one.
func TestRetryRunsOnAnotherSlave(t *testing.T) {
	f := newFixture(t, server.Config{})
	s1, s2 := f.slave(), f.slave()
	if _, err := f.m.Submit(f.ctx, server.Submission{ID: "j", Tasks: []model.TaskSpec{
		{IsolateHash: hash, Description: "flaky", MaxRetries: 2}}}); err != nil {
		t.Fatal(err)
	}
	c, _ := f.q.NewConsumer(f.ctx)
	defer c.Close()
	startOn := func(slave string) (model.Attempt, queue.Reserved, error) {
		t.Helper()
		if _, err := f.m.FeedOnce(f.ctx); err != nil {
			t.Fatal(err)
		}
		res, e := f.reserve(c)
		a, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: slave, EntryID: res.ID, Entry: e})
		return a, res, err
	}
	a, res, err := startOn(s1)
	if err != nil {
		t.Fatal(err)
	}
	c.Delete(f.ctx, res.ID)
	if _, _, err := f.m.Finish(f.ctx, a.Lease, protocol.Finish{ExitCode: 1}); err != nil {
		t.Fatal(err)
	}
	// s1 reserves the retry: refused, the entry is good and goes back.
	_, res, err = startOn(s1)
	if !errors.Is(err, model.ErrForbidden) {
		t.Fatalf("retry started on the slave where the task failed: %v; want it refused while s2 is alive", err)
	}
	if err := c.Release(f.ctx, res.ID, model.RetryBase, 0); err != nil {
		t.Fatal(err)
	}
	res, e := f.reserve(c)
	a, _, err = f.m.Start(f.ctx, protocol.Start{SlaveID: s2, EntryID: res.ID, Entry: e})
	if err != nil || a.SlaveID != s2 || a.Attempt != 1 {
		t.Fatalf("retry on s2: %+v, %v", a, err)
	}
	c.Delete(f.ctx, res.ID)
	if _, _, err := f.m.Finish(f.ctx, a.Lease, protocol.Finish{ExitCode: 1}); err != nil {
		t.Fatal(err)
	}
	// Attempt 2 avoids s2; s1 is gone: s2 is the last, and runs it.
	if err := f.m.Deregister(f.ctx, s1); err != nil {
		t.Fatal(err)
	}
	a, res, err = startOn(s2)
	if err != nil || a.SlaveID != s2 || a.Attempt != 2 {
		t.Fatalf("retry on the last slave alive: %+v, %v", a, err)
	}
	c.Delete(f.ctx, res.ID)
}

// A straggler of a job that hedges gets a second run on another slave once
// it has run max(2 × p90, p90 + 30 s) with the queue empty. The first run
// to finish gives the attempt its one result; the other is killed at its
// slave's heartbeat, its finish refused, and recorded as superseded; the
// counters count one attempt and equal a recount.
func TestHedgeStraggler(t *testing.T) {
	for _, winner := range []string{"hedge", "first"} {
		t.Run(winner+" wins", func(t *testing.T) {
			f := newFixture(t, server.Config{})
			s1, s2 := f.slave(), f.slave()
			f.submit("history", "slow", "fast")
			f.drain(s1, map[string]time.Duration{"slow": 10 * time.Second, "fast": time.Second})
			yes := true
			if _, err := f.m.Submit(f.ctx, server.Submission{ID: "h", Hedge: &yes, Tasks: []model.TaskSpec{
				{IsolateHash: hash, Description: "slow"}}}); err != nil {
				t.Fatal(err)
			}
			if _, err := f.m.FeedOnce(f.ctx); err != nil {
				t.Fatal(err)
			}
			c, _ := f.q.NewConsumer(f.ctx)
			defer c.Close()
			res, e := f.reserve(c)
			first, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: s1, EntryID: res.ID, Entry: e})
			if err != nil {
				t.Fatal(err)
			}
			// p90 10 s: hedged after max(20 s, 40 s).
			f.clock.Add(39 * time.Second)
			if n, err := f.m.FeedOnce(f.ctx); n != 0 || err != nil {
				t.Fatalf("hedged before its time: %d, %v", n, err)
			}
			f.clock.Add(2 * time.Second)
			if n, err := f.m.FeedOnce(f.ctx); n != 1 || err != nil {
				t.Fatalf("straggler not hedged: %d, %v", n, err)
			}
			if n, _ := f.m.FeedOnce(f.ctx); n != 0 {
				t.Fatalf("hedged twice")
			}
			// Not beside the first run, while another slave is alive.
			for slave, runs := range map[string][]string{s1: {first.Lease}, s2: nil} {
				if _, err := f.m.Heartbeat(f.ctx, slave, protocol.Heartbeat{Running: runs}); err != nil {
					t.Fatal(err)
				}
			}
			hres, he := f.reserve(c)
			if _, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: s1, EntryID: hres.ID, Entry: he}); !errors.Is(err, model.ErrForbidden) {
				t.Fatalf("second run on the first run's slave: %v; want it refused", err)
			}
			c.Release(f.ctx, hres.ID, model.RetryBase, 0)
			hres, he = f.reserve(c)
			second, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: s2, EntryID: hres.ID, Entry: he})
			if err != nil || second.Lease == first.Lease || second.SlaveID != s2 || second.Attempt != first.Attempt {
				t.Fatalf("second run: %+v, %v", second, err)
			}
			for slave, lease := range map[string]string{s1: first.Lease, s2: second.Lease} {
				if hb, err := f.m.Heartbeat(f.ctx, slave, protocol.Heartbeat{Running: []string{lease}}); err != nil || len(hb.Kill) != 0 {
					t.Fatalf("heartbeat of %s while both run: %+v, %v", slave, hb, err)
				}
			}
			won, lost := second, first
			if winner == "first" {
				won, lost = first, second
			}
			out, _, err := f.m.Finish(f.ctx, won.Lease, protocol.Finish{DurationMS: 41_000})
			if err != nil || out.Attempt.State != model.Passed || out.Superseded != lost.SlaveID || out.Attempt.SlaveID != won.SlaveID {
				t.Fatalf("finish of the winner: %+v, %v", out, err)
			}
			if _, _, err := f.m.Finish(f.ctx, lost.Lease, protocol.Finish{ExitCode: 1}); !errors.Is(err, model.ErrConflict) {
				t.Errorf("finish of the superseded run: %v; want a conflict", err)
			}
			if again, _, err := f.m.Finish(f.ctx, won.Lease, protocol.Finish{DurationMS: 41_000}); err != nil || !again.Duplicate {
				t.Errorf("the winner's finish sent again: %+v, %v; want a duplicate", again, err)
			}
			hb, err := f.m.Heartbeat(f.ctx, lost.SlaveID, protocol.Heartbeat{Running: []string{lost.Lease}})
			if err != nil || len(hb.Kill) != 1 || hb.Kill[0] != lost.Lease {
				t.Errorf("heartbeat of the superseded run's slave: %+v, %v; want it killed", hb, err)
			}
			job, err := f.m.Job(f.ctx, "h")
			if err != nil || job.Counts != (model.Counts{TotalTasks: 1, FinishedTasks: 1, SucceededTasks: 1, TotalGroups: 1,
				FinishedGroups: 1, SucceededGroups: 1}) {
				t.Errorf("job %+v, %v; want one attempt, passed", job.Counts, err)
			}
			all, err := f.m.Attempts(f.ctx, "h", store.AttemptPage{})
			if err != nil || len(all) != 1 || model.Recount(all) != job.Counts {
				t.Errorf("attempts %+v, %v; the counters must equal a recount", all, err)
			}
			evs, _ := f.m.Events(f.ctx, store.EventFilter{JobID: "h"})
			var kinds []string
			for _, e := range evs {
				kinds = append(kinds, string(e.Kind))
			}
			if want := "attempt_started attempt_hedged attempt_started run_superseded attempt_finished"; !strings.Contains(strings.Join(kinds, " "), want) {
				t.Errorf("events %v; want %s", kinds, want)
			}
		})
	}
}

// A job that does not hedge, or a task without a history, gets no second
// run however long it runs.
func TestHedgeOnlyWhenAsked(t *testing.T) {
	f := newFixture(t, server.Config{})
	s1, s2 := f.slave(), f.slave()
	f.submit("history", "slow")
	f.drain(s1, map[string]time.Duration{"slow": 10 * time.Second})
	f.submit("plain", "slow")
	yes := true
	if _, err := f.m.Submit(f.ctx, server.Submission{ID: "new", Hedge: &yes, Tasks: []model.TaskSpec{
		{IsolateHash: hash, Description: "never seen"}}}); err != nil {
		t.Fatal(err)
	}
	f.m.FeedOnce(f.ctx)
	c, _ := f.q.NewConsumer(f.ctx)
	defer c.Close()
	for _, s := range []string{s1, s2} {
		res, e := f.reserve(c)
		if _, _, err := f.m.Start(f.ctx, protocol.Start{SlaveID: s, EntryID: res.ID, Entry: e}); err != nil {
			t.Fatal(err)
		}
	}
	f.clock.Add(time.Hour)
	if n, err := f.m.FeedOnce(f.ctx); n != 0 || err != nil {
		t.Errorf("hedged %d (%v): neither job may be", n, err)
	}
}
