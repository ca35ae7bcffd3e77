package slave

import (
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Told to drain by a heartbeat's answer, the slave takes no new task,
// lets the running one end and reports it, deregisters and returns nil
// on its own: no abort, no kill, and the queued entry left to others.
func TestDrainFinishesAndLeaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		a := h.task("a", inputs{command: []string{"block"}}, func(s *protocol.Spec) { s.TimeoutMS = 20000 })
		b := h.task("b", sh(`exit 0`), nil)
		drains := 0
		h.master.heartbeat = func(_ string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			if len(hb.Running) == 1 || drains > 0 {
				drains++
				return protocol.HeartbeatReply{Drain: true}, nil
			}
			return protocol.HeartbeatReply{}, nil
		}
		h.start()
		var err error
		returned := false
		h.waitFor("Run to return by itself", func() bool {
			select {
			case err = <-h.done:
				returned = true
			default:
			}
			return returned
		})
		h.slave = nil
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
		if drains == 0 {
			t.Fatal("no heartbeat listed the run")
		}
		fins := h.master.made("finish")
		if len(fins) != 1 || fins[0].lease != h.master.answered("start")[0].lease || !fins[0].finish.TimedOut {
			t.Errorf("finishes %+v; want the run of a, reported when it ended", fins)
		}
		if _, res := h.runner.ran(); len(res) != 1 || res[0].Canceled || res[0].Duration != 20*time.Second {
			t.Errorf("runs %+v; want a alone, to its end", res)
		}
		if n := len(h.master.made("abort")); n != 0 {
			t.Errorf("%d aborts", n)
		}
		if got := h.q.history(a); !slices.Equal(got, []string{"reserve", "delete"}) {
			t.Errorf("entry of a: %q", got)
		}
		if got := h.q.history(b); len(got) != 0 || !h.exists(b) {
			t.Errorf("entry of b: %q; want it untouched, in the queue", got)
		}
		if d := h.master.made("deregister"); len(d) != 1 {
			t.Errorf("deregistered %d times", len(d))
		}
		h.checkTidy()
	})
}
