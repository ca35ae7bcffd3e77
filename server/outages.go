package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
)

// Service outages are told once each way: when a backend stops answering
// and when it answers again, with the outage's length, in the log and as
// events (model.EventServiceDown, model.EventServiceBack).

const (
	// serviceProbeEvery is how often the master asks its backends.
	serviceProbeEvery = time.Second
	// serviceProbeTimeout: a backend that takes longer does not answer.
	serviceProbeTimeout = 2 * time.Second
)

// service is one backend the master depends on, and what is known of it.
type service struct {
	name  string
	probe func(ctx context.Context) error

	mu    sync.Mutex
	down  bool
	since time.Time
	cause string
}

func (m *Master) services() []*service {
	return []*service{
		{name: "database", probe: func(ctx context.Context) error {
			// Any answer of the database will do: no job has this id.
			_, err := m.store.GetJob(ctx, "-")
			if errors.Is(err, model.ErrNotFound) {
				return nil
			}
			return err
		}},
		{name: "queue", probe: func(ctx context.Context) error {
			_, err := m.queue.Stats(ctx)
			return err
		}},
		{name: "blob store", probe: func(ctx context.Context) error {
			_, err := m.blobs.Stat(ctx, "health/probe")
			if errors.Is(err, blob.ErrNotFound) {
				return nil
			}
			return err
		}},
	}
}

// watchServices asks each backend every serviceProbeEvery until ctx ends,
// and tells its outages.
func (m *Master) watchServices(ctx context.Context) error {
	return m.every(ctx, serviceProbeEvery, "watching the services", func(ctx context.Context) error {
		m.CheckServicesOnce(ctx)
		return nil
	})
}

// CheckServicesOnce asks each backend once, and tells what changed.
func (m *Master) CheckServicesOnce(ctx context.Context) {
	for _, s := range m.svcs {
		m.checkService(ctx, s)
	}
}

// checkService probes s once and tells a change of its state.
func (m *Master) checkService(ctx context.Context, s *service) {
	pctx, cancel := context.WithTimeout(ctx, serviceProbeTimeout)
	err := s.probe(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	now := m.now()
	s.mu.Lock()
	wasDown, since, cause := s.down, s.since, s.cause
	switch {
	case err != nil && !wasDown:
		s.down, s.since, s.cause = true, now, err.Error()
	case err == nil && wasDown:
		s.down = false
	}
	s.mu.Unlock()
	m.metrics.Service(s.name, err == nil, err != nil && !wasDown)
	switch {
	case err != nil && !wasDown:
		m.log.Warn("a service does not answer", "service", s.name, "err", err)
		if s.name != "database" {
			m.addEvent(ctx, model.Event{At: now, Kind: model.EventServiceDown, Attempt: -1, Detail: fmt.Sprintf("%s: %v", s.name, model.Clip(err.Error(), 300))})
		}
	case err == nil && wasDown:
		out := now.Sub(since).Round(100 * time.Millisecond)
		m.log.Info("a service answers again", "service", s.name, "outage", out.String())
		if s.name == "database" {
			// Its going down could not be written while it was down.
			m.addEvent(ctx, model.Event{At: since, Kind: model.EventServiceDown, Attempt: -1, Detail: fmt.Sprintf("%s: %s", s.name, model.Clip(cause, 300))})
		}
		m.addEvent(ctx, model.Event{At: now, Kind: model.EventServiceBack, Attempt: -1, Detail: fmt.Sprintf("%s, after %s", s.name, out)})
	}
}

// addEvent records an event that is no state change's, logging a failure.
func (m *Master) addEvent(ctx context.Context, e model.Event) {
	if err := m.store.AddEvent(ctx, e); err != nil {
		m.log.Warn("could not record an event", "kind", e.Kind, "err", err)
	}
}
