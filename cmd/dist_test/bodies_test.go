package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Past [master] max_large_bodies, a large body waits unread, and unanswered,
// until a turn frees.
func TestLargeBodiesTakeTurns(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 1, config: "[master]\nmax_large_bodies = 1\n"})
	// A: a chunked (so large) submission that holds its turn while it trickles.
	a := dial(t, c.url)
	fmt.Fprintf(a, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
	fmt.Fprintf(a, "1\r\n{\r\n")
	time.Sleep(200 * time.Millisecond) // let A take the turn
	// B: a 2 MiB body, sent whole.
	b := dial(t, c.url)
	body := `{"tasks": [], "pad": "` + strings.Repeat("x", 2<<20) + `"}`
	fmt.Fprintf(b, "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	br := bufio.NewReader(b)
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a second large body was answered while the only turn was taken")
	}
	fmt.Fprintf(a, "1\r\n}\r\n0\r\n\r\n") // A ends: {} has no tasks, refused
	b.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the waiting body was not served once the turn freed: %v", err)
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("B: %d, want 400 (a job without tasks)", resp.StatusCode)
	}
}

// BenchmarkConcurrentLargeSubmissions reports the master's peak memory (RSS)
// while six clients each submit a 63 MB job of 100,000 tasks at once, with
// the default max_large_bodies (2) and with a larger value (as if unbounded).
func BenchmarkConcurrentLargeSubmissions(b *testing.B) {
	for _, turns := range []int{2, 64} {
		b.Run(fmt.Sprintf("max_large_bodies=%d", turns), func(b *testing.B) {
			c := newClusterWith(b, clusterOptions{slots: 1, config: fmt.Sprintf("[master]\nmax_large_bodies = %d\nmax_tasks_per_job = 100000\n", turns)})
			c.writeInputs(map[string]string{"noop": "exit 0\n"})
			hash := c.archive("noop", "ARG=")
			body := largeJob(hash, 100000)
			b.Logf("each body: %d bytes", len(body))
			for b.Loop() {
				var wg sync.WaitGroup
				for i := range 6 {
					wg.Go(func() {
						doc := bytes.Replace(body, []byte(`"id": "big"`), fmt.Appendf(nil, `"id": "big-%d-%d"`, i, time.Now().UnixNano()), 1)
						resp, err := http.Post(c.url+"/api/v1/jobs", "application/json", bytes.NewReader(doc))
						if err != nil {
							b.Error(err)
							return
						}
						resp.Body.Close()
						if resp.StatusCode != http.StatusCreated {
							b.Errorf("submit: %d", resp.StatusCode)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(peakRSS(b, c.cmd.Process.Pid))/1e6, "peak-RSS-MB")
		})
	}
}

// largeJob is a JSON job of n tasks of about 630 bytes each.
func largeJob(hash string, n int) []byte {
	var buf bytes.Buffer
	buf.WriteString(`{"id": "big", "tasks": [`)
	pad := strings.Repeat("x", 515)
	for i := range n {
		if i > 0 {
			buf.WriteString(",")
		}
		fmt.Fprintf(&buf, `{"isolate_hash": %q, "description": "test-%d-%s", "timeout": 60, "artifact_archive_globs": ["out/**"]}`, hash, i, pad)
	}
	buf.WriteString("]}")
	return buf.Bytes()
}

// peakRSS reads a process's high-water mark of resident memory, in bytes.
func peakRSS(t testing.TB, pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
