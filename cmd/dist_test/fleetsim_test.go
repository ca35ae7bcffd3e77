package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/client"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/beanstalk"
	"github.com/dist-test/dist_test/internal/testenv"
)

// simFleet simulates slaves without processes: each speaks the slave protocol
// to the master over HTTP (register, a heartbeat every interval naming its
// runs, start and finish) and reserves entries from beanstalkd on one
// connection of its own, and its runs do nothing for runTime. It records
// the latency of every call to the master.
type simFleet struct {
	master  *client.Client
	bsAddr  string
	tube    string
	slots   int
	every   time.Duration // heartbeat interval the master is configured with
	runTime time.Duration

	mu       sync.Mutex
	lat      map[string][]time.Duration
	beats    atomic.Int64
	finished atomic.Int64
	failures atomic.Int64
	stale    atomic.Int64 // entries refused at start: duplicates, mostly
	lastErr  atomic.Value
}

func (f *simFleet) note(kind string, t0 time.Time, err error) {
	d := time.Since(t0)
	f.mu.Lock()
	f.lat[kind] = append(f.lat[kind], d)
	f.mu.Unlock()
	if err != nil {
		f.failures.Add(1)
		f.lastErr.Store(err.Error())
	}
}

// reset forgets the latencies and counts so far: the next window starts.
func (f *simFleet) reset() {
	f.mu.Lock()
	f.lat = map[string][]time.Duration{}
	f.mu.Unlock()
	f.beats.Store(0)
	f.finished.Store(0)
	f.failures.Store(0)
	f.stale.Store(0)
}

// percentile returns the p-th percentile of the latencies of kind, or of
// every call when kind is "".
func (f *simFleet) percentile(kind string, p float64) time.Duration {
	f.mu.Lock()
	var all []time.Duration
	for k, l := range f.lat {
		if kind == "" || k == kind {
			all = append(all, l...)
		}
	}
	f.mu.Unlock()
	if len(all) == 0 {
		return 0
	}
	slices.Sort(all)
	return all[min(len(all)-1, int(float64(len(all))*p))]
}

// slave runs one simulated slave until ctx ends.
func (f *simFleet) slave(ctx context.Context, n int) error {
	var reg protocol.Registered
	for {
		t0 := time.Now()
		var err error
		reg, err = f.master.Register(ctx, protocol.Register{Hostname: fmt.Sprintf("sim-%d", n), Slots: f.slots, Version: version})
		f.note("register", t0, err)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		time.Sleep(time.Second)
	}
	q, err := beanstalk.Open(ctx, f.bsAddr, f.tube, beanstalk.Options{})
	if err != nil {
		return err
	}
	defer q.Close()
	c, err := q.NewConsumer(ctx)
	if err != nil {
		return err
	}
	defer c.Close()

	var mu sync.Mutex
	running := map[string]uint64{} // lease → entry
	startedRuns := 0
	done := make(chan string, f.slots)
	var wg sync.WaitGroup
	defer wg.Wait()
	// Heartbeats at the interval the master gave, from a random phase so
	// that they spread over it.
	every := time.Duration(reg.HeartbeatIntervalMS) * time.Millisecond
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTimer(rand.N(every))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			tick.Reset(every)
			mu.Lock()
			hb := protocol.Heartbeat{Running: make([]string, 0, len(running))}
			for l := range running {
				hb.Running = append(hb.Running, l)
			}
			mu.Unlock()
			hctx, cancel := context.WithTimeout(ctx, every)
			t0 := time.Now()
			_, err := f.master.Heartbeat(hctx, reg.SlaveID, hb)
			cancel()
			if ctx.Err() == nil {
				f.note("heartbeat", t0, err)
				f.beats.Add(1)
			}
		}
	}()
	for ctx.Err() == nil {
		// Settle the runs that are over: finish, then delete the entry on
		// the connection that reserved it.
		for drained := false; !drained; {
			select {
			case lease := <-done:
				mu.Lock()
				id := running[lease]
				delete(running, lease)
				mu.Unlock()
				_ = c.Delete(ctx, id)
			default:
				drained = true
			}
		}
		mu.Lock()
		busy := len(running)
		mu.Unlock()
		if busy >= f.slots {
			select {
			case lease := <-done:
				done <- lease // settled by the loop above
			case <-ctx.Done():
			}
			continue
		}
		res, err := c.Reserve(ctx, 200*time.Millisecond)
		if errors.Is(err, queue.ErrTimeout) || ctx.Err() != nil {
			continue
		} else if err != nil {
			return err
		}
		var e protocol.Entry
		if err := json.Unmarshal(res.Body, &e); err != nil {
			return err
		}
		t0 := time.Now()
		started, err := f.master.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, Slot: busy, EntryID: res.ID, Entry: e})
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, model.ErrConflict) {
			f.note("start", t0, nil)
			f.stale.Add(1)
			_ = c.Delete(ctx, res.ID)
			continue
		}
		f.note("start", t0, err)
		if err != nil {
			_ = c.Release(ctx, res.ID, e.Priority, time.Second)
			continue
		}
		mu.Lock()
		running[started.Lease] = res.ID
		mu.Unlock()
		// Runs last runTime ± 50 %; the first of each slot less, as if the
		// fleet had been busy for a while, so that the finishes spread.
		d := f.runTime/2 + rand.N(f.runTime)
		if startedRuns++; startedRuns <= f.slots {
			d = rand.N(f.runTime)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return
			}
			t0 := time.Now()
			_, err := f.master.Finish(ctx, started.Lease, protocol.Finish{DurationMS: d.Milliseconds()})
			if ctx.Err() != nil {
				return
			}
			f.note("finish", t0, err)
			f.finished.Add(1)
			done <- started.Lease
		}()
	}
	return nil
}

// dbWrites counts the statements that changed rows on a MariaDB server.
func dbWrites(b *testing.B, db *sql.DB) int64 {
	b.Helper()
	rows, err := db.Query(`SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_insert', 'Com_update', 'Com_delete', 'Com_replace', 'Com_insert_select')`)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var n int64
	for rows.Next() {
		var name string
		var v int64
		if err := rows.Scan(&name, &v); err != nil {
			b.Fatal(err)
		}
		n += v
	}
	return n
}

// dbQuestions counts the statements a MariaDB server was sent (the two of
// each reading of it included).
func dbQuestions(b *testing.B, db *sql.DB) int64 {
	b.Helper()
	var name string
	var n int64
	if err := db.QueryRow(`SHOW GLOBAL STATUS LIKE 'Questions'`).Scan(&name, &n); err != nil {
		b.Fatal(err)
	}
	return n
}

func loadAverage() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// BenchmarkFleet runs FLEET_SLAVES simulated slaves of 8 slots (default
// 100) against FLEET_MASTERS masters (default 1; more stand behind
// HAProxy) on a MariaDB and a beanstalkd of the benchmark's own, at the
// default 5 s heartbeat, each run lasting FLEET_RUN ± 50 % (default 20 s). A first
// window of heartbeats alone gives the masters' CPU time per heartbeat; a
// second, with a job running on every slot, the CPU time per attempt (its
// start and finish, its feeding, and the heartbeats' share taken away), the
// database writes of each, and the p99 latency of the API calls. Run it
// with -benchtime 1x; docs/scale.md has the figures.
func BenchmarkFleet(b *testing.B) {
	n := envInt(b, "FLEET_SLAVES", 100)
	masters := envInt(b, "FLEET_MASTERS", 1)
	runTime := time.Duration(envInt(b, "FLEET_RUN", 20)) * time.Second
	const slots, window = 8, 20 * time.Second
	mdb := testenv.OwnMariaDB(b)
	bs := testenv.OwnBeanstalkd(b)
	s := newStackWith(b, stackOptions{masters: masters, mysql: mdb, beanstalk: bs,
		config: "[master]\nheartbeat_interval = 5s\nheartbeat_timeout = 15s\nqueue_window = 100000\n"})
	root, err := sql.Open("mysql", "root@tcp("+mdb.Addr+")/")
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	ms := s.masters
	if len(ms) == 0 {
		ms = []*proc{s.master}
	}
	pids := []int{}
	for _, m := range ms {
		pids = append(pids, m.cmd.Process.Pid)
	}
	// The masters alone: what their background loops cost each second.
	time.Sleep(5 * time.Second)
	c0, q0 := cpuOf(b, pids), dbQuestions(b, root)
	time.Sleep(10 * time.Second)
	c1, q1 := cpuOf(b, pids), dbQuestions(b, root)
	b.Logf("idle: %d masters: %.1f ms CPU and %.1f statements a second per master; load average %s",
		masters, float64(c1.sub(c0).self.Microseconds())/1000/10/float64(masters), float64(q1-q0-2)/10/float64(masters), loadAverage())
	b.ReportMetric(float64(q1-q0-2)/10/float64(masters), "idle-statements/s/master")

	f := &simFleet{master: client.New(s.url, client.WithToken(stackToken), client.WithTimeout(30*time.Second)),
		bsAddr: bs.Addr, tube: "dist_test", slots: slots, every: 5 * time.Second, runTime: runTime,
		lat: map[string][]time.Duration{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.slave(ctx, i); err != nil && ctx.Err() == nil {
				b.Errorf("simulated slave %d: %v", i, err)
			}
		}()
	}
	waitFor(b, 2*time.Minute, "the simulated slaves to register", func() bool {
		var l protocol.SlaveList
		s.get("/api/v1/slaves?alive=1", &l)
		return len(l.Slaves) == n
	})
	measure := func(what string) (cpu time.Duration, writes int64, load string) {
		time.Sleep(f.every) // settle
		f.reset()
		c0, w0 := cpuOf(b, pids), dbWrites(b, root)
		time.Sleep(window)
		c1, w1 := cpuOf(b, pids), dbWrites(b, root)
		load = loadAverage()
		b.Logf("%s: %d slaves × %d slots, %d masters, %s: %d heartbeats, %d attempts, master CPU %s, %d DB writes, p99 %s (heartbeat %s), %d stale entries, %d failed calls %v; load average %s",
			what, n, slots, masters, window, f.beats.Load(), f.finished.Load(), c1.sub(c0).self, w1-w0,
			f.percentile("", 0.99), f.percentile("heartbeat", 0.99), f.stale.Load(), f.failures.Load(), f.lastErr.Load(), load)
		return c1.sub(c0).self, w1 - w0, load
	}
	idleCPU, idleWrites, _ := measure("heartbeats alone")
	idleBeats := max(1, f.beats.Load())
	perBeat := idleCPU / time.Duration(idleBeats)
	writesPerBeat := float64(idleWrites) / float64(idleBeats)
	b.ReportMetric(float64(perBeat.Microseconds())/1000, "cpu-ms/heartbeat")
	b.ReportMetric(writesPerBeat, "writes/heartbeat")

	s.writeInputs(map[string]string{"noop": "true\n"})
	hash := s.archive("noop", "ARG=0")
	tasks := make([]jobTask, n*slots*(int(window/runTime)+3))
	for i := range tasks {
		tasks[i] = jobTask{IsolateHash: hash, Description: fmt.Sprintf("fleet-%06d", i), Timeout: 600}
	}
	s.submitNoWait(tasks)
	waitFor(b, time.Minute, "the slots to fill", func() bool {
		var l protocol.SlaveList
		s.get("/api/v1/slaves?alive=1", &l)
		busy := 0
		for _, sl := range l.Slaves {
			busy += sl.Running
		}
		return busy >= n*slots*9/10
	})
	cpu, writes, _ := measure("job running")
	beats, done := f.beats.Load(), f.finished.Load()
	perAttempt := (cpu - time.Duration(beats)*perBeat) / time.Duration(max(1, done))
	b.ReportMetric(float64(perAttempt.Microseconds())/1000, "cpu-ms/attempt")
	b.ReportMetric((float64(writes)-float64(beats)*writesPerBeat)/float64(max(1, done)), "writes/attempt")
	b.ReportMetric(float64(done)/window.Seconds(), "attempts/s")
	b.ReportMetric(float64(f.stale.Load())/float64(max(1, done)), "stale/attempt")
	b.ReportMetric(float64(f.percentile("", 0.99).Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(f.percentile("heartbeat", 0.99).Microseconds())/1000, "p99-heartbeat-ms")
	b.ReportMetric(float64(f.percentile("start", 0.99).Microseconds())/1000, "p99-start-ms")
	b.ReportMetric(float64(f.percentile("finish", 0.99).Microseconds())/1000, "p99-finish-ms")
}

// The simulated slaves of BenchmarkFleet, on two masters behind HAProxy:
// a 60-task job passes with each task run once, every call answered.
func TestSimulatedSlaves(t *testing.T) {
	bs := testenv.OwnBeanstalkd(t)
	s := newStackWith(t, stackOptions{masters: 2, beanstalk: bs})
	f := &simFleet{master: client.New(s.url, client.WithToken(stackToken), client.WithTimeout(10*time.Second)),
		bsAddr: bs.Addr, tube: "dist_test", slots: 4, runTime: 200 * time.Millisecond,
		lat: map[string][]time.Duration{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for i := range 5 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.slave(ctx, i); err != nil && ctx.Err() == nil {
				t.Errorf("simulated slave %d: %v", i, err)
			}
		}()
	}
	s.writeInputs(map[string]string{"noop": "true\n"})
	hash := s.archive("noop", "ARG=0")
	tasks := make([]jobTask, 60)
	for i := range tasks {
		tasks[i] = jobTask{IsolateHash: hash, Description: fmt.Sprintf("sim-%02d", i), Timeout: 60}
	}
	job := s.submitNoWait(tasks)
	waitFor(t, time.Minute, "the job to finish", func() bool { return s.finished(job) })
	var list protocol.AttemptList
	s.get("/api/v1/jobs/"+job+"/tasks", &list)
	passed := 0
	for _, a := range list.Tasks {
		if a.State == "passed" && a.Runs == 1 {
			passed++
		}
	}
	if len(list.Tasks) != len(tasks) || passed != len(tasks) {
		t.Errorf("%d attempts, %d passed on their first run; want %d of each", len(list.Tasks), passed, len(tasks))
	}
	if f.finished.Load() != int64(len(tasks)) || f.failures.Load() != 0 || f.beats.Load() == 0 {
		t.Errorf("%d finishes, %d heartbeats, %d failed calls (%v); want %d finishes, heartbeats, no failure",
			f.finished.Load(), f.beats.Load(), f.failures.Load(), f.lastErr.Load(), len(tasks))
	}
}
