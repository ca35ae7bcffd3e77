package slave

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/dist-test/dist_test/internal/protocol"
)

// TestReadNew reads what a log gained since the last read, at most the
// last protocol.TailBytes of it, and starts over on a log that was cut.
func TestReadNew(t *testing.T) {
	p := filepath.Join(t.TempDir(), "stdout")
	if c, end, ok := readNew(p, 0); ok || end != 0 || len(c.Data) != 0 {
		t.Errorf("missing log: %+v %d %v", c, end, ok)
	}
	write := func(s string) {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(s)
		f.Close()
	}
	write("one\n")
	c, end, ok := readNew(p, 0)
	if !ok || c.Offset != 0 || string(c.Data) != "one\n" || end != 4 {
		t.Errorf("first read: %+v %d %v", c, end, ok)
	}
	if _, _, ok := readNew(p, end); ok {
		t.Error("nothing new, yet a chunk")
	}
	write(strings.Repeat("x", 2*protocol.TailBytes) + "two\n")
	c, end, ok = readNew(p, end)
	if !ok || len(c.Data) != protocol.TailBytes || !strings.HasSuffix(string(c.Data), "two\n") || c.Offset+int64(len(c.Data)) != end {
		t.Errorf("burst: %d bytes from %d, end %d", len(c.Data), c.Offset, end)
	}
	if err := os.WriteFile(p, []byte("cut\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, end, ok := readNew(p, end); !ok || c.Offset != 0 || string(c.Data) != "cut\n" || end != 4 {
		t.Errorf("after a cut: %+v %d %v", c, end, ok)
	}
}

// Heartbeats carry what a running task wrote since the last one the
// master answered, and what the input cache holds with how the inputs
// were found.
func TestHeartbeatsCarryTailsAndCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		h.cfg.CacheSize = func() (int64, int64) { return 7, 700 }
		in := inputs{command: []string{"block"}, files: map[string]string{"a": "1", "b": "2"}}
		id := h.task("tailed", in, nil)
		beats := 0
		h.master.heartbeat = func(_ string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
			if beats++; beats == 3 {
				return protocol.HeartbeatReply{Kill: hb.Running}, nil
			}
			return protocol.HeartbeatReply{}, nil
		}
		h.start()
		h.waitFor("the run to be stopped", func() bool { return h.q.settled(id) })
		h.stop()

		hbs := h.master.made("heartbeat")
		if len(hbs) < 3 {
			t.Fatalf("%d heartbeats", len(hbs))
		}
		lease := h.master.answered("start")[0].lease
		first := hbs[0].hb
		if len(first.Tails) != 1 || first.Tails[0].Lease != lease || string(first.Tails[0].Stdout.Data) != "blocking\n" ||
			string(first.Tails[0].Stderr.Data) != "still blocking\n" || first.Tails[0].Stdout.Offset != 0 {
			t.Errorf("first heartbeat's tails: %+v", first.Tails)
		}
		if len(hbs[1].hb.Tails) != 0 {
			t.Errorf("second heartbeat sends again what the master has: %+v", hbs[1].hb.Tails)
		}
		c := hbs[0].hb.Cache
		if c == nil || c.Items != 7 || c.Bytes != 700 || c.ColdItems != 2 || c.HotItems != 0 {
			t.Errorf("cache in the heartbeat: %+v", c)
		}
	})
}
