package cas

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/isolate"
)

// TestCASClientRetries shows that 5xx answers are retried and 4xx are not.
func TestCASClientRetries(t *testing.T) {
	var calls atomic.Int32
	var fails atomic.Int32
	fails.Store(2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		switch {
		case strings.HasSuffix(r.URL.Path, "/"+strings.Repeat("4", 40)):
			w.WriteHeader(http.StatusNotFound)
		case n <= fails.Load():
			http.Error(w, "try later", http.StatusServiceUnavailable)
		default:
			io.WriteString(w, "ok")
		}
	}))
	defer srv.Close()
	c := NewClient(srv.URL, srv.Client())
	c.backoff = time.Millisecond
	ctx := context.Background()

	rc, _, err := c.Open(ctx, strings.Repeat("a", 40))
	if err != nil {
		t.Fatalf("Open after two 503s: %v", err)
	}
	rc.Close()
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}

	calls.Store(100) // no more failures
	_, _, err = c.Open(ctx, strings.Repeat("4", 40))
	if !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("Open(404): %v", err)
	}
	if n := calls.Load(); n != 101 {
		t.Fatalf("%d requests for a 404, want 1", n-100)
	}

	// Persistent 5xx: a few attempts, then the server's error.
	calls.Store(0)
	fails.Store(1 << 30)
	_, _, err = c.Open(ctx, strings.Repeat("b", 40))
	if !errors.Is(err, model.ErrUnavailable) || !strings.Contains(err.Error(), "try later") {
		t.Fatalf("Open with a failing server: %v", err)
	}
	if n := calls.Load(); n != int32(c.attempts) {
		t.Fatalf("%d requests, want %d", n, c.attempts)
	}
}

func TestCASClientConnectionRefusedHonoursContext(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now

	c := NewClient("http://"+addr, nil)
	c.attempts = 1000
	c.backoff = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Exists(ctx, strings.Repeat("a", 40))
		done <- err
	}()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Exists with a canceled context: %v", err)
	}

	c.attempts, c.backoff = 3, time.Millisecond
	if _, err := c.Exists(context.Background(), strings.Repeat("a", 40)); err == nil ||
		!strings.Contains(err.Error(), "refused") {
		t.Fatalf("Exists against a closed port: %v, want connection refused", err)
	}
}

// An upload retried after a 5xx sends its bytes again from the start when
// the reader can rewind, and is not retried when it cannot.
func TestCASClientUploadRetryRewinds(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := serve(st, Options{TempDir: t.TempDir()})
	var puts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && puts.Add(1)%2 == 1 {
			io.CopyN(io.Discard, r.Body, 3) // read part of it, then fail
			http.Error(w, "disk hiccup", http.StatusInternalServerError)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, srv.Client())
	c.backoff = time.Millisecond
	ctx := context.Background()

	data := []byte("bytes sent twice")
	d := isolate.HashBytes(isolate.SHA1, data)
	if err := c.Upload(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Upload with a rewindable reader: %v", err)
	}
	if n := puts.Load(); n != 2 {
		t.Fatalf("%d PUTs, want 2", n)
	}
	if ok, err := c.Exists(ctx, d); !ok || err != nil {
		t.Fatalf("blob not stored after the retry: %v, %v", ok, err)
	}

	other := []byte("sent once")
	err = c.Upload(ctx, isolate.HashBytes(isolate.SHA1, other), io.MultiReader(bytes.NewReader(other)), int64(len(other)))
	if !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Upload with a one-shot reader: %v, want the 500", err)
	}
	if n := puts.Load(); n != 3 {
		t.Fatalf("%d PUTs, want 3 (no retry of a one-shot reader)", n)
	}
}
