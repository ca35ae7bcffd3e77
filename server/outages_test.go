package server_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/server"
)

// downStore is a database that stops answering when told.
type downStore struct {
	store.Store
	down atomic.Bool
}

func (d *downStore) GetJob(ctx context.Context, id string) (model.Job, error) {
	if d.down.Load() {
		return model.Job{}, fmt.Errorf("%w: connection refused", model.ErrUnavailable)
	}
	return d.Store.GetJob(ctx, id)
}

func (d *downStore) AddEvent(ctx context.Context, e model.Event) error {
	if d.down.Load() {
		return fmt.Errorf("%w: connection refused", model.ErrUnavailable)
	}
	return d.Store.AddEvent(ctx, e)
}

// A database outage is told once each way, with its length, once the
// database can record it: probes while it stays down add nothing.
func TestServiceOutageIsToldOnceEachWay(t *testing.T) {
	db := &downStore{}
	f := newFixtureOver(t, server.Config{}, func(s store.Store) store.Store { db.Store = s; return db })
	events := func() []model.Event {
		t.Helper()
		all, err := f.st.Events(f.ctx, store.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var out []model.Event
		for _, e := range all {
			if e.Kind == model.EventServiceDown || e.Kind == model.EventServiceBack {
				out = append(out, e)
			}
		}
		return out
	}
	f.m.CheckServicesOnce(f.ctx)
	if got := events(); len(got) != 0 {
		t.Fatalf("events with every service up: %+v", got)
	}
	db.down.Store(true)
	downAt := f.clock.Now()
	for range 3 {
		f.m.CheckServicesOnce(f.ctx)
		f.clock.Add(time.Second)
	}
	f.clock.Add(5 * time.Second)
	db.down.Store(false)
	f.m.CheckServicesOnce(f.ctx)
	f.m.CheckServicesOnce(f.ctx)
	got := events()
	if len(got) != 2 {
		t.Fatalf("events after one outage: %+v; want service_down then service_back", got)
	}
	if got[0].Kind != model.EventServiceDown || !got[0].At.Equal(downAt) || !strings.HasPrefix(got[0].Detail, "database: ") ||
		!strings.Contains(got[0].Detail, "connection refused") {
		t.Errorf("down event = %+v; want the database's, at %v, with the cause", got[0], downAt)
	}
	if got[1].Kind != model.EventServiceBack || got[1].Detail != "database, after 8s" {
		t.Errorf("back event = %+v; want \"database, after 8s\"", got[1])
	}
}
