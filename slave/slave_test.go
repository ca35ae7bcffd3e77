package slave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sys/unix"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/slave/process"
)

// A task runs in its sandbox, as its slot's user when the slave is root,
// with the environment of the allowlist and nothing else of the slave's:
// neither the slave's secrets nor the lease.
func TestTaskCommandAndEnvironment(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		id := h.task("env", sh(`env; exit 1`), func(s *protocol.Spec) { s.TimeoutMS = 90_000; s.Attempt = 2 })
		h.start()
		h.waitFor("the run", func() bool { return h.q.settled(id) })
		h.stop()

		cmds, _ := h.runner.ran()
		h.inputs.mu.Lock()
		fetches := slices.Clone(h.inputs.fetches)
		h.inputs.mu.Unlock()
		if len(cmds) != 1 || len(fetches) != 1 {
			t.Fatalf("%d commands, %d fetches, want 1", len(cmds), len(fetches))
		}
		c, f := cmds[0], fetches[0]
		tmp := filepath.Join(f.dir, "test-tmp")
		user, wantPlacement := "builder", Placement{Copy: true}
		var wantUser *process.User
		if len(h.cfg.Users) > 0 {
			user, wantUser = h.cfg.Users[0].Name, &h.cfg.Users[0].User
			wantPlacement = Placement{Owner: wantUser}
		}
		wantEnv := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=" + tmp, "TMPDIR=" + tmp, "TEST_TMPDIR=" + tmp,
			"LANG=C.UTF-8", "USER=" + user, "LOGNAME=" + user, "SITE=lab",
			"DIST_TEST_JOB_ID=job-1", "DIST_TEST_TASK_ID=env", "DIST_TEST_ATTEMPT=2"}
		if !slices.Equal(c.Env, wantEnv) {
			t.Errorf("env =\n %q, want\n %q", c.Env, wantEnv)
		}
		if filepath.Dir(filepath.Dir(f.dir)) != h.sandboxesDir() || filepath.Base(f.dir) != "sandbox" {
			t.Errorf("inputs fetched into %s, want a sandbox in %s", f.dir, h.sandboxesDir())
		}
		if f.digest != "hash-env" || !reflect.DeepEqual(f.placement, wantPlacement) {
			t.Errorf("fetch of %s for %+v, want hash-env for %+v", f.digest, f.placement, wantPlacement)
		}
		if c.Dir != f.dir || c.Timeout != 90*time.Second || c.KillGrace != 3*time.Second || c.Tag == "" ||
			!reflect.DeepEqual(c.User, wantUser) || c.Namespaces {
			t.Errorf("command = %+v, want in %s, 90s timeout, 3s grace, a tag, user %v", c, f.dir, wantUser)
		}

		// What the task itself saw.
		up := h.master.answered("upload")
		if len(up) != 1 || up[0].output != "stdout" {
			t.Fatalf("uploads: %+v", up)
		}
		seen := strings.Split(strings.TrimSpace(up[0].body), "\n")
		for _, v := range append(wantEnv, process.TagVar+"="+c.Tag) {
			if !slices.Contains(seen, v) {
				t.Errorf("the task's environment lacks %s", v)
			}
		}
		lease := h.master.answered("start")[0].lease
		for _, v := range seen {
			if strings.Contains(v, lease) || strings.Contains(v, "s3cr3t") {
				t.Errorf("the task saw %q", v)
			}
		}
	})
}

// A heartbeat answer that names a run kills it; nothing of it is reported
// and its entry is deleted: the master counts it no more.
func TestHeartbeatKillStopsARun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		id := h.task("victim", inputs{command: []string{"block"}}, nil)
		h.master.heartbeat = func(_ string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			return protocol.HeartbeatReply{Kill: hb.Running}, nil
		}
		h.start()
		h.waitFor("the run to be stopped", func() bool { return h.q.settled(id) })
		h.waitFor("the next heartbeat", func() bool { return len(h.master.made("heartbeat")) == 2 })
		h.stop()

		_, res := h.runner.ran()
		if len(res) != 1 || !res[0].Canceled || res[0].Duration != beatEvery {
			t.Errorf("runs: %+v; want one, canceled at the first heartbeat", res)
		}
		hbs := h.master.made("heartbeat")
		lease := h.master.answered("start")[0].lease
		if !slices.Equal(hbs[0].hb.Running, []string{lease}) || len(hbs[1].hb.Running) != 0 {
			t.Errorf("heartbeats ran %q then %q; want the run, then nothing", hbs[0].hb.Running, hbs[1].hb.Running)
		}
		for _, m := range []string{"upload", "finish", "abort"} {
			if c := h.master.made(m); len(c) != 0 {
				t.Errorf("%s sent for a killed run: %+v", m, c)
			}
		}
		if got := h.q.history(id); !slices.Equal(got, []string{"reserve", "delete"}) {
			t.Errorf("entry: %q, want reserved and deleted", got)
		}
		h.checkTidy()
	})
}

// The master declared this slave lost (it was suspended, say): on its
// first heartbeat after, it is told to reset. It kills every run without
// reporting any, and goes on taking tasks.
func TestResetOnResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 2)
		a := h.task("a", inputs{command: []string{"block"}}, nil)
		b := h.task("b", inputs{command: []string{"block"}}, nil)
		reset := false
		h.master.heartbeat = func(_ string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			if len(hb.Running) == 2 && !reset {
				reset = true
				return protocol.HeartbeatReply{Reset: true}, nil
			}
			return protocol.HeartbeatReply{}, nil
		}
		h.start()
		h.waitFor("both runs to be dropped", func() bool { return h.q.settled(a) && h.q.settled(b) })
		c := h.task("after", sh(`exit 0`), nil)
		h.waitFor("the next task", func() bool { return h.q.settled(c) })
		h.stop()

		if !reset {
			t.Fatal("the heartbeat never listed both runs")
		}
		for _, id := range []uint64{a, b, c} {
			if got := h.q.history(id); !slices.Equal(got, []string{"reserve", "delete"}) {
				t.Errorf("entry %d: %q, want reserved and deleted", id, got)
			}
		}
		fins := h.master.made("finish")
		if len(fins) != 1 || fins[0].lease != h.master.answered("start")[2].lease {
			t.Errorf("finishes: %+v; want only the task started after the reset", fins)
		}
		if n := len(h.master.made("upload")) + len(h.master.made("abort")); n != 0 {
			t.Errorf("%d uploads and aborts for dropped runs", n)
		}
		if _, res := h.runner.ran(); len(res) != 3 || !res[0].Canceled || !res[1].Canceled {
			t.Errorf("runs: %+v", res)
		}
		h.checkTidy()
	})
}

// A master that no longer knows the slave (it ended the registration, or
// lost its state) answers a heartbeat with 404: the slave drops its runs
// and registers again, and goes on under its new id.
func TestUnknownSlaveRegistersAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		a := h.task("a", inputs{command: []string{"block"}}, nil)
		forgot := false
		h.master.heartbeat = func(id string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			if id == "slave-1" {
				forgot = true
				return protocol.HeartbeatReply{}, fmt.Errorf("%w: no slave slave-1", model.ErrNotFound)
			}
			return protocol.HeartbeatReply{}, nil
		}
		h.start()
		h.waitFor("the run to be dropped", func() bool { return h.q.settled(a) })
		b := h.task("b", sh(`exit 0`), nil)
		h.waitFor("the next task", func() bool { return h.q.settled(b) })
		h.waitFor("a heartbeat as slave-2", func() bool {
			hbs := h.master.made("heartbeat")
			return hbs[len(hbs)-1].slave == "slave-2"
		})
		h.stop()

		if !forgot {
			t.Fatal("no heartbeat as slave-1")
		}
		if reg := h.master.answered("register"); len(reg) != 2 {
			t.Errorf("%d registrations, want 2", len(reg))
		}
		starts := h.master.answered("start")
		if len(starts) != 2 || starts[0].slave != "slave-1" || starts[1].slave != "slave-2" {
			t.Errorf("starts: %+v; want one as slave-1, then one as slave-2", starts)
		}
		if fins := h.master.made("finish"); len(fins) != 1 || fins[0].lease != starts[1].lease {
			t.Errorf("finishes: %+v; want the second run's only", fins)
		}
		if d := h.master.made("deregister"); len(d) != 1 || d[0].slave != "slave-2" {
			t.Errorf("deregistrations: %+v; want slave-2", d)
		}
		h.checkTidy()
	})
}

// SIGTERM: the slave kills its runs (a real process here), tells the
// master it gives each back, releases their entries at once with the
// retries' priority, and deregisters.
func TestShutdownAbortsRuns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 2)
		ready := make(chan string, 1)
		fetch := h.inputs.fetch
		h.inputs.fetch = func(ctx context.Context, digest, dir string, p Placement) (Tree, error) {
			if digest != "hash-real" {
				return fetch(ctx, digest, dir, p)
			}
			fifo := filepath.Join(dir, "ready")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				return Tree{}, err
			}
			if p.Owner != nil {
				if err := os.Lchown(fifo, int(p.Owner.UID), int(p.Owner.GID)); err != nil {
					return Tree{}, err
				}
			}
			ready <- fifo
			return Tree{Command: []string{"sh", "-c", `echo $$ > ready; exec sleep 1000`}}, nil
		}
		real := h.task("real", inputs{}, nil)
		h.start()
		// The fake run starts once the real one holds the first slot.
		f, err := os.Open(<-ready)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || perr != nil {
			t.Fatalf("the task's pid: %q, %v", b, err)
		}
		h.runner.blocking = make(chan struct{}, 1)
		fake := h.task("fake", inputs{command: []string{"block"}}, nil)
		<-h.runner.blocking
		h.cancel() // as SIGTERM does
		if err := <-h.done; err != nil {
			t.Errorf("Run = %v", err)
		}
		h.slave = nil

		if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
			t.Errorf("the task's process %d is still there: kill(0) = %v", pid, err)
		}
		retry := fmt.Sprintf("release(%d, 0s)", model.RetryBase)
		for _, id := range []uint64{real, fake} {
			if got := h.q.history(id); !slices.Equal(got, []string{"reserve", retry}) {
				t.Errorf("entry %d: %q, want reserved, then released at once with the retries' priority", id, got)
			}
		}
		if st := h.stats(); st != (queue.Stats{Ready: 2}) {
			t.Errorf("queue: %+v, want both entries ready", st)
		}
		var aborted []string
		for _, a := range h.master.made("abort") {
			if a.reason != "the slave shut down" {
				t.Errorf("abort reason %q", a.reason)
			}
			aborted = append(aborted, a.lease)
		}
		slices.Sort(aborted)
		var started []string
		for _, s := range h.master.answered("start") {
			started = append(started, s.lease)
		}
		slices.Sort(started)
		if !slices.Equal(aborted, started) || len(started) != 2 {
			t.Errorf("aborted %q, started %q: want every run aborted", aborted, started)
		}
		if n := len(h.master.made("finish")) + len(h.master.made("upload")); n != 0 {
			t.Errorf("%d finishes and uploads of aborted runs", n)
		}
		if d := h.master.made("deregister"); len(d) != 1 || d[0].slave != "slave-1" {
			t.Errorf("deregistrations: %+v", d)
		}
		h.checkTidy()
	})
}

// Registering waits for the master, with capped backoff; a refusal of the
// registration itself ends Run with the master's reason.
func TestRegisterRetriesUntilTheMasterAnswers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		h.master.setDown(unreachableMaster)
		id := h.task("a", sh(`exit 0`), nil)
		h.start()
		h.waitFor("a minute", func() bool { return h.now() >= time.Minute })
		if n := len(h.master.made("start")); n != 0 {
			t.Errorf("%d starts before registering", n)
		}
		h.master.setDown(nil)
		h.waitFor("the task", func() bool { return !h.exists(id) })
		h.stop()

		regs := h.master.made("register")
		if regs[len(regs)-1].err != nil {
			t.Error("the last registration failed")
		}
		var at []time.Duration
		for _, r := range regs {
			at = append(at, r.at)
		}
		checkRetries(t, "registrations in a minute down", at, 6, 10*time.Second)
	})
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		h.master.register = func(protocol.Register) (protocol.Registered, error) {
			return protocol.Registered{}, fmt.Errorf("%w: slots must be from 1 to 1024", model.ErrInvalid)
		}
		h.start()
		if err := <-h.done; err == nil || !strings.Contains(err.Error(), "slots must be") {
			t.Errorf("Run = %v, want the master's refusal", err)
		}
		if n := len(h.master.made("register")); n != 1 {
			t.Errorf("%d registrations tried, want 1", n)
		}
	})
}

// A lease is the master's to choose; the slave names runs in its logs by
// the start of theirs. A short one, from the master or found in the spool,
// is no reason to crash.
func TestShortLeases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		dir := filepath.Join(h.spoolDir(), "L0")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "report.json"), []byte(`{"lease":"L0","finish":{"exit_code":2}}`), 0o600); err != nil {
			t.Fatal(err)
		}
		start := h.master.start
		h.master.start = func(s protocol.Start) (protocol.Started, error) {
			st, err := start(s)
			st.Lease = "L1"
			return st, err
		}
		h.master.heartbeat = func(_ string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			return protocol.HeartbeatReply{Kill: hb.Running}, nil
		}
		id := h.task("a", inputs{command: []string{"block"}}, nil)
		h.start()
		h.waitFor("the run to be stopped", func() bool { return h.q.settled(id) })
		h.stop()

		if f := h.master.answered("finish"); len(f) != 1 || f[0].lease != "L0" || f[0].finish.ExitCode != 2 {
			t.Errorf("finishes: %+v; want the spooled one", f)
		}
		if got := h.q.history(id); !slices.Equal(got, []string{"reserve", "delete"}) {
			t.Errorf("entry: %q, want the run killed and its entry deleted", got)
		}
		h.checkTidy()
	})
}

// A master that no longer knows the slave and then refuses to register it
// again ends Run with its reason: a slave without heartbeats would go on
// reserving tasks it may not start.
func TestRegisteringAgainRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		h.master.heartbeat = func(id string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			return protocol.HeartbeatReply{}, fmt.Errorf("%w: no slave %s", model.ErrNotFound, id)
		}
		register := h.master.register
		h.master.register = func(r protocol.Register) (protocol.Registered, error) {
			if len(h.master.made("register")) > 0 {
				return protocol.Registered{}, fmt.Errorf("%w: this version of the slave is no longer accepted", model.ErrInvalid)
			}
			return register(r)
		}
		h.start()
		select {
		case err := <-h.done:
			if err == nil || !strings.Contains(err.Error(), "no longer accepted") {
				t.Errorf("Run = %v, want the master's refusal", err)
			}
		case <-time.After(time.Hour):
			t.Error("the slave went on for an hour without heartbeats")
			h.cancel()
			<-h.done
		}
		if n := len(h.master.made("register")); n != 2 {
			t.Errorf("%d registrations, want 2", n)
		}
	})
}
