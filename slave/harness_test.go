package slave

// The unit tests run a whole Slave inside a testing/synctest bubble: its
// heartbeats, touches, reserve timeouts and retry delays go by on the
// bubble's clock. Around it: a fake master that records what it was sent,
// the in-process queue with a recorder of what the slave did to each
// entry, and fake inputs. Commands are real processes (sh -c), except
// those named "block", which stand for a run that lasts until it is
// stopped: the bubble's clock stands still while a real process runs, so
// a run that must outlive a heartbeat or a timeout cannot be one.
//
// As root, the slave runs its tasks as per-slot uids that no account or
// other process has (as in slave/process's tests); otherwise as itself.
// The same assertions hold either way.

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/slave/process"
	"github.com/dist-test/dist_test/slave/taskuser"
)

// ---- the master ----

// call is one call the slave made to the master, with the master's answer.
type call struct {
	method string        // register, heartbeat, start, upload, finish, abort, deregister
	at     time.Duration // on the bubble's clock, since the harness began
	slave  string
	lease  string
	start  protocol.Start
	hb     protocol.Heartbeat
	output string // upload: the output's name
	body   string // upload: its bytes
	finish protocol.Finish
	reason string // abort
	err    error
}

// fakeMaster answers with its function fields, which newHarness sets to a
// working master and tests replace. While down is set, every call fails
// with it before reaching them.
type fakeMaster struct {
	register   func(r protocol.Register) (protocol.Registered, error)
	heartbeat  func(slaveID string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error)
	start      func(s protocol.Start) (protocol.Started, error)
	upload     func(lease, name string, body []byte) error
	finish     func(lease string, f protocol.Finish) (protocol.Finished, error)
	abort      func(lease, reason string) error
	deregister func(slaveID string) error

	began time.Time
	mu    sync.Mutex
	down  error
	calls []call
}

var _ Master = (*fakeMaster)(nil)

// unreachableMaster is how a master that is down looks to the slave.
var unreachableMaster = &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}

func (m *fakeMaster) setDown(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.down = err
}

func (m *fakeMaster) record(c call) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c.at = time.Since(m.began)
	m.calls = append(m.calls, c)
}

func (m *fakeMaster) isDown() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.down
}

// made returns the calls of one method, in order.
func (m *fakeMaster) made(method string) []call {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []call
	for _, c := range m.calls {
		if c.method == method {
			out = append(out, c)
		}
	}
	return out
}

// answered returns the calls of one method that the master answered.
func (m *fakeMaster) answered(method string) []call {
	var out []call
	for _, c := range m.made(method) {
		if c.err == nil {
			out = append(out, c)
		}
	}
	return out
}

// serve answers one call, with the master's error while it is down or
// else with answer, and records it; note adds what the answer tells.
func serve[T any](m *fakeMaster, c call, answer func() (T, error), note func(*call, T)) (T, error) {
	var out T
	err := m.isDown()
	if err == nil {
		out, err = answer()
	}
	if note != nil {
		note(&c, out)
	}
	c.err = err
	m.record(c)
	return out, err
}

func (m *fakeMaster) Register(ctx context.Context, r protocol.Register) (protocol.Registered, error) {
	return serve(m, call{method: "register"}, func() (protocol.Registered, error) { return m.register(r) },
		func(c *call, reg protocol.Registered) { c.slave = reg.SlaveID })
}

func (m *fakeMaster) Heartbeat(ctx context.Context, slaveID string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
	return serve(m, call{method: "heartbeat", slave: slaveID, hb: hb},
		func() (protocol.HeartbeatReply, error) { return m.heartbeat(slaveID, hb) }, nil)
}

func (m *fakeMaster) Deregister(ctx context.Context, slaveID string) error {
	_, err := serve(m, call{method: "deregister", slave: slaveID}, func() (struct{}, error) { return struct{}{}, m.deregister(slaveID) }, nil)
	return err
}

func (m *fakeMaster) Start(ctx context.Context, s protocol.Start) (protocol.Started, error) {
	return serve(m, call{method: "start", slave: s.SlaveID, start: s}, func() (protocol.Started, error) { return m.start(s) },
		func(c *call, st protocol.Started) { c.lease = st.Lease })
}

func (m *fakeMaster) Upload(ctx context.Context, lease, name string, r io.Reader, size int64) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	_, err = serve(m, call{method: "upload", lease: lease, output: name, body: string(body)}, func() (struct{}, error) {
		if size != int64(len(body)) {
			return struct{}{}, fmt.Errorf("%w: size %d for %d bytes", model.ErrInvalid, size, len(body))
		}
		return struct{}{}, m.upload(lease, name, body)
	}, nil)
	return err
}

func (m *fakeMaster) Finish(ctx context.Context, lease string, f protocol.Finish) (protocol.Finished, error) {
	return serve(m, call{method: "finish", lease: lease, finish: f}, func() (protocol.Finished, error) { return m.finish(lease, f) }, nil)
}

func (m *fakeMaster) Abort(ctx context.Context, lease, reason string) error {
	_, err := serve(m, call{method: "abort", lease: lease, reason: reason}, func() (struct{}, error) { return struct{}{}, m.abort(lease, reason) }, nil)
	return err
}

// ---- the queue ----

// qop is one thing a slot did to a queue entry.
type qop struct {
	kind  string // reserve, touch, release, bury, delete
	id    uint64
	prio  uint32
	delay time.Duration
}

func (o qop) String() string {
	switch o.kind {
	case "release":
		return fmt.Sprintf("release(%d, %s)", o.prio, o.delay)
	case "bury":
		return fmt.Sprintf("bury(%d)", o.prio)
	}
	return o.kind
}

// recQueue is the in-process queue, recording what its consumers do. While
// refuse is set, new consumers cannot connect.
type recQueue struct {
	*mem.Queue
	mu     sync.Mutex
	ops    []qop
	refuse error
	dials  []time.Time
}

func (q *recQueue) add(o qop) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.ops = append(q.ops, o)
}

func (q *recQueue) NewConsumer(ctx context.Context) (queue.Consumer, error) {
	q.mu.Lock()
	q.dials = append(q.dials, time.Now())
	err := q.refuse
	q.mu.Unlock()
	if err != nil {
		return nil, err
	}
	c, err := q.Queue.NewConsumer(ctx)
	if err != nil {
		return nil, err
	}
	return &recConsumer{Consumer: c, q: q}, nil
}

// history is what was done to entry id, touches left out.
func (q *recQueue) history(id uint64) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []string
	for _, o := range q.ops {
		if o.id == id && o.kind != "touch" {
			out = append(out, o.String())
		}
	}
	return out
}

func (q *recQueue) touches(id uint64) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := 0
	for _, o := range q.ops {
		if o.id == id && o.kind == "touch" {
			n++
		}
	}
	return n
}

// settled tells whether the slot let entry id go (deleted, released or
// buried it) after its last reservation.
func (q *recQueue) settled(id uint64) bool {
	h := q.history(id)
	return len(h) > 0 && h[len(h)-1] != "reserve"
}

type recConsumer struct {
	queue.Consumer
	q *recQueue
}

func (c *recConsumer) Reserve(ctx context.Context, timeout time.Duration) (queue.Reserved, error) {
	r, err := c.Consumer.Reserve(ctx, timeout)
	if err == nil {
		c.q.add(qop{kind: "reserve", id: r.ID})
	}
	return r, err
}

func (c *recConsumer) Touch(ctx context.Context, id uint64) error {
	err := c.Consumer.Touch(ctx, id)
	if err == nil {
		c.q.add(qop{kind: "touch", id: id})
	}
	return err
}

func (c *recConsumer) Release(ctx context.Context, id uint64, prio uint32, delay time.Duration) error {
	err := c.Consumer.Release(ctx, id, prio, delay)
	if err == nil {
		c.q.add(qop{kind: "release", id: id, prio: prio, delay: delay})
	}
	return err
}

func (c *recConsumer) Bury(ctx context.Context, id uint64, prio uint32) error {
	err := c.Consumer.Bury(ctx, id, prio)
	if err == nil {
		c.q.add(qop{kind: "bury", id: id, prio: prio})
	}
	return err
}

func (c *recConsumer) Delete(ctx context.Context, id uint64) error {
	err := c.Consumer.Delete(ctx, id)
	if err == nil {
		c.q.add(qop{kind: "delete", id: id})
	}
	return err
}

// ---- the inputs ----

// inputs is what the fake isolate server holds for one hash.
type inputs struct {
	command []string
	files   map[string]string // path → content
	err     error             // Fetch fails with it
}

type fetch struct {
	digest, dir string
	placement   Placement
}

// fakeInputs fetches with its function field, recording each fetch and
// counting the releases of what it fetched.
type fakeInputs struct {
	fetch func(ctx context.Context, digest, dir string, p Placement) (Tree, error)

	mu       sync.Mutex
	fetches  []fetch
	released int
}

func (f *fakeInputs) Fetch(ctx context.Context, digest, dir string, p Placement) (Tree, error) {
	f.mu.Lock()
	f.fetches = append(f.fetches, fetch{digest: digest, dir: dir, placement: p})
	f.mu.Unlock()
	tree, err := f.fetch(ctx, digest, dir, p)
	tree.Release = func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.released++
	}
	return tree, err
}

func (f *fakeInputs) counts() (fetches, released int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.fetches), f.released
}

// place writes files into dir as Fetch does: owned by the task's user
// when the placement names one.
func place(dir string, p Placement, files map[string]string) error {
	for name, content := range files {
		path := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			return err
		}
		if p.Owner != nil {
			for q := path; q != dir; q = filepath.Dir(q) {
				if err := os.Lchown(q, int(p.Owner.UID), int(p.Owner.GID)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ---- the commands ----

// runner runs the slave's commands and records them with their results.
// When blocking is set, a "block" run sends on it once it runs.
type runner struct {
	blocking chan struct{}
	// usage replaces what the host measured of each run (its cgroup's
	// figures, which no test can predict).
	usage process.Result

	mu      sync.Mutex
	cmds    []process.Command
	results []process.Result
}

func (r *runner) run(ctx context.Context, c process.Command) (process.Result, error) {
	r.mu.Lock()
	r.cmds = append(r.cmds, c)
	r.mu.Unlock()
	var res process.Result
	var err error
	if len(c.Args) > 0 && c.Args[0] == "block" {
		res, err = block(ctx, c, r.blocking)
	} else {
		res, err = process.Run(ctx, c)
	}
	res.CPUTime, res.PeakMemory = r.usage.CPUTime, r.usage.PeakMemory
	r.mu.Lock()
	r.results = append(r.results, res)
	r.mu.Unlock()
	return res, err
}

func (r *runner) ran() ([]process.Command, []process.Result) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.cmds), slices.Clone(r.results)
}

// block stands for a command that runs until it is stopped, reporting as
// process.Run would: past its Timeout, timed out and ended by SIGTERM;
// when ctx ends, canceled. It writes a line to each log first, unless it
// is "block quiet", whose logs stay empty.
func block(ctx context.Context, c process.Command, running chan<- struct{}) (process.Result, error) {
	out, errOut := "blocking\n", "still blocking\n"
	if len(c.Args) > 1 && c.Args[1] == "quiet" {
		out, errOut = "", ""
	}
	if err := os.WriteFile(c.Stdout, []byte(out), 0o600); err != nil {
		return process.Result{}, err
	}
	if err := os.WriteFile(c.Stderr, []byte(errOut), 0o600); err != nil {
		return process.Result{}, err
	}
	if running != nil {
		running <- struct{}{}
	}
	start := time.Now()
	var timeout <-chan time.Time
	if c.Timeout > 0 {
		t := time.NewTimer(c.Timeout)
		defer t.Stop()
		timeout = t.C
	}
	res := process.Result{ExitCode: -int(syscall.SIGTERM), StdoutBytes: int64(len(out)), StderrBytes: int64(len(errOut))}
	select {
	case <-ctx.Done():
		res.Canceled = true
	case <-timeout:
		res.TimedOut = true
	}
	res.Duration = time.Since(start)
	return res, nil
}

// ---- the harness ----

// uidPool hands out the task uids of the tests run as root, from a range
// no account has, apart from slave/process's tests' (2e9 + pid%1e5), one
// per test binary. A uid serves one harness at a time: after each task
// every process of its uid is killed.
var uidPool struct {
	sync.Mutex
	busy [64]bool
}

func taskUsers(t *testing.T, slots int) []taskuser.User {
	if os.Geteuid() != 0 {
		return nil
	}
	base := 2_100_000_000 + uint32(os.Getpid()%100_000)*uint32(len(uidPool.busy))
	uidPool.Lock()
	defer uidPool.Unlock()
	var users []taskuser.User
	for n := range uidPool.busy {
		if len(users) == slots {
			break
		}
		if !uidPool.busy[n] {
			uidPool.busy[n] = true
			id := base + uint32(n)
			users = append(users, taskuser.User{Name: fmt.Sprintf("slot%d", len(users)), User: process.User{UID: id, GID: id}})
			t.Cleanup(func() {
				uidPool.Lock()
				defer uidPool.Unlock()
				uidPool.busy[n] = false
			})
		}
	}
	if len(users) < slots {
		t.Fatal("out of task uids: make uidPool larger")
	}
	return users
}

// harness is one slave (or one after another) and what surrounds it. It
// must be made inside the bubble.
type harness struct {
	t      *testing.T
	began  time.Time
	master *fakeMaster
	q      *recQueue
	inputs *fakeInputs
	runner *runner
	cfg    Config

	mu        sync.Mutex
	specs     map[string]protocol.Spec // by task id
	trees     map[string]inputs        // by isolate hash
	registers int
	starts    int

	slave  *Slave
	cancel context.CancelFunc
	done   chan error
}

const (
	beatEvery  = 5 * time.Second
	touchEvery = 10 * time.Second
	entryTTR   = time.Minute
	entryPrio  = uint32(1000)
)

func newHarness(t *testing.T, slots int) *harness {
	t.Helper()
	scratch := t.TempDir()
	if os.Geteuid() == 0 {
		// The task users pass through the test's folders to their sandboxes.
		for d := filepath.Dir(scratch); d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	h := &harness{
		t:      t,
		began:  time.Now(),
		q:      &recQueue{Queue: mem.New()},
		inputs: &fakeInputs{},
		runner: &runner{},
		specs:  map[string]protocol.Spec{},
		trees:  map[string]inputs{},
		cfg: Config{
			Slots: slots, ScratchDir: scratch, Hostname: "test-host", Version: "test",
			KillGrace: 3 * time.Second, Users: taskUsers(t, slots), TaskEnv: []string{"SITE=lab"},
			Getenv: func(k string) string {
				return map[string]string{"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "USER": "builder", "SECRET": "s3cr3t"}[k]
			},
		},
	}
	t.Cleanup(func() { h.q.Close() })
	h.master = &fakeMaster{
		began: h.began,
		register: func(r protocol.Register) (protocol.Registered, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.registers++
			return protocol.Registered{SlaveID: fmt.Sprintf("slave-%d", h.registers),
				HeartbeatIntervalMS: beatEvery.Milliseconds(), TouchIntervalMS: touchEvery.Milliseconds()}, nil
		},
		heartbeat: func(string, protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			return protocol.HeartbeatReply{}, nil
		},
		start: func(s protocol.Start) (protocol.Started, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			spec, ok := h.specs[s.Entry.TaskID]
			if !ok || s.Entry.Token != "token-"+s.Entry.TaskID {
				return protocol.Started{}, fmt.Errorf("%w: no such queued attempt", model.ErrConflict)
			}
			h.starts++
			return protocol.Started{Lease: fmt.Sprintf("lease-%s-%d", s.Entry.TaskID, h.starts), Spec: spec}, nil
		},
		upload: func(string, string, []byte) error { return nil },
		finish: func(_ string, f protocol.Finish) (protocol.Finished, error) {
			if f.ExitCode == 0 && !f.TimedOut && f.Error == "" {
				return protocol.Finished{State: "passed"}, nil
			}
			return protocol.Finished{State: "failed"}, nil
		},
		abort:      func(string, string) error { return nil },
		deregister: func(string) error { return nil },
	}
	h.inputs.fetch = func(ctx context.Context, digest, dir string, p Placement) (Tree, error) {
		h.mu.Lock()
		in, ok := h.trees[digest]
		h.mu.Unlock()
		if !ok {
			return Tree{}, InvalidInputs(fmt.Errorf("no manifest %s", digest))
		}
		if in.err != nil {
			return Tree{}, in.err
		}
		if err := place(dir, p, in.files); err != nil {
			return Tree{}, err
		}
		return Tree{Command: in.command, Inputs: model.Inputs{ColdItems: int64(len(in.files)), FetchTime: 1500 * time.Millisecond}}, nil
	}
	return h
}

// sh is a task running script.
func sh(script string) inputs { return inputs{command: []string{"sh", "-c", script}} }

// task queues an attempt of task name with these inputs; spec, when
// given, changes the attempt's spec.
func (h *harness) task(name string, in inputs, spec func(*protocol.Spec)) uint64 {
	h.t.Helper()
	return h.put(h.define(name, in, spec))
}

// define makes the master know an attempt of task name, and returns its
// queue entry without putting it.
func (h *harness) define(name string, in inputs, spec func(*protocol.Spec)) protocol.Entry {
	s := protocol.Spec{JobID: "job-1", TaskID: name, Attempt: 1, Description: "the " + name + " task", IsolateHash: "hash-" + name}
	if spec != nil {
		spec(&s)
	}
	h.mu.Lock()
	h.specs[name] = s
	h.trees[s.IsolateHash] = in
	n := len(h.specs)
	h.mu.Unlock()
	return protocol.Entry{AttemptID: int64(n), JobID: s.JobID, TaskID: name, Attempt: s.Attempt,
		Token: "token-" + name, Priority: entryPrio}
}

func (h *harness) put(e protocol.Entry) uint64 {
	h.t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		h.t.Fatal(err)
	}
	return h.putRaw(body)
}

func (h *harness) putRaw(body []byte) uint64 {
	h.t.Helper()
	id, err := h.q.Put(context.Background(), queue.Entry{Body: body, Priority: entryPrio, TTR: entryTTR})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

// start runs a new Slave on the harness's scratch folder.
func (h *harness) start() *Slave {
	h.t.Helper()
	if h.slave != nil {
		h.t.Fatal("a slave runs already")
	}
	log := slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.slave = New(h.master, h.q, h.inputs, h.cfg, log)
	h.slave.runCommand = h.runner.run
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	s := h.slave
	go func() { h.done <- s.Run(ctx) }()
	return s
}

// stop ends the slave as SIGTERM does (its context ends) and waits for Run.
func (h *harness) stop() {
	h.t.Helper()
	synctest.Wait()
	h.cancel()
	if err := <-h.done; err != nil {
		h.t.Errorf("Run = %v", err)
	}
	h.slave = nil
}

// waitFor lets the bubble's clock run until cond holds, for at most an
// hour of it.
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(time.Hour)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("waited an hour for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkRetries asserts that a loop that failed for a while tried again
// at least every cap: at is when each try was made.
func checkRetries(t *testing.T, what string, at []time.Duration, atLeast int, cap time.Duration) {
	t.Helper()
	if len(at) < atLeast {
		t.Errorf("%d %s, want at least %d", len(at), what, atLeast)
	}
	for i := 1; i < len(at); i++ {
		if gap := at[i] - at[i-1]; gap > cap {
			t.Errorf("%s between %s %d and %d, over the %s cap", gap, what, i, i+1, cap)
		}
	}
}

// now is the time on the bubble's clock since the harness began.
func (h *harness) now() time.Duration { return time.Since(h.began) }

func (h *harness) stats() queue.Stats {
	h.t.Helper()
	st, err := h.q.Stats(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) exists(id uint64) bool {
	h.t.Helper()
	ok, err := h.q.Exists(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return ok
}

func (h *harness) spoolDir() string     { return filepath.Join(h.cfg.ScratchDir, "spool") }
func (h *harness) sandboxesDir() string { return filepath.Join(h.cfg.ScratchDir, "sandboxes") }

// spooled lists the folders in the spool.
func (h *harness) spooled() []string {
	h.t.Helper()
	return names(h.t, h.spoolDir())
}

func names(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out
}

// checkTidy asserts what holds after every run: nothing left in the spool
// or the sandboxes, and every fetched tree released.
func (h *harness) checkTidy() {
	h.t.Helper()
	if s := h.spooled(); len(s) != 0 {
		h.t.Errorf("spool holds %q, want nothing", s)
	}
	if s := names(h.t, h.sandboxesDir()); len(s) != 0 {
		h.t.Errorf("sandboxes hold %q, want nothing", s)
	}
	if f, r := h.inputs.counts(); f != r {
		h.t.Errorf("%d fetches, %d releases of their trees", f, r)
	}
}

// uploads describes the uploads the master accepted: output: content, in
// order; an artifacts zip as its files.
func (h *harness) uploads() []string {
	h.t.Helper()
	var out []string
	for _, c := range h.master.answered("upload") {
		out = append(out, c.output+": "+describe(h.t, c.output, c.body))
	}
	return out
}

func describe(t *testing.T, output, body string) string {
	t.Helper()
	if output != protocol.OutputArtifacts {
		return body
	}
	zr, err := zip.NewReader(bytes.NewReader([]byte(body)), int64(len(body)))
	if err != nil {
		t.Fatalf("artifacts: %v", err)
	}
	var files []string
	for _, f := range zr.File {
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(r)
		r.Close()
		files = append(files, fmt.Sprintf("%s=%q", f.Name, b))
	}
	sort.Strings(files)
	return "zip " + strings.Join(files, " ")
}
