package model

import (
	"testing"
	"time"
)

// Group semantics follow the original's TaskGroup: a group succeeds once
// some attempt passes, fails when every attempt failed and no retry is left,
// and is flaky when it failed at least once but passed or may still retry.
func TestGroupCounts(t *testing.T) {
	cases := []struct {
		name   string
		build  func(g *Group)
		fin    bool
		failed bool
		ok     bool
		flaky  bool
	}{
		{"queued", func(g *Group) { g.Add(0) }, false, false, false, false},
		{"passed", func(g *Group) { g.Add(0); g.End(Passed) }, true, false, true, false},
		{"failed, no retries", func(g *Group) { g.Add(0); g.End(Failed) }, true, true, false, false},
		{"failed, retries left, none queued", func(g *Group) { g.MaxRetries = 1; g.Add(0); g.End(Failed) }, false, false, false, true},
		{"failed then retry queued", func(g *Group) { g.MaxRetries = 1; g.Add(0); g.End(Failed); g.Add(1) }, false, false, false, false},
		{"failed then passed", func(g *Group) { g.MaxRetries = 1; g.Add(0); g.End(Failed); g.Add(1); g.End(Passed) }, true, false, true, true},
		{"failed twice, out of retries", func(g *Group) { g.MaxRetries = 1; g.Add(0); g.End(Failed); g.Add(1); g.End(TimedOut) }, true, true, false, false},
		{"canceled with retries left", func(g *Group) { g.MaxRetries = 5; g.Add(0); g.End(Canceled); g.Cancel = true }, true, true, false, false},
	}
	for _, c := range cases {
		var g Group
		c.build(&g)
		if g.IsFinished() != c.fin || g.IsFailed() != c.failed || g.IsSucceeded() != c.ok || g.IsFlaky() != c.flaky {
			t.Errorf("%s: finished %v failed %v succeeded %v flaky %v; want %v %v %v %v", c.name,
				g.IsFinished(), g.IsFailed(), g.IsSucceeded(), g.IsFlaky(), c.fin, c.failed, c.ok, c.flaky)
		}
	}
}

func TestCountsArithmetic(t *testing.T) {
	var g Group
	g.MaxRetries = 1
	g.Add(0)
	before := g.Counts()
	g.End(Failed)
	g.Add(1)
	d := g.Counts().Sub(before)
	if d.TotalTasks != 1 || d.FailedTasks != 1 || d.FinishedTasks != 1 || d.RetriedTasks != 1 || d.RunningTasks != 0 {
		t.Errorf("delta of a failure with a retry = %+v", d)
	}
	if before.Add(d) != g.Counts() {
		t.Errorf("before + delta != after")
	}
}

func TestPriority(t *testing.T) {
	long, short := Priority(time.Minute, false), Priority(time.Second, false)
	if !(long < short && short < NormalBase) {
		t.Errorf("first attempts: 1m → %d, 1s → %d; longer must come first", long, short)
	}
	if retry := Priority(time.Second, true); retry >= long {
		t.Errorf("a retry (%d) must come before any first attempt (%d)", retry, long)
	}
	if Priority(1000*24*time.Hour, false) <= RetryBase {
		t.Errorf("a huge expected runtime reaches into the retry band")
	}
	got := ExpectedRuntimes([]string{"a", "new", "b"}, map[string]time.Duration{"a": 10 * time.Second, "b": 2 * time.Second})
	if got[0] != 10*time.Second || got[2] != 2*time.Second || !(got[1] > 2*time.Second && got[1] < 10*time.Second) {
		t.Errorf("ExpectedRuntimes = %v; the unknown task must rank between long and short", got)
	}
}
