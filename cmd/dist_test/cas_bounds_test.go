package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// A 1 MB gzip bomb (1 GiB of zeros) under a wrong digest is refused by the
// isolate server before it has written more than its own size anywhere.
func TestIsolateServerRefusesGzipBomb(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "none.cnf"), nil, 0o644)
	p := startProc(t, "isolate-server", append(os.Environ(), "DIST_TEST_CNF="+filepath.Join(dir, "none.cnf")), true,
		"isolate-server", "--data-dir", filepath.Join(dir, "isolate"))
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zeros := make([]byte, 1<<20)
	for range 1024 {
		zw.Write(zeros)
	}
	zw.Close()
	before := wchar(t, p.cmd.Process.Pid)
	req, _ := http.NewRequest(http.MethodPut, p.url+"/api/v1/cas/"+strings.Repeat("ab", 20), bytes.NewReader(bomb.Bytes()))
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	written := wchar(t, p.cmd.Process.Pid) - before
	t.Logf("a %d-byte bomb: %d %s; the server wrote %d bytes", bomb.Len(), resp.StatusCode, strings.TrimSpace(string(body)), written)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(body), "send it uncompressed") {
		t.Errorf("bomb: %d %s; want 413", resp.StatusCode, body)
	}
	if written > 4<<20 {
		t.Errorf("the server wrote %d bytes for a %d-byte bomb", written, bomb.Len())
	}
}

// wchar is the bytes a process has written (files and sockets alike).
func wchar(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "wchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no wchar")
	return 0
}
