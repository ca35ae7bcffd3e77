// Package testlog collects what a test's servers and processes log, so that
// the test can read it while they still write, and picks out the JSON log
// lines of one request. It is for tests only.
package testlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"

	"github.com/dist-test/dist_test/internal/requestid"
)

// Buffer is an io.Writer that goroutines may write to while the test reads
// it.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Records returns the JSON log lines logged with the request id, decoded;
// lines that are not JSON are skipped.
func (b *Buffer) Records(requestID string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(b.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m[requestid.LogKey] == requestID {
			out = append(out, m)
		}
	}
	return out
}

// Errors returns the "err" attribute of the error lines logged with the
// request id.
func (b *Buffer) Errors(requestID string) []string {
	var errs []string
	for _, m := range b.Records(requestID) {
		if m["level"] == "ERROR" {
			e, _ := m["err"].(string)
			errs = append(errs, e)
		}
	}
	return errs
}
