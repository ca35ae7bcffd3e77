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
	keys := func(ds ...string) []TaskKey {
		var out []TaskKey
		for _, d := range ds {
			out = append(out, TaskKey{Description: d, IsolateHash: "h-" + d})
		}
		return out
	}
	got := ExpectedRuntimes(keys("a", "new", "b"), map[string]Runtime{"a": {P90: 10 * time.Second}, "b": {P90: 2 * time.Second}})
	if got[0] != 10*time.Second || got[2] != 2*time.Second || !(got[1] > 2*time.Second && got[1] < 10*time.Second) {
		t.Errorf("ExpectedRuntimes = %v; the unknown task must rank between long and short", got)
	}
}

func TestExpectedRuntimesRelated(t *testing.T) {
	known := map[string]Runtime{
		"slow_test shard 1": {EWMA: time.Second, P90: 40 * time.Second},
		"slow_test shard 2": {P90: 50 * time.Second},
		"slow_test shard 3": {P90: 60 * time.Second},
		"other 1":           {P90: time.Second},
		"bin case a":        {P90: 7 * time.Second},
	}
	tasks := []TaskKey{
		{"slow_test shard 1", "h1"}, {"slow_test shard 2", "h1"}, {"slow_test shard 3", "h1"},
		{"other 1", "h2"}, {"bin case a", "h3"},
		{"slow_test shard 4", "h1"}, // same isolate hash: median of 40, 50, 60
		{"bin case b", "h9"},        // same command only
		{"fresh", "h8"},             // related to nothing
	}
	got := ExpectedRuntimes(tasks, known)
	if got[0] != 40*time.Second {
		t.Errorf("a known task: %v, want its p90 (40s), not its average", got[0])
	}
	if got[5] != 50*time.Second {
		t.Errorf("unknown shard of a known binary: %v, want the median of its siblings (50s)", got[5])
	}
	if got[6] != 7*time.Second {
		t.Errorf("unknown case of a known command: %v, want 7s", got[6])
	}
	mean := (40 + 50 + 60 + 1 + 7) * time.Second / 5
	if got[7] != mean+100*time.Millisecond {
		t.Errorf("unrelated unknown task: %v, want the mean of the known ones and a step (%v)", got[7], mean+100*time.Millisecond)
	}
}

func TestRuntimeOf(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		var out []time.Duration
		for _, v := range vs {
			out = append(out, time.Duration(v)*time.Second)
		}
		return out
	}
	for _, c := range []struct {
		recent []time.Duration
		want   time.Duration
	}{
		{nil, 0},
		{ms(10), 10 * time.Second},
		{ms(10, 20), 20 * time.Second},
		{ms(1, 1, 1, 1, 1, 1, 1, 1, 1, 30), time.Second},          // slow once in ten: the 90th is still fast
		{ms(1, 30, 1, 1, 1, 1, 1, 30, 1, 1), 30 * time.Second},    // slow twice in ten: it shows
		{ms(5, 4, 3, 2, 1, 9, 8, 7, 6, 10, 11), 10 * time.Second}, // nearest rank: the 10th of 11
	} {
		if got := RuntimeOf(time.Second, c.recent).P90; got != c.want {
			t.Errorf("p90 of %v = %v, want %v", c.recent, got, c.want)
		}
	}
	back := DecodeRecent(EncodeRecent(ms(3, 1, 2)))
	if len(back) != 3 || back[0] != 3*time.Second || back[2] != 2*time.Second {
		t.Errorf("recent runs do not survive their column: %v", back)
	}
	if got := DecodeRecent("12,x,-5,,7"); len(got) != 2 || got[1] != 7*time.Millisecond {
		t.Errorf("DecodeRecent of a damaged column = %v, want [12ms 7ms]", got)
	}
}
