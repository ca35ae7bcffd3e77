package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/client"
	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/internal/store/mysql"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/internal/store/sqlstore"
	"github.com/dist-test/dist_test/internal/testenv"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/server"
	"github.com/dist-test/dist_test/server/api"
	"github.com/dist-test/dist_test/web"
)

const testToken = "slave-token-of-the-api-tests"

// asSlave are the headers of a slave's request.
var asSlave = http.Header{"Authorization": {"Bearer " + testToken}}

// harness is a master on the real embedded backends behind a real HTTP
// server; the test plays the client and the slave.
type harness struct {
	t      *testing.T
	url    string
	m      *server.Master
	st     *sqlstore.Store
	q      queue.Queue
	api    *client.Client // a user, by its loopback address
	slave  *client.Client // a slave, by the token
	cas    *cas.Client
	blobs  *local.Store
	digest string // a manifest stored in the CAS
}

// harnessOptions shape the master of a harness.
type harnessOptions struct {
	// guard: who may call what; the zero value gives the slave token
	// testToken and makes the loopback address a user.
	guard      *auth.Config
	ownersOnly bool
	now        func() time.Time // the master's clock
	log        *slog.Logger     // where the master logs; nowhere when nil
	config     server.Config    // the master's configuration
}

func newHarness(t *testing.T) *harness { return newHarnessWith(t, harnessOptions{}) }

func newHarnessWith(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	return newHarnessOn(t, o, func(t *testing.T) *sqlstore.Store {
		st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}

// onEachStore runs fn on a harness over SQLite and one over MariaDB.
func onEachStore(t *testing.T, fn func(t *testing.T, h *harness)) {
	onEachStoreWith(t, harnessOptions{}, fn)
}

// onEachStoreWith is onEachStore with harnesses shaped by o.
func onEachStoreWith(t *testing.T, o harnessOptions, fn func(t *testing.T, h *harness)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, newHarnessWith(t, o)) })
	t.Run("mysql", func(t *testing.T) {
		fn(t, newHarnessOn(t, o, func(t *testing.T) *sqlstore.Store {
			st, err := mysql.OpenDSN(context.Background(), testenv.MySQL(t), "test database")
			if err != nil {
				t.Fatal(err)
			}
			return st
		}))
	})
}

// newHarnessOn is newHarness over the store open returns.
func newHarnessOn(t *testing.T, o harnessOptions, open func(t *testing.T) *sqlstore.Store) *harness {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st := open(t)
	t.Cleanup(func() { st.Close() })
	blobs, err := local.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	q := mem.New()
	t.Cleanup(func() { q.Close() })
	log := o.log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	h := &harness{t: t, st: st, q: q}
	srv := httptest.NewUnstartedServer(nil)
	h.url = "http://" + srv.Listener.Addr().String()
	h.cas = cas.NewClient(h.url, nil)
	h.blobs = blobs
	if h.m, err = server.New(st, q, blobs, cas.NewService(blobs, 0, o.now), server.Options{Logger: log, Now: o.now, Config: o.config}); err != nil {
		t.Fatal(err)
	}
	gc := auth.Config{SlaveToken: testToken, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	if o.guard != nil {
		gc = *o.guard
	}
	guard, err := auth.New(gc)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = api.New(h.m, api.Options{
		Guard:      guard,
		OwnersOnly: o.ownersOnly,
		CAS:        cas.NewHandler(blobs, cas.Options{TempDir: dir, Logger: log}),
		Pages:      web.New(h.m, log),
		Logger:     log,
	})
	srv.Start()
	t.Cleanup(srv.Close)
	h.api = client.New(srv.URL, client.WithRetry(1, time.Millisecond, time.Millisecond))
	h.slave = client.New(srv.URL, client.WithRetry(1, time.Millisecond, time.Millisecond), client.WithToken(testToken))
	manifest := (&isolate.Isolated{Algo: isolate.SHA1, Version: isolate.IsolatedVersion, Command: []string{"true"}}).Encode()
	h.digest = isolate.HashBytes(isolate.SHA1, manifest)
	// Stored through the CAS's own handler, without the guard, so that
	// every harness has it whoever its guard lets upload.
	seedRoutes := chi.NewRouter()
	seedRoutes.Mount(protocol.PathCAS, cas.NewHandler(blobs, cas.Options{TempDir: dir, Logger: log}))
	seed := httptest.NewServer(seedRoutes)
	defer seed.Close()
	if err := cas.NewClient(seed.URL, nil).Upload(ctx, h.digest, bytes.NewReader(manifest), int64(len(manifest))); err != nil {
		t.Fatal(err)
	}
	return h
}

// count returns the rows of a table.
func (h *harness) count(table string) int {
	h.t.Helper()
	var n int
	if err := h.st.DB().QueryRow("SELECT COUNT(*) FROM " + table).Scan(&n); err != nil {
		h.t.Fatal(err)
	}
	return n
}

// do sends a request and returns the status and body.
func (h *harness) do(method, path, ctype string, body string) (int, string, http.Header) {
	h.t.Helper()
	return h.doWith(nil, method, path, ctype, body)
}

// doWith sends a request with more headers.
func (h *harness) doWith(hdr http.Header, method, path, ctype string, body string) (int, string, http.Header) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.url+path, strings.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func (h *harness) form(path string, v url.Values) (int, string) {
	h.t.Helper()
	code, body, _ := h.do("POST", path, "application/x-www-form-urlencoded", v.Encode())
	return code, body
}

// jobJSON is a job of n tasks running the stored manifest.
func (h *harness) jobJSON(n int, extra string) string {
	var parts []string
	for i := range n {
		parts = append(parts, `{"isolate_hash": "`+h.digest+`", "description": "t`+string(rune('a'+i))+`"`+extra+`}`)
	}
	return `{"tasks": [` + strings.Join(parts, ",") + `]}`
}

// reserve feeds the queue and reserves one entry as a slave slot would.
func (h *harness) reserve(c queue.Consumer) (queue.Reserved, protocol.Entry) {
	h.t.Helper()
	if _, err := h.m.FeedOnce(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	res, err := c.Reserve(context.Background(), 0)
	if err != nil {
		h.t.Fatalf("reserve: %v", err)
	}
	var e protocol.Entry
	if err := json.Unmarshal(res.Body, &e); err != nil {
		h.t.Fatal(err)
	}
	return res, e
}

// startNext registers a slave and starts the next queued entry on it, as a
// slot would; the entry stays reserved until the test ends.
func (h *harness) startNext() (protocol.Started, protocol.Entry) {
	h.t.Helper()
	ctx := context.Background()
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 1})
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := h.q.NewConsumer(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	res, e := h.reserve(c)
	st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
	if err != nil {
		h.t.Fatal(err)
	}
	return st, e
}

// failWithLog ends a started run as failed with log as its stdout.
func (h *harness) failWithLog(st protocol.Started, log string) {
	h.t.Helper()
	ctx := context.Background()
	if err := h.slave.Upload(ctx, st.Lease, "stdout", strings.NewReader(log), int64(len(log))); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{ExitCode: 1, Outputs: []string{"stdout"}}); err != nil {
		h.t.Fatal(err)
	}
}
