package slave

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// spool keeps finished results on disk until the master acknowledges them,
// so that a result survives a master restart and a slave restart. Each
// result is a folder named by its lease holding report.json and the output
// files to upload.
type spool struct {
	dir string

	mu      sync.Mutex
	pending map[string]bool // leases of results not yet acknowledged
}

// report is what a spooled result says.
type report struct {
	Lease   string            `json:"lease"`
	Finish  protocol.Finish   `json:"finish"`
	Outputs map[string]string `json:"outputs"` // output name → file name in the folder
}

func openSpool(dir string) (*spool, error) {
	// Its folders are named by leases, which a task must never learn.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return &spool{dir: dir, pending: map[string]bool{}}, nil
}

// save moves the output files into the spool and writes the report, which
// is renamed into place last: a folder without report.json is a save that
// did not finish, and is removed by load.
func (sp *spool) save(r report, files map[string]string) error {
	if !spoolName(r.Lease) {
		return fmt.Errorf("spool: lease %q cannot name a folder", model.Clip(r.Lease, 40))
	}
	dir := filepath.Join(sp.dir, r.Lease)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	r.Outputs = map[string]string{}
	for name, path := range files {
		if err := os.Rename(path, filepath.Join(dir, name)); err != nil {
			return fmt.Errorf("spooling %s: %w", name, err)
		}
		r.Outputs[name] = name
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	// Not synced: the spool is there for a slave process that dies, and the
	// page cache outlives it. A host that crashes loses what it had not
	// written back (docs/reliability.md), and the master queues those
	// runs again.
	tmp := filepath.Join(dir, "report.json.tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, "report.json")); err != nil {
		return err
	}
	sp.mu.Lock()
	sp.pending[r.Lease] = true
	sp.mu.Unlock()
	return nil
}

// path is where an output of a spooled result is.
func (sp *spool) path(lease, file string) string { return filepath.Join(sp.dir, lease, file) }

// done forgets a result the master acknowledged (or refused for good).
func (sp *spool) done(lease string) {
	sp.mu.Lock()
	delete(sp.pending, lease)
	sp.mu.Unlock()
	if spoolName(lease) {
		_ = os.RemoveAll(filepath.Join(sp.dir, lease))
	}
}

// spoolName tells whether a lease can name a folder of the spool: the
// master's leases are hex, and nothing else may reach a path, however the
// lease came to the slave.
func spoolName(lease string) bool {
	if lease == "" || len(lease) > 128 {
		return false
	}
	for i := 0; i < len(lease); i++ {
		c := lease[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// leases lists the results waiting, for the heartbeat.
func (sp *spool) leases() []string {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	out := make([]string, 0, len(sp.pending))
	for l := range sp.pending {
		out = append(out, l)
	}
	sort.Strings(out)
	return out
}

// load returns the results a previous life of the slave left behind.
func (sp *spool) load() ([]report, error) {
	entries, err := os.ReadDir(sp.dir)
	if err != nil {
		return nil, err
	}
	var out []report
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(sp.dir, e.Name(), "report.json"))
		var r report
		if errors.Is(err, fs.ErrNotExist) || (err == nil && json.Unmarshal(b, &r) != nil) || r.Lease != e.Name() {
			_ = os.RemoveAll(filepath.Join(sp.dir, e.Name())) // a save cut short
			continue
		}
		if err != nil {
			return nil, err
		}
		sp.mu.Lock()
		sp.pending[r.Lease] = true
		sp.mu.Unlock()
		out = append(out, r)
	}
	return out, nil
}
