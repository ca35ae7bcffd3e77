package isolate

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// testCAS is a real CAS: the handler over a local blob store, served by
// httptest, with a count of the requests it answered.
type testCAS struct {
	store  *local.Store
	srv    *httptest.Server
	client *CASClient

	mu       sync.Mutex
	requests map[string]int // by method
	puts     []string       // digests PUT
}

func newTestCAS(t *testing.T, opts CASOptions) *testCAS {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	tc := &testCAS{store: st, requests: map[string]int{}}
	mux := http.NewServeMux()
	mux.Handle(protocol.PathCAS+"/", NewCASHandler(st, opts))
	tc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc.mu.Lock()
		tc.requests[r.Method]++
		if r.Method == http.MethodPut {
			tc.puts = append(tc.puts, r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:])
		}
		tc.mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(tc.srv.Close)
	tc.client = NewCASClient(tc.srv.URL+"/", tc.srv.Client())
	tc.client.backoff = time.Millisecond
	return tc
}

func (tc *testCAS) count(method string) int {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return tc.requests[method]
}

func (tc *testCAS) stored(t *testing.T, digest string) bool {
	t.Helper()
	_, err := tc.store.Stat(context.Background(), casKey(digest))
	if err != nil && !errors.Is(err, blob.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestCASPutGetHead(t *testing.T) {
	tc := newTestCAS(t, CASOptions{})
	ctx := context.Background()
	data := []byte("test input bytes\n")
	d := HashBytes(SHA1, data)

	put := func() int {
		req, _ := http.NewRequest(http.MethodPut, tc.srv.URL+protocol.PathCAS+"/"+d, bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := put(); got != http.StatusCreated {
		t.Fatalf("first PUT: status %d, want 201", got)
	}
	if got := put(); got != http.StatusOK {
		t.Fatalf("second PUT: status %d, want 200", got)
	}

	resp, err := http.Get(tc.srv.URL + protocol.PathCAS + "/" + d)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.ContentLength != int64(len(data)) ||
		resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET: %d %q len %d type %q", resp.StatusCode, body, resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Head(tc.srv.URL + protocol.PathCAS + "/" + d)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD: %d len %d", resp.StatusCode, resp.ContentLength)
	}

	// Through the client.
	rc, size, err := tc.client.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) || size != int64(len(data)) {
		t.Fatalf("Open: %q size %d", got, size)
	}
	absent := HashBytes(SHA1, []byte("absent"))
	if ok, err := tc.client.Exists(ctx, d); !ok || err != nil {
		t.Fatalf("Exists(stored) = %v, %v", ok, err)
	}
	if ok, err := tc.client.Exists(ctx, absent); ok || err != nil {
		t.Fatalf("Exists(absent) = %v, %v", ok, err)
	}
	if _, _, err := tc.client.Open(ctx, absent); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("Open(absent): %v, want model.ErrNotFound", err)
	}
}

func TestCASRefusesMismatchedUpload(t *testing.T) {
	tc := newTestCAS(t, CASOptions{})
	d := HashBytes(SHA256, []byte("the real content"))
	err := tc.client.Upload(context.Background(), d, strings.NewReader("other content"), 13)
	if !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("Upload of wrong bytes: %v, want model.ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "hash to") {
		t.Errorf("error %q does not say the bytes do not match", err)
	}
	if tc.stored(t, d) {
		t.Fatal("mismatched blob was stored")
	}
	if n := tc.count(http.MethodPut); n != 1 {
		t.Errorf("%d PUTs, want 1 (a 4xx is never retried)", n)
	}
}

func TestCASTooLarge(t *testing.T) {
	tc := newTestCAS(t, CASOptions{MaxBlobSize: 10})
	data := []byte("eleven byte")
	d := HashBytes(SHA1, data)
	err := tc.client.Upload(context.Background(), d, bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, model.ErrTooLarge) {
		t.Fatalf("Upload over the limit: %v, want model.ErrTooLarge", err)
	}
	// Without a Content-Length the server finds out while reading.
	err = tc.client.Upload(context.Background(), d, io.MultiReader(bytes.NewReader(data)), -1)
	if !errors.Is(err, model.ErrTooLarge) {
		t.Fatalf("chunked upload over the limit: %v, want model.ErrTooLarge", err)
	}
	if tc.stored(t, d) {
		t.Fatal("blob over the limit was stored")
	}
	small := []byte("ten bytes!")
	if err := tc.client.Upload(context.Background(), HashBytes(SHA1, small), bytes.NewReader(small), 10); err != nil {
		t.Fatalf("upload at the limit: %v", err)
	}
}

func TestCASMissing(t *testing.T) {
	tc := newTestCAS(t, CASOptions{})
	ctx := context.Background()
	var have, lack []string
	for i := range 6 {
		data := []byte{byte(i)}
		d := HashBytes(SHA1, data)
		if i%2 == 0 {
			if err := tc.client.Upload(ctx, d, bytes.NewReader(data), 1); err != nil {
				t.Fatal(err)
			}
			have = append(have, d)
		} else {
			lack = append(lack, d)
		}
	}
	got, err := tc.client.Missing(ctx, append(append([]string{}, have...), lack...))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(lack, ",") {
		t.Fatalf("Missing = %v, want %v", got, lack)
	}

	// A malformed digest is refused as a whole.
	_, err = tc.client.Missing(ctx, []string{have[0], "XYZ"})
	if !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("Missing with a bad digest: %v, want model.ErrInvalid", err)
	}
	resp, err := http.Post(tc.srv.URL+protocol.PathCAS+"/missing", "application/json", strings.NewReader(`{"digests":["ABCDEF"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var e protocol.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Code != "invalid" || !strings.Contains(e.Error, "ABCDEF") {
		t.Fatalf("raw bad query: %d %+v", resp.StatusCode, e)
	}
}

func TestCASMissingBatches(t *testing.T) {
	tc := newTestCAS(t, CASOptions{})
	digests := make([]string, MaxMissingDigests+5)
	for i := range digests {
		digests[i] = HashBytes(SHA1, []byte{byte(i), byte(i >> 8)})
	}
	got, err := tc.client.Missing(context.Background(), digests)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(digests) {
		t.Fatalf("%d missing, want %d", len(got), len(digests))
	}
	if n := tc.count(http.MethodPost); n != 2 {
		t.Fatalf("%d queries, want 2 batches", n)
	}
	// The server refuses a larger query outright.
	body, _ := json.Marshal(missingRequest{Digests: digests})
	resp, err := http.Post(tc.srv.URL+protocol.PathCAS+"/missing", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized query: status %d, want 413", resp.StatusCode)
	}
}

func TestCASBadDigestInPath(t *testing.T) {
	tc := newTestCAS(t, CASOptions{})
	for _, p := range []string{"abc", strings.Repeat("A", 40), strings.Repeat("g", 64)} {
		resp, err := http.Get(tc.srv.URL + protocol.PathCAS + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		var e protocol.Error
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || e.Code != "invalid" {
			t.Errorf("GET %s: %d %+v, want 400 invalid", p, resp.StatusCode, e)
		}
	}
}

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
	c := NewCASClient(srv.URL, srv.Client())
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

	c := NewCASClient("http://"+addr, nil)
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
	h := NewCASHandler(st, CASOptions{TempDir: t.TempDir()})
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
	c := NewCASClient(srv.URL, srv.Client())
	c.backoff = time.Millisecond
	ctx := context.Background()

	data := []byte("bytes sent twice")
	d := HashBytes(SHA1, data)
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
	err = c.Upload(ctx, HashBytes(SHA1, other), io.MultiReader(bytes.NewReader(other)), int64(len(other)))
	if !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Upload with a one-shot reader: %v, want the 500", err)
	}
	if n := puts.Load(); n != 3 {
		t.Fatalf("%d PUTs, want 3 (no retry of a one-shot reader)", n)
	}
}
