package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/protocol"
)

// guarded is a master whose job routes need an account, and whose guard
// can be replaced (a restarted master forgets its nonces). It counts the
// 401 answers and the requests that reached a handler.
type guarded struct {
	*httptest.Server
	mu       sync.Mutex
	guard    *auth.Guard
	refusals atomic.Int64
	handled  atomic.Int64
}

func newGuarded(t *testing.T) *guarded {
	t.Helper()
	g := &guarded{}
	g.restart(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+protocol.PathWhoAmI, func(w http.ResponseWriter, r *http.Request) { g.current().WhoAmI(w, r) })
	job := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.handled.Add(1)
		writeJSON(w, 200, protocol.Job{ID: "j", User: auth.IdentityOf(r.Context()).Name})
	})
	mux.HandleFunc("/api/v1/jobs/", func(w http.ResponseWriter, r *http.Request) {
		g.current().Require(auth.Write)(job).ServeHTTP(w, r)
	})
	g.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w}
		mux.ServeHTTP(rec, r)
		if rec.status == http.StatusUnauthorized {
			g.refusals.Add(1)
		}
	}))
	t.Cleanup(g.Close)
	return g
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (g *guarded) restart(t *testing.T) {
	guard, err := auth.New(auth.Config{Users: map[string]string{"alice": "pw"}})
	if err != nil {
		t.Fatal(err)
	}
	g.mu.Lock()
	g.guard = guard
	g.mu.Unlock()
}

func (g *guarded) current() *auth.Guard {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.guard
}

// A client with an account gets a challenge once and then answers every
// call from it: one 401 in all, and a body is never sent to be refused.
// When the master forgets the challenge, a call that changes state (never
// retried otherwise) is sent again once, and runs once.
func TestDigestLogin(t *testing.T) {
	g := newGuarded(t)
	c := New(g.URL, WithRetry(1, 0, 0), WithAuth("alice", "pw"))
	ctx := context.Background()
	for range 5 {
		if _, err := c.Retry(ctx, "j", protocol.Retry{TaskIDs: []string{"t"}}); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.refusals.Load(); n != 1 {
		t.Errorf("%d answers 401 for 5 calls; want 1 (the whoami probe)", n)
	}
	if job, err := c.Cancel(ctx, "j"); err != nil || job.User != "alice" {
		t.Errorf("cancel as alice: %+v, %v", job, err)
	}

	g.restart(t)
	before := g.handled.Load()
	if _, err := c.Retry(ctx, "j", protocol.Retry{}); err != nil {
		t.Fatalf("a call after the master forgot the challenge: %v", err)
	}
	if n := g.handled.Load() - before; n != 1 {
		t.Errorf("the call ran %d times, want 1", n)
	}

	bad := New(g.URL, WithRetry(3, 0, 0), WithAuth("alice", "wrong"))
	_, err := bad.Cancel(ctx, "j")
	var e *protocol.StatusError
	if !errors.As(err, &e) || e.Status != 401 || !strings.Contains(e.Message, `sent user "alice": check DIST_TEST_PASSWORD`) {
		t.Errorf("wrong password: %v", err)
	}
	none := New(g.URL, WithRetry(1, 0, 0))
	if _, err := none.Cancel(ctx, "j"); err == nil || !strings.Contains(err.Error(), "sent no credentials: set DIST_TEST_USER and DIST_TEST_PASSWORD") {
		t.Errorf("no credentials: %v", err)
	}
}

// Credentials go to the master only: a download from another host (a
// presigned object store link) carries none.
func TestCredentialsStayWithTheMaster(t *testing.T) {
	var got atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
		w.Write([]byte("object"))
	}))
	defer other.Close()
	for _, opt := range []Option{WithToken("slave-token-long-enough"), WithAuth("alice", "pw")} {
		c := New("http://127.0.0.1:1", WithRetry(1, 0, 0), opt)
		if err := c.Download(context.Background(), other.URL+"/bucket/key?X-Amz-Signature=x", t.TempDir()+"/f"); err != nil {
			t.Fatal(err)
		}
		if a := got.Load().(string); a != "" {
			t.Errorf("a download from another host carried Authorization %q", a)
		}
	}
}

// A certificate that does not verify is not retried, and the error says
// how to trust a private CA.
func TestUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	var retries atomic.Int64
	c := New(srv.URL, WithRetry(5, 0, 0), WithLogf(func(string, ...any) { retries.Add(1) }))
	_, err := c.GetJob(context.Background(), "j")
	if err == nil || !strings.Contains(err.Error(), "DIST_TEST_CA_FILE") {
		t.Errorf("GetJob from an untrusted server: %v", err)
	}
	if n := retries.Load(); n != 0 {
		t.Errorf("retried %d times", n)
	}
}
