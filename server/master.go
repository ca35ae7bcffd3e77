// Package server is the dist_test master's logic: submission, the feeder
// that puts queued attempts into the queue, the slave protocol (start,
// finish, heartbeats) with its fencing by tokens and leases, the reaper of
// lost slaves and the reconciler of the queue against the store. It speaks
// neither SQL nor HTTP: the store, queue and blob store are handed in, and
// server/api puts it on the wire.
//
// docs/architecture.md follows one task through the master and the
// slave, and says where each policy lives.
package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/linksign"
	"github.com/dist-test/dist_test/internal/metrics"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/store"
)

// Config holds the master's tunables. Zero values take the defaults.
type Config struct {
	HeartbeatInterval time.Duration // how often slaves heartbeat (5 s)
	HeartbeatTimeout  time.Duration // silence after which a slave is lost (3 intervals)
	// StartGrace: after the master starts, no slave is declared lost for
	// this long, so that slaves have the time to reach it again (default
	// 2 heartbeat intervals + 1 s).
	StartGrace        time.Duration
	TTR               time.Duration // queue lease of a running task (120 s)
	QueueWindow       int           // queued entries per job at once (500)
	MaxTasksPerJob    int           // 100,000
	ReconcileInterval time.Duration // queue vs store check (15 s)
	MaxLogBytes       int64         // upload bound of stdout/stderr (64 MiB)
	MaxArtifactBytes  int64         // upload bound of an artifact archive (256 MiB)
	LinkTTL           time.Duration // lifetime of presigned links (24 h)
	// Retention: jobs submitted longer ago are deleted with their outputs,
	// and so are older events and ended slave registrations (0: kept).
	Retention time.Duration
	// RetentionInterval is how often retention runs (1 h).
	RetentionInterval time.Duration
	// MaxRuns bounds how often one attempt is started without a result (its
	// slaves died or were lost each time) before it is failed and its queue
	// entry buried (5).
	MaxRuns int
	// IsolateServer is the URL of the isolate server users archive inputs
	// to ([isolate] server), named in the logs of tasks failed because
	// their inputs are missing; empty when the master serves it itself.
	IsolateServer string
	// MaxFailures is the failure cap of a job that sets none (0: none).
	MaxFailures int
	// Hedge: jobs that do not say otherwise hedge their stragglers.
	Hedge bool
}

func (c Config) withDefaults() Config {
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.HeartbeatTimeout <= 0 {
		c.HeartbeatTimeout = 3 * c.HeartbeatInterval
	}
	if c.StartGrace <= 0 {
		c.StartGrace = 2*c.HeartbeatInterval + time.Second
	}
	if c.TTR <= 0 {
		c.TTR = 120 * time.Second
	}
	if c.QueueWindow <= 0 {
		c.QueueWindow = 500
	}
	if c.MaxTasksPerJob <= 0 {
		c.MaxTasksPerJob = 100_000
	}
	if c.ReconcileInterval <= 0 {
		c.ReconcileInterval = 15 * time.Second
	}
	if c.MaxLogBytes <= 0 {
		c.MaxLogBytes = 64 << 20
	}
	if c.MaxArtifactBytes <= 0 {
		c.MaxArtifactBytes = 256 << 20
	}
	if c.MaxRuns <= 0 {
		c.MaxRuns = 5
	}
	if c.LinkTTL <= 0 {
		c.LinkTTL = 24 * time.Hour
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = time.Hour
	}
	return c
}

// Inputs tells which task inputs the isolate server lacks. UseManifests
// takes the isolate hashes of a job: a manifest is missing unless its whole
// tree is there, and the server keeps a tree it has for another retention
// period.
type Inputs interface {
	UseManifests(ctx context.Context, digests []string) ([]string, error)
}

// Master is the master's logic. Create it with New, start its background
// work with Run.
type Master struct {
	store  store.Store
	queue  queue.Queue
	blobs  blob.Store
	inputs Inputs
	cfg    Config
	now    func() time.Time
	log    *slog.Logger
	born   time.Time
	svcs   []*service       // the backends, watched by watchServices
	links  *linksign.Signer // signs the links to outputs the master serves itself
	wake   chan struct{}    // tells the feeder there is work
	outage atomic.Int64     // when a heartbeat last failed to be recorded (Unix ns)
	// sharing: the last feed shared the slots between users, so each
	// finish, which frees a user's room, wakes the feeder.
	sharing atomic.Bool
	tails   *tailBook       // the ends of the running attempts' logs
	metrics *metrics.Master // nil: nothing counted
	version string
	claims  claimSeen // attempts claimed by a feeder, not yet put (reconciler)
}

// Options are the optional parts of a Master.
type Options struct {
	Config Config
	Now    func() time.Time // the clock; time.Now by default
	Logger *slog.Logger
	// LinkKey signs the links to outputs that the master serves itself
	// (linksign.KeySize bytes or more). Every master of a deployment needs
	// the same key, kept in the store (store.Secret); a random one when nil.
	LinkKey []byte
	// Metrics, when set, counts what the master does; its store and queue
	// calls are counted through it too.
	Metrics *metrics.Master
	// Version is the build's (git describe), for the dashboard's footer.
	Version string
}

// New returns a master over the given backends. It fails only for a
// LinkKey too short to sign with.
func New(st store.Store, q queue.Queue, blobs blob.Store, inputs Inputs, opt Options) (*Master, error) {
	if opt.LinkKey == nil {
		opt.LinkKey = make([]byte, linksign.KeySize)
		rand.Read(opt.LinkKey)
	}
	links, err := linksign.New(opt.LinkKey)
	if err != nil {
		return nil, err
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	m := &Master{
		store: opt.Metrics.WrapStore(st), queue: opt.Metrics.WrapQueue(q), blobs: blobs, inputs: inputs, metrics: opt.Metrics, version: opt.Version,
		cfg: opt.Config.withDefaults(), now: opt.Now, log: opt.Logger,
		wake: make(chan struct{}, 1), links: links, tails: newTailBook(maxTailBytes),
	}
	m.born = m.now()
	m.svcs = m.services()
	return m, nil
}

// Now reads the master's clock: the handlers and pages that show ages and
// name jobs by their time use it, so that they agree with the times the
// master records.
func (m *Master) Now() time.Time { return m.now() }

// Version is the build the master runs (git describe), for the
// dashboard's footer; "" when not told.
func (m *Master) Version() string { return m.version }

// Config returns the master's effective configuration.
func (m *Master) Config() Config { return m.cfg }

// Run runs the feeder, the reaper, the reconciler, retention, the sweep
// of submissions cut short and the watch of the backends until ctx ends.
func (m *Master) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return m.feed(ctx) })
	g.Go(func() error { return m.reap(ctx) })
	g.Go(func() error { return m.reconcile(ctx) })
	g.Go(func() error { return m.reclaim(ctx) })
	g.Go(func() error { return m.retain(ctx) })
	g.Go(func() error { return m.sweepUnwritten(ctx) })
	g.Go(func() error { return m.watchServices(ctx) })
	err := g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// poke wakes the feeder without blocking.
func (m *Master) poke() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// QueueStats returns the queue's counts.
func (m *Master) QueueStats(ctx context.Context) (queue.Stats, error) {
	st, err := m.queue.Stats(ctx)
	if err != nil {
		return st, fmt.Errorf("%w: queue: %v", model.ErrUnavailable, err)
	}
	return st, nil
}

// every runs fn every d until ctx ends; fn's errors are logged, not fatal:
// a backend that is down now may be back on the next tick.
func (m *Master) every(ctx context.Context, d time.Duration, name string, fn func(context.Context) error) error {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		if err := fn(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn(name+" failed; will try again", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
