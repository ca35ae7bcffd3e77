package autoscale

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/api/option"

	"github.com/dist-test/dist_test/internal/protocol"
)

// fakeCompute is the part of the Compute REST API the gce provider calls,
// for one group, recording each call. fail, when set, answers a call
// instead (status 0: go on).
type fakeCompute struct {
	mu        sync.Mutex
	instances []string // names
	target    int64
	calls     []string // "METHOD path?query body"
	fail      func(call string) (int, string)
}

const computePrefix = "/compute/v1/projects/proj/zones/zone-a/instanceGroupManagers/slaves"

func (f *fakeCompute) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	call := r.Method + " " + strings.TrimPrefix(r.URL.Path, computePrefix)
	if q := r.URL.Query().Get("size"); q != "" {
		call += "?size=" + q
	}
	if len(body) > 0 {
		call += " " + strings.TrimSpace(string(body))
	}
	f.calls = append(f.calls, call)
	if f.fail != nil {
		if code, msg := f.fail(call); code != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			io.WriteString(w, msg)
			return
		}
	}
	reply := func(v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	op := map[string]any{"name": "op-1", "status": "RUNNING"}
	switch {
	case r.Method == "GET" && r.URL.Path == computePrefix:
		reply(map[string]any{"name": "slaves", "targetSize": f.target})
	case r.Method == "POST" && r.URL.Path == computePrefix+"/listManagedInstances":
		var mis []map[string]any
		for _, n := range f.instances {
			mis = append(mis, map[string]any{"instance": "https://www.googleapis.com/compute/v1/projects/proj/zones/zone-a/instances/" + n, "currentAction": "NONE"})
		}
		reply(map[string]any{"managedInstances": mis})
	case r.Method == "POST" && r.URL.Path == computePrefix+"/resize":
		var n int64
		fmt.Sscan(r.URL.Query().Get("size"), &n)
		for i := f.target; i < n; i++ {
			f.instances = append(f.instances, fmt.Sprintf("vm-new-%d", i))
		}
		f.target = n
		reply(op)
	case r.Method == "POST" && r.URL.Path == computePrefix+"/deleteInstances":
		var req struct{ Instances []string }
		json.Unmarshal(body, &req)
		for _, in := range req.Instances {
			name := in[strings.LastIndexByte(in, '/')+1:]
			f.instances = slices.DeleteFunc(f.instances, func(s string) bool { return s == name })
			f.target--
		}
		reply(op)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeCompute) takeCalls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

func newFakeGCE(t *testing.T, f *fakeCompute) *GCE {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	g, err := NewGCE(context.Background(), GCEConfig{Project: "proj", Zone: "zone-a", Group: "slaves",
		Endpoint: srv.URL + "/compute/v1/", Retry: time.Millisecond}, option.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// fakeMaster answers the controller as a master with the given slaves.
type fakeMaster struct {
	capacity protocol.Capacity
	slaves   []protocol.Slave
	drained  []string
}

func (m *fakeMaster) Capacity(context.Context) (protocol.Capacity, error) { return m.capacity, nil }
func (m *fakeMaster) Slaves(context.Context) ([]protocol.Slave, error) {
	return slices.Clone(m.slaves), nil
}
func (m *fakeMaster) Drain(_ context.Context, id string) (protocol.Slave, error) {
	for i := range m.slaves {
		if m.slaves[i].ID == id {
			m.slaves[i].State = "draining"
			m.drained = append(m.drained, id)
			return m.slaves[i], nil
		}
	}
	return protocol.Slave{}, errors.New("not found")
}

func (m *fakeMaster) set(id, state string) {
	for i := range m.slaves {
		if m.slaves[i].ID == id {
			m.slaves[i].State = state
		}
	}
}

func TestGCEGrowResizes(t *testing.T) {
	f := &fakeCompute{instances: []string{"vm-a"}, target: 1}
	m := &fakeMaster{capacity: protocol.Capacity{Queued: 40, QueuedWorkMS: 40 * 600000, SlotsPerSlave: 4}}
	c := &Controller{Policy: Policy{MinSize: 1, MaxSize: 8, TargetDrain: 10 * time.Minute}, Master: m,
		Provider: newFakeGCE(t, f), Interval: time.Second, Log: slog.New(slog.DiscardHandler)}
	if err := c.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	// 40 tasks of 10 min in 10 min: 40 slots, 10 slaves of 4, capped at 8.
	want := []string{"POST /listManagedInstances", "GET ", "POST /resize?size=8"}
	if got := f.takeCalls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}

// Shrinking drains the idle slaves, and deletes exactly their VMs, each
// once its slave has left; busy slaves and other VMs are never touched.
func TestGCEDrainThenDelete(t *testing.T) {
	f := &fakeCompute{instances: []string{"vm-a", "vm-b", "vm-c", "vm-d"}, target: 4}
	t0 := time.Unix(1e9, 0)
	m := &fakeMaster{capacity: protocol.Capacity{Running: 1, RunningWorkMS: 1000, SlotsPerSlave: 1}, slaves: []protocol.Slave{
		{ID: "s-a", Hostname: "vm-a", State: "alive", RegisteredAt: t0},
		{ID: "s-b", Hostname: "vm-b", State: "alive", RegisteredAt: t0.Add(time.Second), Running: 1},
		{ID: "s-c", Hostname: "vm-c", State: "alive", RegisteredAt: t0.Add(2 * time.Second)},
		{ID: "s-d", Hostname: "vm-d", State: "alive", RegisteredAt: t0.Add(3 * time.Second)},
		{ID: "s-old", Hostname: "vm-gone", State: "terminated", RegisteredAt: t0.Add(-time.Hour)},
	}}
	c := &Controller{Policy: Policy{MinSize: 2, MaxSize: 8, TargetDrain: time.Minute}, Master: m,
		Provider: newFakeGCE(t, f), Interval: time.Second, Log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	if err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	// Wanted 2 (min_size) of 4: the two oldest idle slaves drain; the busy
	// one stays; no VM is deleted while its slave is there.
	if !slices.Equal(m.drained, []string{"s-a", "s-c"}) {
		t.Fatalf("drained %q, want the idle s-a and s-c", m.drained)
	}
	if got := f.takeCalls(); slices.ContainsFunc(got, func(s string) bool { return strings.Contains(s, "delete") }) {
		t.Fatalf("deleted before the slaves left: %q", got)
	}
	m.set("s-a", "terminated")
	if err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"POST /listManagedInstances", `POST /deleteInstances {"instances":["zones/zone-a/instances/vm-a"]}`}
	if got := f.takeCalls(); !slices.Equal(got, want) {
		t.Fatalf("after s-a left: calls %q, want %q", got, want)
	}
	m.set("s-c", "lost") // a lost slave has left too
	if err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	want = []string{"POST /listManagedInstances", `POST /deleteInstances {"instances":["zones/zone-a/instances/vm-c"]}`}
	if got := f.takeCalls(); !slices.Equal(got, want) {
		t.Fatalf("after s-c left: calls %q, want %q", got, want)
	}
	if !slices.Equal(f.instances, []string{"vm-b", "vm-d"}) || f.target != 2 {
		t.Errorf("group %q of target %d, want vm-b and vm-d", f.instances, f.target)
	}
	if err := c.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.takeCalls(); !slices.Equal(got, []string{"POST /listManagedInstances"}) {
		t.Errorf("at size: calls %q", got)
	}
}

func TestGCERetriesAndErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("5xx is retried", func(t *testing.T) {
		n := 0
		f := &fakeCompute{target: 1, instances: []string{"vm-a"}, fail: func(call string) (int, string) {
			if strings.HasPrefix(call, "POST /resize") && n < 2 {
				n++
				return 503, `{"error":{"code":503,"message":"backend unavailable"}}`
			}
			return 0, ""
		}}
		if err := newFakeGCE(t, f).Grow(ctx, 2); err != nil {
			t.Fatal(err)
		}
		want := []string{"GET ", "POST /resize?size=3", "POST /resize?size=3", "POST /resize?size=3"}
		if got := f.takeCalls(); !slices.Equal(got, want) {
			t.Errorf("calls %q, want %q", got, want)
		}
	})
	t.Run("5xx for good is an error after 4 tries", func(t *testing.T) {
		f := &fakeCompute{fail: func(call string) (int, string) {
			return 500, `{"error":{"code":500,"message":"internal"}}`
		}}
		err := newFakeGCE(t, f).Remove(ctx, []string{"vm-a"})
		if err == nil || errors.Is(err, ErrQuota) {
			t.Fatalf("err = %v", err)
		}
		if got := f.takeCalls(); len(got) != 4 {
			t.Errorf("%d calls, want 4: %q", len(got), got)
		}
	})
	t.Run("quota is final", func(t *testing.T) {
		f := &fakeCompute{target: 100, fail: func(call string) (int, string) {
			if strings.HasPrefix(call, "POST /resize") {
				return 403, `{"error":{"code":403,"message":"Quota 'CPUS' exceeded. Limit: 400.0 in region us-central1.",` +
					`"errors":[{"reason":"quotaExceeded","message":"Quota 'CPUS' exceeded."}]}}`
			}
			return 0, ""
		}}
		err := newFakeGCE(t, f).Grow(ctx, 10)
		if !errors.Is(err, ErrQuota) || !strings.Contains(err.Error(), "CPUS") {
			t.Fatalf("err = %v, want ErrQuota naming the quota", err)
		}
		if got := f.takeCalls(); !slices.Equal(got, []string{"GET ", "POST /resize?size=110"}) {
			t.Errorf("calls %q: a quota refusal is not retried", got)
		}
	})
	t.Run("quota in the operation", func(t *testing.T) {
		f := &fakeCompute{target: 1, fail: func(call string) (int, string) {
			if strings.HasPrefix(call, "POST /resize") {
				return 200, `{"name":"op-9","status":"DONE","error":{"errors":[{"code":"QUOTA_EXCEEDED","message":"Quota 'IN_USE_ADDRESSES' exceeded"}]}}`
			}
			return 0, ""
		}}
		if err := newFakeGCE(t, f).Grow(ctx, 1); !errors.Is(err, ErrQuota) {
			t.Fatalf("err = %v, want ErrQuota", err)
		}
	})
	t.Run("4xx is final", func(t *testing.T) {
		f := &fakeCompute{fail: func(string) (int, string) {
			return 403, `{"error":{"code":403,"message":"Required 'compute.instanceGroupManagers.get' permission"}}`
		}}
		if _, err := newFakeGCE(t, f).Instances(ctx); err == nil || !strings.Contains(err.Error(), "permission") {
			t.Fatalf("err = %v", err)
		}
		if got := f.takeCalls(); len(got) != 1 {
			t.Errorf("calls %q, want 1", got)
		}
	})
	t.Run("hostile names", func(t *testing.T) {
		f := &fakeCompute{}
		if err := newFakeGCE(t, f).Remove(ctx, []string{"vm-a", "../../instances/other"}); err == nil {
			t.Fatal("accepted")
		}
		if got := f.takeCalls(); len(got) != 0 {
			t.Errorf("calls %q", got)
		}
	})
}

// A machine whose slave deregistered without this autoscaler draining it
// (dist_test drain by hand, or drained before a restart of the autoscaler)
// is removed; a booting one, or one whose slave was lost, is not.
func TestGCERemovesMachinesWhoseSlaveLeft(t *testing.T) {
	f := &fakeCompute{instances: []string{"vm-a", "vm-b", "vm-c", "vm-d"}, target: 4}
	t0 := time.Unix(1e9, 0)
	m := &fakeMaster{capacity: protocol.Capacity{Queued: 100, QueuedWorkMS: 100 * 600000, SlotsPerSlave: 1}, slaves: []protocol.Slave{
		{ID: "s-a0", Hostname: "vm-a", State: "alive", RegisteredAt: t0, Running: 1},
		{ID: "s-b0", Hostname: "vm-b", State: "lost", RegisteredAt: t0},
		{ID: "s-c0", Hostname: "vm-c", State: "terminated", RegisteredAt: t0},
		{ID: "s-c1", Hostname: "vm-c", State: "terminated", RegisteredAt: t0.Add(time.Minute)},
		{ID: "s-a-old", Hostname: "vm-a", State: "terminated", RegisteredAt: t0.Add(-time.Hour)},
	}}
	c := &Controller{Policy: Policy{MinSize: 0, MaxSize: 4, TargetDrain: 10 * time.Minute}, Master: m,
		Provider: newFakeGCE(t, f), Interval: time.Second, Log: slog.New(slog.DiscardHandler), DryRun: true}
	// A dry run lists and changes nothing.
	if err := c.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.takeCalls(); !slices.Equal(got, []string{"POST /listManagedInstances"}) {
		t.Errorf("dry run: calls %q", got)
	}
	c.DryRun = false
	if err := c.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	// vm-c goes; the fleet, at 3, grows back to max_size 4.
	want := []string{"POST /listManagedInstances", `POST /deleteInstances {"instances":["zones/zone-a/instances/vm-c"]}`,
		"GET ", "POST /resize?size=4"}
	if got := f.takeCalls(); !slices.Equal(got, want) {
		t.Errorf("calls %q, want %q", got, want)
	}
}
