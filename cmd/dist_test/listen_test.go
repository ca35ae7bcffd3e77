package main

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The listeners' bounds ([server]), shown on `dist_test local` and on
// `dist_test isolate-server`: idle and slow clients are cut, connections
// are capped, and a long transfer that keeps moving still completes.

const tightServer = `[server]
idle_timeout = 1s
read_timeout = 1s
write_timeout = 1s
min_rate = 16KiB
max_connections = 40
`

// dial opens a raw connection to the server of url.
func dial(t *testing.T, url string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedWithin reads from c until the server closes it, or fails the test
// after limit.
func closedWithin(t *testing.T, c net.Conn, limit time.Duration, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(limit))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server kept the connection open for %s", what, limit)
	}
}

// getOnce sends one keep-alive GET on c and reads its answer.
func getOnce(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func checkIdleAndSlow(t *testing.T, url string) {
	// 30 kept-alive connections that went quiet after one request each.
	idle := make([]net.Conn, 30)
	for i := range idle {
		idle[i] = dial(t, url)
		if resp := getOnce(t, idle[i], bufio.NewReader(idle[i]), "/healthz"); resp.StatusCode != 200 {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
	}
	// A body that trickles: 10 bytes every 200 ms, far below min_rate.
	slow := dial(t, url)
	fmt.Fprintf(slow, "PUT /api/v1/cas/%s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n", strings.Repeat("a", 40))
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(200 * time.Millisecond):
				if _, err := slow.Write(bytes.Repeat([]byte("x"), 10)); err != nil {
					return
				}
			}
		}
	}()
	for i, c := range idle {
		closedWithin(t, c, 15*time.Second, fmt.Sprintf("idle connection %d", i))
	}
	closedWithin(t, slow, 15*time.Second, "slow body")
}

func TestLocalClosesIdleAndSlowConnections(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 1, config: tightServer})
	checkIdleAndSlow(t, c.url)
}

func TestIsolateServerClosesIdleAndSlowConnections(t *testing.T) {
	dir := t.TempDir()
	cnf := filepath.Join(dir, "dist_test.cnf")
	if err := os.WriteFile(cnf, []byte(tightServer), 0o644); err != nil {
		t.Fatal(err)
	}
	p := startProc(t, "isolate-server", append(os.Environ(), "DIST_TEST_CNF="+cnf), true,
		"isolate-server", "--data-dir", filepath.Join(dir, "isolate"))
	checkIdleAndSlow(t, p.url)
}

// Past max_connections a new connection waits, unanswered, until one of
// the open ones closes.
func TestLocalCapsConnections(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 1, config: "[server]\nmax_connections = 5\nidle_timeout = 1m\n"})
	var open []net.Conn
	// The local slave holds connections of its own; fill what is left.
	for range 5 {
		conn := dial(t, c.url)
		open = append(open, conn)
	}
	extra := dial(t, c.url)
	fmt.Fprintf(extra, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(extra)
	extra.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("a connection past max_connections was served at once")
	}
	for _, o := range open {
		o.Close()
	}
	extra.SetReadDeadline(time.Now().Add(20 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("the waiting connection was not served once others closed: %v", err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
}

// An upload that takes several times read_timeout but keeps above
// min_rate completes: the deadline moves with the bytes.
func TestLongUploadAboveMinRateCompletes(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 1, config: tightServer})
	data := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB, sent at ~128 KiB/s: 5 s
	sum := sha1.Sum(data)
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(data); off += 32 << 10 {
			if _, err := pw.Write(data[off : off+32<<10]); err != nil {
				return
			}
			time.Sleep(250 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPut, c.url+"/api/v1/cas/"+hex.EncodeToString(sum[:]), pr)
	req.ContentLength = int64(len(data))
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow but steady upload: %d %s", resp.StatusCode, body)
	}
	t.Logf("a %d-byte upload took %s with read_timeout = 1s", len(data), time.Since(start).Round(time.Millisecond))
}
