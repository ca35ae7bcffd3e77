package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/health"
	"github.com/dist-test/dist_test/internal/httpserver"
	"github.com/dist-test/dist_test/internal/metrics"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/server"
	"github.com/dist-test/dist_test/server/api"
)

// observed is a server process's registry and the metrics of its HTTP
// surface and blob store; the caller adds its own.
type observed struct {
	reg  *prometheus.Registry
	http *metrics.HTTP
}

func newObserved() *observed {
	reg := metrics.NewRegistry()
	metrics.Version(reg, buildVersion())
	return &observed{reg: reg, http: metrics.NewHTTP(reg)}
}

// ops are the operators' endpoints of a process, /readyz probing checks.
func (o *observed) ops(log *slog.Logger, checks ...health.Check) api.Ops {
	return api.Ops{Version: buildVersion(), Metrics: metrics.Handler(o.reg), HTTP: o.http, Ready: health.Ready(log, checks...)}
}

// masterMetrics registers the master's own metrics; the fleet's gauges are
// read from m once it exists (watchFleet).
func (o *observed) masterMetrics() *metrics.Master { return metrics.NewMaster(o.reg) }

func (o *observed) watchFleet(m *server.Master, log *slog.Logger) {
	metrics.NewFleet(o.reg, m.Fleet, log)
}

// pinger is a store that can say whether its database answers.
type pinger interface{ Ping(context.Context) error }

func storeCheck(st store.Store) health.Check {
	return health.Check{Name: "database", Probe: func(ctx context.Context) error {
		p, ok := st.(pinger)
		if !ok {
			return nil
		}
		return p.Ping(ctx)
	}}
}

func queueCheck(q queue.Queue) health.Check {
	return health.Check{Name: "queue", Probe: func(ctx context.Context) error {
		_, err := q.Stats(ctx)
		return err
	}}
}

// readyKey is a key no blob has: its Stat answers "not found" from a blob
// store that is up.
const readyKey = "readyz/probe"

func blobCheck(b blob.Store) health.Check {
	return health.Check{Name: "blobs", Probe: func(ctx context.Context) error {
		if _, err := b.Stat(ctx, readyKey); err != nil && !errors.Is(err, blob.ErrNotFound) {
			return err
		}
		return nil
	}}
}

// adminHandler serves Go's profiles under /debug/pprof/ and the metrics;
// anything else is 404.
func adminHandler(reg *prometheus.Registry) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	mux.Handle("GET /metrics", metrics.Handler(reg))
	return mux
}

// startAdmin serves adminHandler on [master] admin_listen, when set (the
// configuration checked that it is a loopback address). The returned stop
// is never nil.
func startAdmin(cfg *config.Config, reg *prometheus.Registry, stderr func(string)) (stop func() error, err error) {
	if cfg.Master.AdminListen == "" {
		return func() error { return nil }, nil
	}
	// A CPU profile or trace takes 30 s by default: more than the [server]
	// write timeout allows an answer.
	limits := serverLimits(cfg)
	limits.WriteTimeout = 10 * time.Minute
	srv, err := httpserver.Serve(cfg.Master.AdminListen, adminHandler(reg), limits, nil)
	if err != nil {
		return nil, fmt.Errorf("[master] admin_listen: %w", err)
	}
	l := &listener{url: srv.URL, srv: srv}
	stderr(fmt.Sprintf("admin (profiles, metrics): %s/debug/pprof/", l.url))
	return l.stop, nil
}

// serveSlaveOps serves a slave's /metrics, /healthz and /readyz on [slave]
// metrics_listen. They are open: a slave has no accounts to check, and
// its metrics name no job, task or secret.
func serveSlaveOps(cfg *config.Config, obs *observed, log *slog.Logger, checks ...health.Check) (*listener, error) {
	r := chi.NewRouter()
	ops := obs.ops(log, checks...)
	ops.Use(r)
	ops.Mount(r, func(h http.Handler) http.Handler { return h })
	srv, err := httpserver.Serve(cfg.Slave.MetricsListen, r, serverLimits(cfg), nil)
	if err != nil {
		return nil, fmt.Errorf("[slave] metrics_listen: %w", err)
	}
	log.Info("slave metrics served", "url", srv.URL+"/metrics")
	return &listener{url: srv.URL, srv: srv}, nil
}
