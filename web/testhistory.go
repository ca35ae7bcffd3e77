package web

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// historyRuns is how many of a test's latest runs its page shows.
const historyRuns = 100

// history is what the test page says of a test's latest runs.
type history struct {
	Runs                  []model.Attempt // newest first
	Passed, Failed, Other int
	// Tasks are the distinct tasks (one per job) the runs belong to;
	// Flaky those of them that failed and then passed on a retry.
	Tasks, Flaky int
	Median, P90  time.Duration // of the passed runs
	Trend        trend
}

// trend is the runtime of the finished runs, oldest first, drawn as an
// inline SVG: a polyline and a dot per run, coloured by outcome.
type trend struct {
	Width, Height int
	Points        string
	Dots          []trendDot
	Max           time.Duration
}

type trendDot struct {
	X, Y  float64
	Class string
	Title string
}

// Test shows one test's latest runs across jobs (?description=), its flake
// rate and its runtime trend.
func (p *Pages) Test(w http.ResponseWriter, r *http.Request) {
	d := r.URL.Query().Get("description")
	runs, err := p.src.TestRuns(r.Context(), d, historyRuns)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	h := summarize(runs)
	p.render(w, r, "test.html", map[string]any{"Description": d, "H": h, "Limit": historyRuns})
}

// summarize counts runs, flaky tasks and runtimes, and draws the trend.
func summarize(runs []model.Attempt) history {
	h := history{Runs: runs}
	type task struct{ failed, passed bool }
	tasks := map[int64]*task{}
	var passed []time.Duration
	for _, a := range runs {
		t := tasks[a.TaskRow]
		if t == nil {
			t = &task{}
			tasks[a.TaskRow] = t
		}
		switch a.State {
		case model.Passed:
			h.Passed++
			t.passed = true
			passed = append(passed, a.Duration(time.Time{}))
		case model.Failed, model.TimedOut:
			h.Failed++
			t.failed = true
		default:
			h.Other++
		}
	}
	h.Tasks = len(tasks)
	for _, t := range tasks {
		if t.failed && t.passed {
			h.Flaky++
		}
	}
	if len(passed) > 0 {
		slices.Sort(passed)
		h.Median = passed[(len(passed)-1)/2]
		h.P90 = passed[min(len(passed)-1, (len(passed)*9+9)/10-1)]
	}
	h.Trend = drawTrend(runs)
	return h
}

// drawTrend places the finished runs, oldest on the left.
func drawTrend(runs []model.Attempt) trend {
	t := trend{Width: 600, Height: 80}
	var done []model.Attempt
	for i := len(runs) - 1; i >= 0; i-- {
		if runs[i].State.Final() && !runs[i].StartedAt.IsZero() && !runs[i].FinishedAt.IsZero() {
			done = append(done, runs[i])
		}
	}
	for _, a := range done {
		t.Max = max(t.Max, a.Duration(time.Time{}))
	}
	if len(done) == 0 || t.Max <= 0 {
		return t
	}
	const pad = 4.0
	step, x0 := 0.0, float64(t.Width)/2 // one run sits in the middle
	if len(done) > 1 {
		x0 = pad
		step = (float64(t.Width) - 2*pad) / float64(len(done)-1)
	}
	var pts []string
	for i, a := range done {
		x := x0 + step*float64(i)
		y := float64(t.Height) - pad - (float64(t.Height)-2*pad)*float64(a.Duration(time.Time{}))/float64(t.Max)
		pts = append(pts, strconv.FormatFloat(x, 'f', 1, 64)+","+strconv.FormatFloat(y, 'f', 1, 64))
		t.Dots = append(t.Dots, trendDot{X: x, Y: y, Class: "dot-" + string(model.TabOf(a.State)),
			Title: fmt.Sprintf("%s: %s, %s", a.JobID, outcome(a), roughDuration(a.Duration(time.Time{})))})
	}
	t.Points = strings.Join(pts, " ")
	return t
}
