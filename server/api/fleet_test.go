package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// runAll registers a slave and runs every queued entry to a pass
// that took the given runtimes, in the order the queue hands them out.
func (h *harness) runAll(durations map[string]time.Duration) {
	h.t.Helper()
	ctx := context.Background()
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "history", Slots: 1})
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := h.q.NewConsumer(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	defer c.Close()
	for range durations {
		res, e := h.reserve(c)
		st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
		if err != nil {
			h.t.Fatal(err)
		}
		d := durations[st.Spec.Description]
		if _, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{DurationMS: d.Milliseconds()}); err != nil {
			h.t.Fatal(err)
		}
		c.Delete(ctx, res.ID)
	}
	if err := h.slave.Deregister(ctx, reg.SlaveID); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) capacity() protocol.Capacity {
	h.t.Helper()
	c, err := h.api.Capacity(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	return c
}

// The capacity figures: queued and running attempts, the work they are
// expected to take (a running one's less its elapsed time, never below 0),
// those with no history apart, and the live slaves' slots.
func TestCapacity(t *testing.T) {
	clk := &clock{now: time.Unix(1_700_000_000, 0)}
	onEachStoreWith(t, harnessOptions{now: clk.Now}, func(t *testing.T, h *harness) {
		ctx := context.Background()
		if c := h.capacity(); c != (protocol.Capacity{}) {
			t.Fatalf("empty master: %+v", c)
		}
		if code, body, _ := h.do("POST", "/api/v1/jobs", "application/json", h.jobJSON(2, "")); code != 201 {
			t.Fatalf("submit: %d %s", code, body)
		}
		// No history yet: the work is unknown.
		want := protocol.Capacity{Queued: 2, QueuedUnknown: 2}
		if c := h.capacity(); c != want {
			t.Fatalf("2 queued without history: %+v, want %+v", c, want)
		}
		h.runAll(map[string]time.Duration{"ta": time.Minute, "tb": 2 * time.Minute})
		// ta and tb have a history now; tc, of the same inputs, is given
		// their median by the master.
		if code, body, _ := h.do("POST", "/api/v1/jobs", "application/json", h.jobJSON(3, "")); code != 201 {
			t.Fatalf("submit: %d %s", code, body)
		}
		want = protocol.Capacity{Queued: 3, QueuedWorkMS: 240000}
		if c := h.capacity(); c != want {
			t.Fatalf("3 queued: %+v, want %+v", c, want)
		}
		// tb, the longest expected, starts first; 30 s later 90 s remain.
		st, _ := h.startNext()
		if st.Spec.Description != "tb" {
			t.Fatalf("started %s first, want tb", st.Spec.Description)
		}
		if _, err := h.slave.Register(ctx, protocol.Register{Hostname: "big", Slots: 8}); err != nil {
			t.Fatal(err)
		}
		clk.add(30 * time.Second)
		want = protocol.Capacity{Queued: 2, Running: 1, QueuedWorkMS: 120000, RunningWorkMS: 90000,
			SlavesAlive: 2, SlotsAlive: 9, SlotsPerSlave: 5}
		if c := h.capacity(); c != want {
			t.Fatalf("one running: %+v, want %+v", c, want)
		}
		// Past its expected runtime a run adds no work, rather than less.
		clk.add(5 * time.Minute)
		want.RunningWorkMS = 0
		if c := h.capacity(); c != want {
			t.Fatalf("overdue: %+v, want %+v", c, want)
		}
	})
}

// Draining through the API: the slave is draining in the listing, the
// heartbeat's answer says so (every time), its starts are refused and the
// entry is good for another slave; it leaves as terminated. A slave that
// left cannot be drained; an unknown or forged id is not found.
func TestDrainSlave(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 2})
		if err != nil {
			t.Fatal(err)
		}
		if code, body, _ := h.do("POST", "/api/v1/jobs", "application/json", h.jobJSON(2, "")); code != 201 {
			t.Fatalf("submit: %d %s", code, body)
		}
		c, err := h.q.NewConsumer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		res, e := h.reserve(c)
		st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
		if err != nil {
			t.Fatal(err)
		}
		code, body, _ := h.do("POST", "/api/v1/slaves/"+reg.SlaveID+"/drain", "", "")
		var sl protocol.Slave
		if code != 200 || json.Unmarshal([]byte(body), &sl) != nil || sl.State != "draining" || sl.ID != reg.SlaveID || sl.Hostname != "h1" {
			t.Fatalf("drain: %d %s", code, body)
		}
		if code, body, _ := h.do("POST", "/api/v1/slaves/"+reg.SlaveID+"/drain", "application/json", "{}"); code != 200 || !strings.Contains(body, `"draining"`) {
			t.Fatalf("drain again: %d %s", code, body)
		}
		for range 2 {
			reply, err := h.slave.Heartbeat(ctx, reg.SlaveID, protocol.Heartbeat{Running: []string{st.Lease}})
			if err != nil || !reply.Drain || reply.Reset || len(reply.Kill) != 0 {
				t.Fatalf("heartbeat of a draining slave: %+v, %v", reply, err)
			}
		}
		res2, e2 := h.reserve(c)
		if _, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res2.ID, Entry: e2}); err == nil || !strings.Contains(err.Error(), "draining") {
			t.Fatalf("a draining slave started a task: %v", err)
		}
		if capa := h.capacity(); capa.SlavesDraining != 1 || capa.SlavesAlive != 0 || capa.SlotsAlive != 0 || capa.Running != 1 {
			t.Fatalf("capacity with a draining slave: %+v", capa)
		}
		// The slaves page shows it draining, with the run it finishes.
		if code, body, _ := h.doWith(browser, "GET", "/slaves", "", ""); code != 200 ||
			!strings.Contains(body, `<tr class="slave-draining">`) || !strings.Contains(body, `<td class="state">draining</td>`) ||
			!strings.Contains(body, "<td>1/2</td>") {
			t.Errorf("slaves page with a draining slave (%d):\n%s", code, body)
		}
		// Its run finishes and is reported; then it leaves.
		if out, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{DurationMS: 10}); err != nil || out.State != "passed" {
			t.Fatalf("finish on a draining slave: %+v %v", out, err)
		}
		// Another slave takes the entry the draining one could not start.
		other, err := h.slave.Register(ctx, protocol.Register{Hostname: "h2", Slots: 1})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.slave.Start(ctx, protocol.Start{SlaveID: other.SlaveID, EntryID: res2.ID, Entry: e2}); err != nil {
			t.Fatalf("the entry refused to the draining slave: %v", err)
		}
		if err := h.slave.Deregister(ctx, reg.SlaveID); err != nil {
			t.Fatal(err)
		}
		list, err := h.api.Slaves(ctx)
		if err != nil {
			t.Fatal(err)
		}
		states := map[string]string{}
		for _, s := range list {
			states[s.ID] = s.State
		}
		if states[reg.SlaveID] != "terminated" || states[other.SlaveID] != "alive" {
			t.Fatalf("states after leaving: %v", states)
		}
		if code, body, _ := h.do("POST", "/api/v1/slaves/"+reg.SlaveID+"/drain", "", ""); code != 409 || !strings.Contains(body, `"conflict"`) {
			t.Errorf("drain of a slave that left: %d %s", code, body)
		}
		var events protocol.EventList
		if code, body, _ := h.do("GET", "/api/v1/events?slave="+reg.SlaveID, "", ""); code != 200 || json.Unmarshal([]byte(body), &events) != nil {
			t.Fatalf("events: %d %s", code, body)
		}
		var kinds []string
		for _, ev := range events.Events {
			if ev.Kind == "slave_started" || ev.Kind == "slave_draining" || ev.Kind == "slave_terminated" {
				kinds = append(kinds, ev.Kind)
			}
		}
		if strings.Join(kinds, " ") != "slave_started slave_draining slave_terminated" {
			t.Errorf("slave events %q", kinds)
		}
	})
}

// Hostile input on the new endpoints: forged and odd ids, bad JSON,
// unknown fields, oversized bodies, and the wrong methods.
func TestFleetEndpointsHostileInput(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, path, ctype, body string
		code                    int
		kind                    string
	}{
		{"forged id", "/api/v1/slaves/" + strings.Repeat("f", len(reg.SlaveID)) + "/drain", "", "", 404, "not_found"},
		{"id with quotes", "/api/v1/slaves/%27%20OR%201=1%20--/drain", "", "", 404, "not_found"},
		{"long id", "/api/v1/slaves/" + strings.Repeat("a", 5000) + "/drain", "", "", 404, "not_found"},
		{"bad JSON", "/api/v1/slaves/" + reg.SlaveID + "/drain", "application/json", "{", 400, "invalid"},
		{"not an object", "/api/v1/slaves/" + reg.SlaveID + "/drain", "application/json", "[1]", 400, "invalid"},
		{"unknown field", "/api/v1/slaves/" + reg.SlaveID + "/drain", "application/json", `{"force": true}`, 400, "invalid"},
		{"trailing data", "/api/v1/slaves/" + reg.SlaveID + "/drain", "application/json", `{} {}`, 400, "invalid"},
	} {
		code, body, _ := h.do("POST", c.path, c.ctype, c.body)
		if code != c.code || !strings.Contains(body, `"`+c.kind+`"`) {
			t.Errorf("%s: %d %s, want %d %s", c.name, code, body, c.code, c.kind)
		}
	}
	list, _ := h.api.Slaves(ctx)
	if len(list) != 1 || list[0].State != "alive" {
		t.Errorf("after the refused drains: %+v", list)
	}
	if code, _, _ := h.do("GET", "/api/v1/slaves/"+reg.SlaveID+"/drain", "", ""); code != 405 {
		t.Errorf("GET drain: %d", code)
	}
	if code, _, _ := h.do("POST", "/api/v1/capacity", "application/json", "{}"); code != 405 {
		t.Errorf("POST capacity: %d", code)
	}
	if code, body, _ := h.do("GET", "/api/v1/capacity?x=%00", "", ""); code != 200 || !strings.Contains(body, `"slaves_alive": 1`) {
		t.Errorf("capacity: %d %s", code, body)
	}
}

// Draining is a write: users and admins, not slaves nor nobody; under
// owners_only, admins only, since a slave is no user's.
func TestDrainNeedsAdminUnderOwnersOnly(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{guard: authConfig(false), ownersOnly: true})
	ctx := context.Background()
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	path := h.url + "/api/v1/slaves/" + reg.SlaveID + "/drain"
	for _, c := range []struct {
		name string
		hc   func() int
		code int
	}{
		{"nobody", func() int { code, _ := send(t, h.as(nobody), "POST", path, "", "", nil); return code }, 401},
		{"slave", func() int { code, _ := send(t, h.as(tokenC), "POST", path, "", "", nil); return code }, 403},
		{"user", func() int { code, _ := send(t, h.as(alice), "POST", path, "", "", nil); return code }, 403},
		{"admin", func() int { code, _ := send(t, h.as(carol), "POST", path, "", "", nil); return code }, 200},
	} {
		if got := c.hc(); got != c.code {
			t.Errorf("%s: %d, want %d", c.name, got, c.code)
		}
	}
}
