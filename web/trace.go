package web

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// bar is one run on the timeline, placed in percent of the job's span.
type bar struct {
	Left, Width float64
	Class       string
	Title       string
	Label       string // empty when the bar is too narrow to hold it
	Link        string
}

// lane is one slave slot's row of the timeline.
type lane struct {
	Name string
	Bars []bar
}

// tick is a mark of the time axis, in percent of the span.
type tick struct {
	Left  float64
	Label string
}

// traceView is what trace.html draws.
type traceView struct {
	Job               model.Job
	Lanes             []lane
	Ticks             []tick
	Span              time.Duration
	Wide              bool
	FitURL, WideURL   string
	Cut               bool
	Limit             int
	Unstarted         int // attempts not started, not drawn
	Bound             time.Duration
	BoundLeft         float64 // where the bound line is, in percent
	Longest, Work     time.Duration
	Took              time.Duration // first start to last end
	Ratio             string        // Took / Bound
	Running, Finished bool
}

// wideFactor is how much wider than the window the wide view draws.
const wideFactor = 5

// labelPercent is the width, in percent of the window, from which a bar
// carries its task's name.
const labelPercent = 7.0

// Trace shows when each attempt of a job ran, one lane per slave slot, on
// a time axis from the job's submission: the view that shows stragglers
// and idle slots at a glance. The dashed line is the job's lower bound,
// max(longest task, total work / slots): no schedule on these slots could
// have ended before it. ?view=wide draws it wideFactor times wider.
func (p *Pages) Trace(w http.ResponseWriter, r *http.Request) {
	job, attempts, ok := p.jobAndAttempts(w, r, model.AttemptPage{Limit: traceLimit + 1})
	if !ok {
		return
	}
	v := traceView{Job: job, Limit: traceLimit, Wide: r.URL.Query().Get("view") == "wide",
		Finished: !job.FinishedAt.IsZero()}
	if v.Cut = len(attempts) > traceLimit; v.Cut {
		attempts = attempts[:traceLimit]
	}
	q := url.Values{"job_id": {job.ID}}
	v.FitURL = "/trace?" + q.Encode()
	q.Set("view", "wide")
	v.WideURL = "/trace?" + q.Encode()
	v.layout(attempts, job.SubmittedAt, p.src.Now())
	p.render(w, r, "trace.html", v)
}

func (v *traceView) layout(attempts []model.Attempt, start, now time.Time) {
	end := start
	var first time.Time
	byLane := make(map[string]*lane)
	var names []string
	type placed struct {
		lane     *lane
		a        *model.Attempt
		from, to time.Time
	}
	var runs []placed
	// Slave processes that share a host have slots of the same numbers:
	// their lanes are told apart by the start of the slave's id.
	slavesOf := make(map[string]map[string]bool)
	for _, a := range attempts {
		if slavesOf[a.Hostname] == nil {
			slavesOf[a.Hostname] = make(map[string]bool)
		}
		slavesOf[a.Hostname][a.SlaveID] = true
	}
	for i := range attempts {
		a := &attempts[i]
		if a.StartedAt.IsZero() || a.Hostname == "" {
			v.Unstarted++
			continue
		}
		fin := a.FinishedAt
		if fin.IsZero() {
			fin = now
			v.Running = true
		}
		if fin.After(end) {
			end = fin
		}
		if first.IsZero() || a.StartedAt.Before(first) {
			first = a.StartedAt
		}
		d := fin.Sub(a.StartedAt)
		v.Work += d
		v.Longest = max(v.Longest, d)
		name := fmt.Sprintf("%s/%d", a.Hostname, a.Slot)
		if len(slavesOf[a.Hostname]) > 1 {
			name = fmt.Sprintf("%s·%s/%d", a.Hostname, a.SlaveID[:min(len(a.SlaveID), 6)], a.Slot)
		}
		key := name + "\x00" + a.SlaveID // lanes in the order of their names
		l := byLane[key]
		if l == nil {
			l = &lane{Name: name}
			byLane[key] = l
			names = append(names, key)
		}
		runs = append(runs, placed{l, a, a.StartedAt, fin})
	}
	if len(names) > 0 {
		v.Bound = max(v.Longest, v.Work/time.Duration(len(names)))
		v.Took = end.Sub(first)
		if v.Bound > 0 {
			v.Ratio = fmt.Sprintf("%.2f", float64(v.Took)/float64(v.Bound))
		}
		if b := first.Add(v.Bound); b.After(end) {
			end = b
		}
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	v.Span = span
	pct := func(t time.Time) float64 { return 100 * float64(t.Sub(start)) / float64(span) }
	if len(names) > 0 {
		v.BoundLeft = pct(first.Add(v.Bound))
	}
	scale := 1.0
	if v.Wide {
		scale = wideFactor
	}
	for _, r := range runs {
		a := r.a
		d := r.to.Sub(r.from)
		b := bar{
			Left:  pct(r.from),
			Width: max(0.1, pct(r.to)-pct(r.from)),
			Class: "task-" + string(a.State),
			Title: fmt.Sprintf("%s\nattempt %d: %s%s\n%s on %s/%d, started %s after submission",
				a.Description, a.Attempt, a.State, exitSuffix(*a), d.Round(100*time.Millisecond), a.Hostname, a.Slot,
				a.StartedAt.Sub(start).Round(100*time.Millisecond)),
			Link: viewLink(*a, ""),
		}
		if b.Width*scale >= labelPercent {
			b.Label = a.Description
		}
		r.lane.Bars = append(r.lane.Bars, b)
	}
	sort.Strings(names)
	v.Lanes = make([]lane, len(names))
	for i, n := range names {
		v.Lanes[i] = *byLane[n]
	}
	v.Ticks = ticks(span, 8*int(scale))
}

func exitSuffix(a model.Attempt) string {
	if s := exitText(a); s != "" {
		return " (" + s + ")"
	}
	return ""
}

// tickSteps are the spacings the time axis may use.
var tickSteps = []time.Duration{
	10 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// ticks marks the axis at the smallest step that gives at most n marks.
func ticks(span time.Duration, n int) []tick {
	step := tickSteps[len(tickSteps)-1]
	for _, s := range tickSteps {
		if span/s <= time.Duration(n) {
			step = s
			break
		}
	}
	var out []tick
	for t := time.Duration(0); t <= span; t += step {
		out = append(out, tick{Left: 100 * float64(t) / float64(span), Label: t.String()})
	}
	return out
}
