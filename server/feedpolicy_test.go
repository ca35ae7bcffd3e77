package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
)

func TestPlanFeed(t *testing.T) {
	old := store.JobBacklog{JobID: "old", Oldest: 1, Waiting: 5}
	young := store.JobBacklog{JobID: "new", Oldest: 6, Waiting: 3}
	with := func(b store.JobBacklog, inQueue, retries int) store.JobBacklog {
		b.InQueue, b.Retries, b.Waiting = inQueue, retries, b.Waiting-inQueue+retries
		return b
	}
	cases := []struct {
		name          string
		backlog       []store.JobBacklog
		window, limit int
		want          string
	}{
		{"nothing waits", nil, 2, 100, "[]"},
		{"a window of each job, oldest first", []store.JobBacklog{young, old}, 2, 100, "[{old 2} {new 2}]"},
		{"windows with room left", []store.JobBacklog{with(old, 2, 0), with(young, 1, 0)}, 2, 100, "[{new 1}]"},
		{"the limit cuts the younger job", []store.JobBacklog{old, young}, 10, 7, "[{old 5} {new 2}]"},
		{"the limit within the oldest job", []store.JobBacklog{old, young}, 10, 3, "[{old 3}]"},
		{"a window larger than the job", []store.JobBacklog{young}, 500, 1000, "[{new 3}]"},
		{"a full queue takes nothing", []store.JobBacklog{with(old, 4, 0)}, 4, 100, "[]"},
		{"a queue fuller than the window", []store.JobBacklog{with(old, 5, 0)}, 2, 100, "[]"},
		{"retries ignore a full window", []store.JobBacklog{with(old, 4, 1), with(young, 3, 0)}, 1, 100, "[{old 1}]"},
		{"retries, then the room", []store.JobBacklog{with(old, 1, 2), young}, 2, 100, "[{old 3} {new 2}]"},
		{"retries of every job come first", []store.JobBacklog{with(old, 0, 3), with(young, 0, 2)}, 10, 6, "[{old 4} {new 2}]"},
		{"retries beyond the limit", []store.JobBacklog{with(old, 0, 3), with(young, 0, 2)}, 10, 4, "[{old 3} {new 1}]"},
		{"no limit", []store.JobBacklog{old}, 2, 0, "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(planFeed(c.backlog, c.window, c.limit, nil)); got != c.want {
			t.Errorf("%s: plan %s; want %s", c.name, got, c.want)
		}
	}
}

func TestPlanFeedByUser(t *testing.T) {
	aOld := store.JobBacklog{JobID: "a-old", User: "ann", Oldest: 1, Waiting: 100}
	aNew := store.JobBacklog{JobID: "a-new", User: "ann", Oldest: 200, Waiting: 100}
	bob := store.JobBacklog{JobID: "bob", User: "bob", Oldest: 300, Waiting: 10}
	cases := []struct {
		name    string
		backlog []store.JobBacklog
		room    map[string]int
		window  int
		want    string
	}{
		{"each user its room", []store.JobBacklog{aOld, bob}, map[string]int{"ann": 3, "bob": 3}, 500, "[{a-old 3} {bob 3}]"},
		{"a user's jobs take turns", []store.JobBacklog{aNew, aOld, bob}, map[string]int{"ann": 5, "bob": 2}, 500, "[{a-old 3} {a-new 2} {bob 2}]"},
		{"the window still bounds a job", []store.JobBacklog{aOld, bob}, map[string]int{"ann": 9, "bob": 9}, 4, "[{a-old 4} {bob 4}]"},
		{"no room, nothing", []store.JobBacklog{aOld, bob}, map[string]int{"ann": 0, "bob": 1}, 500, "[{bob 1}]"},
		{"retries go in even without room", []store.JobBacklog{{JobID: "r", User: "ann", Oldest: 1, Waiting: 3, Retries: 2}, bob},
			map[string]int{"ann": 1, "bob": 1}, 500, "[{r 2} {bob 1}]"},
		{"a user unknown to the room gets none", []store.JobBacklog{aOld}, map[string]int{"bob": 1}, 500, "[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(planFeed(c.backlog, c.window, 1000, c.room)); got != c.want {
			t.Errorf("%s: plan %s; want %s", c.name, got, c.want)
		}
	}
}

func TestFairShares(t *testing.T) {
	cases := []struct {
		demand map[string]int
		slots  int
		want   string
	}{
		{map[string]int{"ann": 10000, "bob": 10}, 32, "map[ann:22 bob:10]"},
		{map[string]int{"ann": 10000, "bob": 10000}, 32, "map[ann:16 bob:16]"},
		{map[string]int{"ann": 10000, "bob": 10000, "cy": 1}, 32, "map[ann:16 bob:15 cy:1]"},
		{map[string]int{"ann": 3, "bob": 2}, 32, "map[ann:3 bob:2]"},
		{map[string]int{"ann": 5, "bob": 5, "cy": 5}, 2, "map[ann:1 bob:1 cy:0]"},
		{map[string]int{"ann": 5}, 0, "map[]"},
	}
	for _, c := range cases {
		if got := fmt.Sprint(fairShares(c.demand, c.slots)); got != c.want {
			t.Errorf("fairShares(%v, %d) = %s; want %s", c.demand, c.slots, got, c.want)
		}
	}
	room := userRoom(map[string]int{"ann": 22, "bob": 10}, map[string]int{"ann": 32})
	if fmt.Sprint(room) != "map[ann:0 bob:10]" {
		t.Errorf("userRoom = %v; a user over its share gets none, the other its share", room)
	}
}

func TestOrderFeed(t *testing.T) {
	attempts := func(job string, n int) []model.Attempt {
		var out []model.Attempt
		for i := range n {
			out = append(out, model.Attempt{JobID: job, Index: i})
		}
		return out
	}
	cases := []struct {
		perJob [][]model.Attempt
		want   string
	}{
		{nil, ""},
		{[][]model.Attempt{attempts("a", 3)}, "a0 a1 a2 "},
		{[][]model.Attempt{attempts("old", 2), attempts("new", 2)}, "old0 new0 old1 new1 "},
		{[][]model.Attempt{attempts("a", 1), attempts("b", 3), attempts("c", 2)}, "a0 b0 c0 b1 c1 b2 "},
		{[][]model.Attempt{nil, attempts("b", 2)}, "b0 b1 "},
	}
	for _, c := range cases {
		var got string
		for _, a := range orderFeed(c.perJob) {
			got += fmt.Sprint(a.JobID, a.Index, " ")
		}
		if got != c.want {
			t.Errorf("order %q; want %q", got, c.want)
		}
	}
}

func TestCompareRuns(t *testing.T) {
	cutoff := time.UnixMilli(1_700_000_000_000)
	old, fresh := cutoff.Add(-time.Second), cutoff.Add(time.Second)
	runs := []model.Attempt{
		{Lease: "running", StartedAt: old},
		{Lease: "pending", StartedAt: old},
		{Lease: "unknown", StartedAt: old},
		{Lease: "just started", StartedAt: fresh},
		{Lease: "at the cutoff", StartedAt: cutoff},
	}
	hb := protocol.Heartbeat{Running: []string{"running", "canceled", "handed on"}, Pending: []string{"pending", "stale result"}}
	kill, lost := compareRuns(runs, hb, cutoff)
	if fmt.Sprint(kill) != "[canceled handed on]" {
		t.Errorf("kill %v; want the reported runs the store does not have on the slave", kill)
	}
	var leases []string
	for _, a := range lost {
		leases = append(leases, a.Lease)
	}
	if fmt.Sprint(leases) != "[unknown at the cutoff]" {
		t.Errorf("lost %v; want the runs the slave does not know, started by the cutoff", leases)
	}
	if kill, lost := compareRuns(nil, protocol.Heartbeat{}, cutoff); kill != nil || lost != nil {
		t.Errorf("an idle slave: kill %v, lost %v", kill, lost)
	}
}
