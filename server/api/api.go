// Package api puts the master on HTTP: the JSON API under /api/v1 (client
// and slave protocol), the legacy endpoints existing dist_test users call,
// the stored outputs, and the mounts for the dashboard and the isolate
// server.
package api

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/requestid"
	"github.com/dist-test/dist_test/server"
)

// Options are the parts of the HTTP surface.
type Options struct {
	// Guard decides who may call what (required).
	Guard *auth.Guard
	// OwnersOnly limits cancel and retry to the job's owner and admins.
	OwnersOnly bool
	// CAS, when set, serves the isolate server under /api/v1/cas (the
	// embedded default mounts it on the master's listener).
	CAS http.Handler
	// Pages, when set, serves the dashboard's HTML pages (/, /job, /trace,
	// /test, /slaves, and /view_log for browsers) and the job page's buttons.
	Pages Pages
	// MaxBodyBytes bounds JSON and form bodies (64 MiB).
	MaxBodyBytes int64
	// MaxLargeBodies bounds the bodies over 1 MiB (job submissions) that
	// are read into memory at once (2); more wait for their turn. Uploads,
	// which stream, do not count.
	MaxLargeBodies int
	Logger         *slog.Logger
	// Ops are the operators' endpoints (health, metrics, version).
	Ops Ops
}

// Pages are the dashboard's handlers.
type Pages interface {
	Index(w http.ResponseWriter, r *http.Request)
	Job(w http.ResponseWriter, r *http.Request)
	Trace(w http.ResponseWriter, r *http.Request)
	Test(w http.ResponseWriter, r *http.Request)
	// ViewLog is the log page of /view_log, for browsers; other clients
	// get the original's bare answer.
	ViewLog(w http.ResponseWriter, r *http.Request)
	LogTail(w http.ResponseWriter, r *http.Request)
	Slaves(w http.ResponseWriter, r *http.Request)
	// Static serves the pages' embedded scripts and styles under /static/.
	Static(w http.ResponseWriter, r *http.Request)
}

// API is the master's HTTP handler.
type API struct {
	m     *server.Master
	opt   Options
	log   *slog.Logger
	large chan struct{} // a token per large body being read or handled
}

// New returns the master's whole HTTP surface. Every route needs its
// access (auth.Read, auth.Write, auth.SlaveProtocol) from opt.Guard; writes
// coming from another site in a browser are refused
// (http.CrossOriginProtection), which leaves non-browser clients alone.
func New(m *server.Master, opt Options) http.Handler {
	if opt.Guard == nil {
		panic("api.New: no Guard")
	}
	if opt.MaxBodyBytes <= 0 {
		opt.MaxBodyBytes = 64 << 20
	}
	if opt.MaxLargeBodies <= 0 {
		opt.MaxLargeBodies = 2
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	a := &API{m: m, opt: opt, log: requestid.Logger(opt.Logger), large: make(chan struct{}, opt.MaxLargeBodies)}
	g := opt.Guard
	read, write, slave := g.Require(auth.Read), g.Require(auth.Write), g.Require(auth.SlaveProtocol)
	r := chi.NewRouter()
	opt.Ops.Use(r)
	r.Use(a.recoverer)
	r.Use(noCache)
	r.Use(a.admitLarge)

	opt.Ops.Mount(r, read)
	r.Get(protocol.PathWhoAmI, g.WhoAmI)
	r.Route("/api/v1", func(r chi.Router) {
		r.With(read).Get("/jobs", a.json(a.listJobs))
		r.With(write).Post("/jobs", a.json(a.createJob))
		r.With(read).Get("/jobs/{id}", a.json(a.getJob))
		r.With(read).Get("/jobs/{id}/tasks", a.json(a.listTasks))
		r.With(write).Post("/jobs/{id}/cancel", a.json(a.cancelJob))
		r.With(write).Post("/jobs/{id}/retry", a.json(a.retryTasks))
		r.With(read).Get("/queue", a.json(a.queueStats))
		r.With(read).Get("/slaves", a.json(a.listSlaves))
		r.With(read).Get("/events", a.json(a.listEvents))
		r.With(slave).Post("/slaves", a.json(a.register))
		r.With(slave).Post("/slaves/{id}/heartbeat", a.json(a.heartbeat))
		r.With(read).Get("/capacity", a.json(a.capacity))
		r.With(write).Post("/slaves/{id}/drain", a.json(a.drainSlave))
		r.With(slave).Delete("/slaves/{id}", a.json(a.deregister))
		r.With(slave).Post("/attempts/start", a.json(a.start))
		r.With(slave).Put("/attempts/{lease}/outputs/{name}", a.json(a.upload))
		r.With(slave).Post("/attempts/{lease}/finish", a.json(a.finish))
		r.With(slave).Post("/attempts/{lease}/abort", a.json(a.abort))
		if opt.CAS != nil {
			r.Mount("/cas", g.CAS(opt.CAS))
		}
	})
	// A signed link needs no login (output checks it).
	r.Get(protocol.PathOutputs+"*", a.output)

	a.legacy(r, read, write)
	if opt.Pages != nil {
		r.With(read).Get("/", opt.Pages.Index)
		r.With(read).Get("/job", opt.Pages.Job)
		r.With(read).Get("/trace", opt.Pages.Trace)
		r.With(read).Get("/test", opt.Pages.Test)
		a.pageActions(r, write)
		r.With(read).Get("/slaves", opt.Pages.Slaves)
		r.With(read).Get("/view_log/tail", opt.Pages.LogTail)
		// The scripts and styles hold no data: no login, so that they
		// load with any page.
		r.Get("/static/*", opt.Pages.Static)
	}
	return requestid.Middleware(http.NewCrossOriginProtection().Handler(r))
}

// recoverer answers a handler's panic as an internal error, with the
// request's id, and logs the panic and its stack under that id.
func (a *API) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v) // the handler cut its answer on purpose
				}
				a.writeError(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// noCache: every answer describes state that changes; the original master
// sent the same header and clients rely on fresh answers.
func noCache(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache, no-store")
		next.ServeHTTP(w, r)
	})
}

// largeBody is the size from which a request body counts as large: a job
// of some thousands of tasks. A body of unknown length counts as large.
const largeBody = 1 << 20

// admitLarge lets at most MaxLargeBodies large bodies be read and handled
// at once. A JSON body of 64 MiB takes a few times that in memory while it
// is parsed and written, so six of them at once took the master past 1.7
// GB; the others now wait without reading until a turn frees, or until
// their client gives up.
func (a *API) admitLarge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength >= 0 && r.ContentLength <= largeBody || streams(r) {
			next.ServeHTTP(w, r)
			return
		}
		select {
		case a.large <- struct{}{}:
			defer func() { <-a.large }()
			next.ServeHTTP(w, r)
		case <-r.Context().Done():
			// The client left; nobody reads this answer.
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
}

// streams tells the requests whose bodies go to the blob store as they
// arrive, never whole into memory: outputs and CAS uploads.
func streams(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, protocol.PathCAS+"/") ||
		(r.Method == http.MethodPut && strings.HasPrefix(r.URL.Path, protocol.PathAttempts+"/"))
}

// result is a handler's answer: a status (200 when 0) and a value to encode
// as JSON (no body when nil).
type result struct {
	status int
	value  any
}

// json turns a handler returning (result, error) into an http.HandlerFunc:
// errors become a protocol.Error body with the status of their kind.
func (a *API) json(h func(*http.Request) (result, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		res, err := h(r)
		if err != nil {
			a.writeError(w, r, err)
			return
		}
		if res.status == 0 {
			res.status = http.StatusOK
		}
		if res.value == nil {
			w.WriteHeader(res.status)
			return
		}
		writeJSON(w, res.status, res.value)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeError answers err as a protocol.Error (protocol.WriteError).
func (a *API) writeError(w http.ResponseWriter, r *http.Request, err error) {
	protocol.WriteError(w, r, a.log, protocol.JSON, err)
}
