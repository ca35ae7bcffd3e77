package api

import (
	"net/http"
	"runtime"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/health"
	"github.com/dist-test/dist_test/internal/metrics"
)

// Ops are the endpoints a server process offers its operators: /healthz,
// /readyz, /metrics and /api/v1/version. The master and the isolate server
// mount them alike (Use and Mount).
type Ops struct {
	// Version is the build's (git describe): sent with every answer as the
	// X-Dist-Test-Version header, and as JSON on /api/v1/version.
	Version string
	// Metrics serves /metrics, behind the read guard: open where reads
	// are ([master] read_auth off), else to accounts, allowed addresses and
	// slave credentials. Not served when nil.
	Metrics http.Handler
	// HTTP counts the requests by route; nil counts none.
	HTTP *metrics.HTTP
	// Ready answers /readyz; without it, /readyz answers as /healthz does.
	Ready http.Handler
}

// VersionHeader carries the version of the process that answered.
const VersionHeader = "X-Dist-Test-Version"

// Version is the body of GET /api/v1/version.
type Version struct {
	Version string `json:"version"`
	Go      string `json:"go"`
}

// Use adds o's middleware to r: the count of requests by route and the
// version header. Call it before any other of r's middleware, so that the
// answers they make are counted too.
func (o Ops) Use(r chi.Router) {
	r.Use(o.HTTP.Middleware)
	if o.Version != "" {
		r.Use(func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set(VersionHeader, o.Version)
				next.ServeHTTP(w, r)
			})
		})
	}
}

// Mount adds o's endpoints to r; read guards /metrics and the version.
func (o Ops) Mount(r chi.Router, read func(http.Handler) http.Handler) {
	r.Get("/healthz", health.Alive)
	if o.Ready != nil {
		r.Get("/readyz", o.Ready.ServeHTTP)
	} else {
		r.Get("/readyz", health.Alive)
	}
	if o.Metrics != nil {
		r.With(read).Get("/metrics", o.Metrics.ServeHTTP)
	}
	r.With(read).Get("/api/v1/version", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, Version{Version: o.Version, Go: runtime.Version()})
	})
}
