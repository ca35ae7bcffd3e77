package slave

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/slave/process"
)

// A slot that cannot reach the queue tries again with capped backoff,
// and runs tasks once it can.
func TestSlotReconnectsToTheQueue(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		h.q.refuse = errors.New("dial tcp: connection refused")
		id := h.task("a", sh(`exit 0`), nil)
		h.start()
		h.waitFor("a minute", func() bool { return h.now() >= time.Minute })
		h.q.mu.Lock()
		h.q.refuse = nil
		h.q.mu.Unlock()
		h.waitFor("the task", func() bool { return !h.exists(id) })
		h.stop()

		h.q.mu.Lock()
		dials := slices.Clone(h.q.dials)
		h.q.mu.Unlock()
		var at []time.Duration
		for _, d := range dials {
			at = append(at, d.Sub(dials[0]))
		}
		checkRetries(t, "connections in a minute", at, 6, 10*time.Second)
		if fins := h.master.answered("finish"); len(fins) != 1 {
			t.Errorf("%d results, want 1", len(fins))
		}
	})
}

// A task whose inputs could not be fetched here is queued again for
// another slave: this slave lets its entry go by a few times before it
// takes it again (it may be the only slave).
func TestInfraFailureIsLeftToOtherSlaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		fetch := h.inputs.fetch
		fetched := 0
		h.inputs.fetch = func(ctx context.Context, digest, dir string, p Placement) (Tree, error) {
			if fetched++; fetched == 1 {
				return Tree{}, errors.New("isolate server: connection reset")
			}
			return fetch(ctx, digest, dir, p)
		}
		finish := h.master.finish
		h.master.finish = func(lease string, f protocol.Finish) (protocol.Finished, error) {
			if f.Infra {
				return protocol.Finished{State: "queued", Requeued: true}, nil
			}
			return finish(lease, f)
		}
		id := h.task("flaky", sh(`exit 0`), nil)
		h.start()
		h.waitFor("the second run", func() bool { return !h.exists(id) })
		h.stop()

		back := fmt.Sprintf("release(%d, 1s)", model.RetryBase)
		want := []string{"reserve", back, "reserve", back, "reserve", back, "reserve", back, "reserve", "delete"}
		if got := h.q.history(id); !slices.Equal(got, want) {
			t.Errorf("entry:\n %q, want\n %q", got, want)
		}
		starts := h.master.answered("start")
		if len(starts) != 2 || starts[1].at-starts[0].at < 3*time.Second {
			t.Errorf("starts: %+v; want a second one after three passes", starts)
		}
		fins := h.master.answered("finish")
		if len(fins) != 2 || !fins[0].finish.Infra || fins[1].finish.ExitCode != 0 || fins[1].finish.Infra {
			t.Errorf("finishes: %+v", fins)
		}
		h.checkTidy()
	})
}

// A slot does not wait for the master's answer to one result before it
// starts its next task: the result is sent meanwhile.
func TestSlotStartsNextTaskWhileResultIsSent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		a := h.task("a", sh(`exit 0`), nil)
		b := h.task("b", sh(`exit 1`), nil)
		startedB := make(chan struct{})
		start := h.master.start
		h.master.start = func(s protocol.Start) (protocol.Started, error) {
			if s.Entry.TaskID == "b" {
				close(startedB)
			}
			return start(s)
		}
		finish := h.master.finish
		var mu sync.Mutex
		finishes := 0
		h.master.finish = func(lease string, f protocol.Finish) (protocol.Finished, error) {
			mu.Lock()
			finishes++
			first := finishes == 1
			mu.Unlock()
			if first {
				select {
				case <-startedB:
				case <-time.After(time.Minute):
					return protocol.Finished{}, errors.New("the slot waited for this answer before its next start")
				}
			}
			return finish(lease, f)
		}
		h.start()
		h.waitFor("both tasks", func() bool { return !h.exists(a) && !h.exists(b) })
		h.stop()

		fins := h.master.made("finish")
		if len(fins) != 2 || fins[0].finish.ExitCode != 0 || fins[1].finish.ExitCode != 1 {
			t.Errorf("finishes %+v; want a's (sent once, while b started) then b's", fins)
		}
		for _, id := range []uint64{a, b} {
			if got := h.q.history(id); !slices.Equal(got, []string{"reserve", "delete"}) {
				t.Errorf("entry %d: %q, want reserved and deleted", id, got)
			}
		}
		h.checkTidy()
	})
}

// What the run's processes used is reported with its result.
func TestUsageIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		h.runner.usage = process.Result{CPUTime: 1500 * time.Millisecond, PeakMemory: 64 << 20}
		id := h.task("a", sh(`exit 0`), nil)
		h.start()
		h.waitFor("the task", func() bool { return !h.exists(id) })
		h.stop()
		if fins := h.master.made("finish"); len(fins) != 1 || fins[0].finish.CPUMS != 1500 || fins[0].finish.PeakMemoryBytes != 64<<20 {
			t.Errorf("finishes %+v; want one with cpu_ms 1500 and peak_memory_bytes %d", fins, 64<<20)
		}
	})
}

// A memory limit the host cannot enforce stops the slave at start rather
// than let tasks run without it.
func TestMemoryLimitNeedsTheHost(t *testing.T) {
	h := newHarness(t, 1)
	cfg := h.cfg
	cfg.MemoryLimit = 1 << 30
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	s := New(h.master, h.q, h.inputs, cfg, nil)
	go func() { done <- s.Run(ctx) }()
	if perr := process.CheckMemoryLimit(); perr != nil {
		err := <-done
		if err == nil || !strings.Contains(err.Error(), "[slave] memory_limit") {
			t.Errorf("Run = %v; want a refusal naming [slave] memory_limit (%v)", err, perr)
		}
		return
	}
	h.waitFor("registration", func() bool { return len(h.master.made("register")) > 0 })
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v", err)
	}
}

// A finished task's folder leaves the folder of sandboxes at once, for a
// trash that only the slave may enter, and is removed from there in the
// background: the slot's next task, run by the same user, cannot reach it
// while it is being removed.
func TestSandboxGoesToTheTrash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		id := h.task("a", sh(`mkdir -p ro/deep && chmod 500 ro; exit 0`), nil)
		h.start()
		h.waitFor("the task", func() bool { return !h.exists(id) })
		synctest.Wait()
		trash := filepath.Join(h.sandboxesDir(), ".trash")
		fi, err := os.Lstat(trash)
		if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
			t.Fatalf("trash: %v, %v; want a folder of mode 0700", fi, err)
		}
		if uid, ok := ownerOf(fi); !ok || uid != os.Geteuid() {
			t.Errorf("trash owned by %d, want the slave's uid %d", uid, os.Geteuid())
		}
		if s := names(t, h.sandboxesDir()); !slices.Equal(s, []string{".trash"}) {
			t.Errorf("sandboxes hold %q once the task is done, want the trash alone", s)
		}
		h.stop()
		h.checkTidy()
	})
}
