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
		if got := fmt.Sprint(planFeed(c.backlog, c.window, c.limit)); got != c.want {
			t.Errorf("%s: plan %s; want %s", c.name, got, c.want)
		}
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
