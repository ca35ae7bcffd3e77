package slave

import (
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"
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
		if len(dials) < 6 {
			t.Errorf("%d connections tried in a minute, want at least one every 10s", len(dials))
		}
		for i := 1; i < len(dials); i++ {
			if gap := dials[i].Sub(dials[i-1]); gap > 10*time.Second {
				t.Errorf("%s between connections %d and %d, over the 10s cap", gap, i, i+1)
			}
		}
		if fins := h.master.answered("finish"); len(fins) != 1 {
			t.Errorf("%d results, want 1", len(fins))
		}
	})
}
