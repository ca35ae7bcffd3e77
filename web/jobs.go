package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// The jobs page lists the jobs of the last jobsWindow, at most jobsLimit,
// and the flakiest tests of the last flakyWindow.
const (
	jobsWindow  = 7 * 24 * time.Hour
	jobsLimit   = 100
	flakyWindow = 7 * 24 * time.Hour
	flakyLimit  = 10
)

// jobLine is one job on the jobs page.
type jobLine struct {
	model.Job
	Active   model.Active
	Duration time.Duration
	State    string // running, passed or failed, as the filter names them
}

// filterLink is a link of a filter bar: its text, target and whether it is
// the filter shown.
type filterLink struct {
	Text, URL string
	Count     int
	Current   bool
}

// Index shows the queue and fleet figures, the recent jobs (filtered by
// user, state and id prefix: ?user=, ?state=, ?q=) and the flakiest tests.
// A search for an id that names a job goes to that job's page.
func (p *Pages) Index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		p.fail(w, r, fmt.Errorf("%w: no page at %s: the pages are /, /job?job_id=, /test?description= and /trace?job_id=", model.ErrNotFound, r.URL.Path))
		return
	}
	ctx := r.Context()
	q := r.URL.Query()
	f := model.JobFilter{Since: p.src.Now().Add(-jobsWindow), User: q.Get("user"), State: model.JobState(q.Get("state")),
		IDPrefix: q.Get("q"), Limit: jobsLimit}
	if !f.State.Valid() {
		p.fail(w, r, fmt.Errorf("%w: state must be running, failed, passed, canceled or absent", model.ErrInvalid))
		return
	}
	if len(f.User) > 200 || len(f.IDPrefix) > 200 {
		p.fail(w, r, fmt.Errorf("%w: user and q are at most 200 bytes", model.ErrInvalid))
		return
	}
	if f.IDPrefix != "" {
		if j, err := p.src.Job(ctx, f.IDPrefix); err == nil {
			http.Redirect(w, r, "/job?job_id="+url.QueryEscape(j.ID), http.StatusSeeOther)
			return
		}
	}
	stats, err := p.src.QueueStats(ctx)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	slaves, err := p.src.Slaves(ctx, true)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	jobs, err := p.src.FindJobs(ctx, f)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	var running []string
	for _, j := range jobs {
		if !j.Counts.Finished() {
			running = append(running, j.ID)
		}
	}
	active, err := p.src.ActiveTasks(ctx, running)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	flaky, err := p.src.FlakyTests(ctx, p.src.Now().Add(-flakyWindow), flakyLimit)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.src.Now()
	lines := make([]jobLine, len(jobs))
	var users []string
	for i, j := range jobs {
		l := jobLine{Job: j, Active: active[j.ID], State: "running"}
		end := j.FinishedAt
		if end.IsZero() {
			end = now
		} else if j.Counts.FailedGroups > 0 {
			l.State = "failed"
		} else {
			l.State = "passed"
		}
		l.Duration = end.Sub(j.SubmittedAt)
		lines[i] = l
		if j.User != "" && !slices.Contains(users, j.User) {
			users = append(users, j.User)
		}
	}
	slices.Sort(users)
	slots := 0
	for _, s := range slaves {
		slots += s.Slots
	}
	p.render(w, r, "index.html", map[string]any{
		"Stats": stats, "Slaves": len(slaves), "Slots": slots, "Jobs": lines, "Filter": f,
		"States": stateLinks(f), "Users": userLinks(f, users), "Flaky": flaky,
		"Limit": jobsLimit,
	})
}

// indexURL is the jobs page with the filter f.
func indexURL(f model.JobFilter) string {
	v := url.Values{}
	if f.User != "" {
		v.Set("user", f.User)
	}
	if f.State != "" {
		v.Set("state", string(f.State))
	}
	if f.IDPrefix != "" {
		v.Set("q", f.IDPrefix)
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

func stateLinks(f model.JobFilter) []filterLink {
	var out []filterLink
	for _, s := range model.JobStates {
		g := f
		g.State = s
		text := string(s)
		if s == model.JobAnyState {
			text = "all"
		}
		out = append(out, filterLink{Text: text, URL: indexURL(g), Current: f.State == s})
	}
	return out
}

func userLinks(f model.JobFilter, users []string) []filterLink {
	g := f
	g.User = ""
	out := []filterLink{{Text: "everyone", URL: indexURL(g), Current: f.User == ""}}
	if f.User != "" && !slices.Contains(users, f.User) {
		users = append(users, f.User)
	}
	for _, u := range users {
		g.User = u
		out = append(out, filterLink{Text: u, URL: indexURL(g), Current: f.User == u})
	}
	return out
}
