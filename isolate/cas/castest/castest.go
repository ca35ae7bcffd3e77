// Package castest runs a real CAS for the tests of the packages that use
// one (cas itself, archive, fetch): the handler over a local blob store,
// served by httptest, with a client of it, a count of the requests it
// answered, and downloads it can cut midway.
package castest

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
)

// CutAt is how many bytes of a cut download are sent before the
// connection drops.
const CutAt = 100 << 10

// CAS is a CAS server for one test. Its client retries after a
// millisecond, not a quarter of a second.
type CAS struct {
	Store  *local.Store
	URL    string // the server's root
	Client *cas.Client

	mu       sync.Mutex
	requests map[string]int // by method
	puts     []string       // digests PUT
	gets     map[string]int // GETs by digest
	cuts     map[string]int // digest -> bodies still to cut after CutAt bytes
}

// New starts a CAS with opts (TempDir defaults to one of t's) and stops it
// when t ends.
func New(t testing.TB, opts cas.Options) *CAS {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	c := &CAS{Store: st, requests: map[string]int{}, gets: map[string]int{}, cuts: map[string]int{}}
	mux := chi.NewRouter()
	mux.Mount(protocol.PathCAS, cas.NewHandler(st, opts))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		digest := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		c.mu.Lock()
		c.requests[r.Method]++
		cut := false
		switch r.Method {
		case http.MethodPut:
			c.puts = append(c.puts, digest)
		case http.MethodGet:
			c.gets[digest]++
			if cut = c.cuts[digest] > 0; cut {
				c.cuts[digest]--
			}
		}
		c.mu.Unlock()
		if cut {
			w = &cuttingWriter{ResponseWriter: w, left: CutAt}
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.URL = srv.URL
	c.Client = cas.NewClient(srv.URL+"/", srv.Client())
	c.Client.SetRetries(4, time.Millisecond)
	return c
}

// cuttingWriter sends the headers and the first bytes of a body, then
// drops the connection, as a network failure midway would.
type cuttingWriter struct {
	http.ResponseWriter
	left int
}

func (w *cuttingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		w.ResponseWriter.Write(p[:w.left])
		w.ResponseWriter.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.left -= len(p)
	return w.ResponseWriter.Write(p)
}

// Count is the number of requests of method answered so far.
func (c *CAS) Count(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[method]
}

// Puts lists the digests PUT so far, in order.
func (c *CAS) Puts() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.puts...)
}

// Gets is the number of GETs of digest so far.
func (c *CAS) Gets(digest string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gets[digest]
}

// AllGets is the number of GETs of each digest so far.
func (c *CAS) AllGets() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.gets)
}

// Cut makes the next n downloads of digest drop after CutAt bytes.
func (c *CAS) Cut(digest string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cuts[digest] = n
}

// Put uploads data through the client and returns its sha-1 digest.
func (c *CAS) Put(t testing.TB, data []byte) string {
	t.Helper()
	d := isolate.HashBytes(isolate.SHA1, data)
	if err := c.Client.Upload(context.Background(), d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	return d
}

// Key is the key of the store under which the server keeps digest, ""
// when it keeps it nowhere. It looks, rather than knowing the layout of
// the server's generations: "cas/<generation>/<digest>".
func (c *CAS) Key(t testing.TB, digest string) string {
	t.Helper()
	var found string
	err := c.Store.List(context.Background(), "cas/", func(k string, _ blob.Info) error {
		if strings.HasSuffix(k, "/"+digest) {
			found = k
			return errStop
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	return found
}

var errStop = errors.New("found")

// Stored reports whether the server keeps digest.
func (c *CAS) Stored(t testing.TB, digest string) bool {
	t.Helper()
	return c.Key(t, digest) != ""
}
