package slave

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

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
