package web

import (
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// bar is one run on the timeline, placed in percent of the job's span.
type bar struct {
	Left, Width float64
	Class       string
	Title       string
}

// lane is one slave slot's row of the timeline.
type lane struct {
	Name string
	Bars []bar
}

// Trace shows when each attempt of a job ran, one lane per slave slot: the
// view that shows stragglers and idle slaves at a glance.
func (p *Pages) Trace(w http.ResponseWriter, r *http.Request) {
	job, attempts, ok := p.jobAndAttempts(w, r, model.AttemptPage{Limit: traceLimit + 1})
	if !ok {
		return
	}
	cut := len(attempts) > traceLimit
	if cut {
		attempts = attempts[:traceLimit]
	}
	lanes, span := timeline(attempts, job.SubmittedAt, p.src.Now())
	p.render(w, r, "trace.html", map[string]any{"Job": job, "Lanes": lanes, "Span": span, "Cut": cut, "Limit": traceLimit})
}

func timeline(attempts []model.Attempt, start, now time.Time) ([]lane, time.Duration) {
	end := start
	for _, a := range attempts {
		if a.StartedAt.IsZero() {
			continue
		}
		fin := a.FinishedAt
		if fin.IsZero() {
			fin = now
		}
		if fin.After(end) {
			end = fin
		}
	}
	span := end.Sub(start)
	if span <= 0 {
		span = time.Second
	}
	byLane := make(map[string]*lane)
	var names []string
	for _, a := range attempts {
		if a.StartedAt.IsZero() || a.Hostname == "" {
			continue
		}
		name := fmt.Sprintf("%s/%d", a.Hostname, a.Slot)
		l := byLane[name]
		if l == nil {
			l = &lane{Name: name}
			byLane[name] = l
			names = append(names, name)
		}
		fin := a.FinishedAt
		if fin.IsZero() {
			fin = now
		}
		l.Bars = append(l.Bars, bar{
			Left:  100 * float64(a.StartedAt.Sub(start)) / float64(span),
			Width: max(0.2, 100*float64(fin.Sub(a.StartedAt))/float64(span)),
			Class: "task-" + string(a.State),
			Title: fmt.Sprintf("%s (attempt %d): %s, %s", a.Description, a.Attempt, a.State, fin.Sub(a.StartedAt).Round(100*time.Millisecond)),
		})
	}
	sort.Strings(names)
	out := make([]lane, len(names))
	for i, n := range names {
		out[i] = *byLane[n]
	}
	return out, span
}
