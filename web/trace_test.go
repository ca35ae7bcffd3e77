package web

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

func run(desc, host string, slot int, start, end time.Duration, state model.State) model.Attempt {
	t0 := time.Unix(1e9, 0)
	a := model.Attempt{JobID: "j", TaskID: desc, Description: desc, Hostname: host, Slot: slot,
		StartedAt: t0.Add(start), State: state}
	if end > 0 {
		a.FinishedAt = t0.Add(end)
	}
	return a
}

// TestTraceLayout: lanes per slot, the lower bound from the longest run
// and the work per slot, labels only on bars wide enough (more of them in
// the wide view), an axis, and unstarted attempts counted, not drawn.
func TestTraceLayout(t *testing.T) {
	t0 := time.Unix(1e9, 0)
	attempts := []model.Attempt{
		run("long", "h1", 0, 0, 60*time.Second, model.Passed),
		run("short", "h1", 1, 0, 2*time.Second, model.Failed),
		run("mid", "h1", 1, 2*time.Second, 0, model.Running),
		run("tiny", "h2", 0, 10*time.Second, 10500*time.Millisecond, model.Passed),
		{JobID: "j", TaskID: "queued", State: model.Queued},
	}
	now := t0.Add(40 * time.Second) // mid is running: it ends at now
	var v traceView
	v.layout(attempts, t0, now)
	if len(v.Lanes) != 3 || v.Lanes[0].Name != "h1/0" || v.Lanes[2].Name != "h2/0" || v.Unstarted != 1 || !v.Running {
		t.Fatalf("lanes %+v, unstarted %d, running %v", v.Lanes, v.Unstarted, v.Running)
	}
	// work: 60 + 2 + 38 (mid, to now) + 0.5 = 100.5 s over 3 slots; longest 60 s.
	if v.Longest != 60*time.Second || v.Work != 100500*time.Millisecond || v.Bound != 60*time.Second {
		t.Errorf("longest %s work %s bound %s", v.Longest, v.Work, v.Bound)
	}
	if v.Span != 60*time.Second || v.BoundLeft != 100 || v.Ratio != "1.00" {
		t.Errorf("span %s, bound at %.1f%%, ratio %s", v.Span, v.BoundLeft, v.Ratio)
	}
	labels := func(v traceView) string {
		var out []string
		for _, l := range v.Lanes {
			for _, b := range l.Bars {
				if b.Label != "" {
					out = append(out, b.Label)
				}
			}
		}
		return strings.Join(out, ",")
	}
	if got := labels(v); got != "long,mid" {
		t.Errorf("labels in the fit view: %s", got)
	}
	if len(v.Ticks) < 2 || v.Ticks[0].Label != "0s" || v.Ticks[1].Label != "10s" {
		t.Errorf("ticks %+v", v.Ticks)
	}
	wide := traceView{Wide: true}
	wide.layout(attempts, t0, now)
	if got := labels(wide); got != "long,short,mid" {
		t.Errorf("labels in the wide view: %s", got)
	}
	if len(wide.Ticks) <= len(v.Ticks) {
		t.Errorf("the wide view has %d ticks, the fit one %d", len(wide.Ticks), len(v.Ticks))
	}
	// Bars link to their attempt's log and say what happened on hover.
	b := v.Lanes[1].Bars[0]
	if !strings.HasPrefix(b.Link, "/view_log?attempt=0&job_id=j&log=&task_id=short") || !strings.Contains(b.Title, "short\nattempt 0: failed") || b.Class != "task-failed" {
		t.Errorf("bar %+v", b)
	}

	// Two slave processes on one host: a lane per slot of each.
	two := []model.Attempt{run("a", "h", 0, 0, time.Second, model.Passed), run("b", "h", 0, 0, time.Second, model.Passed)}
	two[0].SlaveID, two[1].SlaveID = "aaaaaaaa11", "bbbbbbbb22"
	var tw traceView
	tw.layout(two, t0, t0)
	if len(tw.Lanes) != 2 || tw.Lanes[0].Name != "h·aaaaaa/0" || tw.Lanes[1].Name != "h·bbbbbb/0" {
		t.Errorf("lanes of two slaves on one host: %+v", tw.Lanes)
	}

	// Much work on few slots: the bound is the work per slot.
	var many []model.Attempt
	for i := range 10 {
		many = append(many, run(fmt.Sprint(i), "h", i%2, time.Duration(i/2)*10*time.Second, time.Duration(i/2+1)*10*time.Second, model.Passed))
	}
	var m traceView
	m.layout(many, t0, t0)
	if m.Bound != 50*time.Second || m.Longest != 10*time.Second {
		t.Errorf("bound %s, longest %s; want 50s (100 s of work on 2 slots)", m.Bound, m.Longest)
	}
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		span  time.Duration
		n     int
		first string
	}{{50 * time.Millisecond, 8, "10ms"}, {95 * time.Millisecond, 8, "20ms"}, {time.Hour, 8, "10m0s"}, {72 * time.Hour, 8, "12h0m0s"}} {
		ts := ticks(tc.span, tc.n)
		if len(ts) < 2 || ts[1].Label != tc.first || ts[len(ts)-1].Left > 100 {
			t.Errorf("ticks(%s) = %+v; want the second at %s", tc.span, ts, tc.first)
		}
	}
}

// BenchmarkTraceLayout lays out the most attempts a trace draws.
func BenchmarkTraceLayout(b *testing.B) {
	t0 := time.Unix(1e9, 0)
	var as []model.Attempt
	for i := range traceLimit {
		slot := i % 200
		as = append(as, run(fmt.Sprint("task-", i), fmt.Sprint("host-", slot/8), slot%8,
			time.Duration(i/200)*time.Second, time.Duration(i/200+1)*time.Second, model.Passed))
	}
	for b.Loop() {
		var v traceView
		v.layout(as, t0, t0)
	}
}
