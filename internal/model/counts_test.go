package model

import (
	"encoding/json"
	"slices"
	"testing"
)

// Every counter is in the one list: it has a name, Add and Sub move it
// alone, it reaches the JSON under that name, and some group state counts
// it. A field added to Counts but not to Group.Counts fails here.
func TestCountersOneList(t *testing.T) {
	names := CounterNames()
	var c Counts
	if len(names) != len(c.Fields()) || len(names) < 15 {
		t.Fatalf("%d names for %d fields", len(names), len(c.Fields()))
	}
	for i, name := range names {
		var one Counts
		*one.Fields()[i] = 1
		sum := c.Add(one).Add(one)
		for j, p := range sum.Fields() {
			if want := 2 * b2i(i == j); *p != want {
				t.Errorf("Add of %s moved counter %s to %d", name, names[j], *p)
			}
		}
		if sum.Sub(one) != one {
			t.Errorf("Sub of %s is not the inverse of Add", name)
		}
		var asJSON map[string]int
		raw, _ := json.Marshal(one)
		if err := json.Unmarshal(raw, &asJSON); err != nil || asJSON[name] != 1 || len(asJSON) != len(names) {
			t.Errorf("JSON of counter %s = %s", name, raw)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(names)))) != len(names) {
		t.Errorf("counter names repeat: %v", names)
	}

	// The states of a group, from TestGroupCounts and a cancel: between
	// them every counter must be counted at least once.
	var seen Counts
	for _, build := range []func(g *Group){
		func(g *Group) { g.Add(0) },
		func(g *Group) { g.Add(0); g.End(Passed) },
		func(g *Group) { g.Add(0); g.End(Failed) },
		func(g *Group) { g.MaxRetries = 1; g.Add(0); g.End(Failed); g.Add(1); g.End(Passed) },
		func(g *Group) { g.MaxRetries = 1; g.Add(0); g.End(Failed); g.Add(1); g.End(TimedOut) },
		func(g *Group) { g.MaxRetries = 5; g.Add(0); g.End(Canceled); g.Cancel = true },
	} {
		var g Group
		build(&g)
		seen = seen.Add(g.Counts())
	}
	for i, p := range seen.Fields() {
		if *p == 0 {
			t.Errorf("no group state counts %s: Group.Counts must say how it is counted", names[i])
		}
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
