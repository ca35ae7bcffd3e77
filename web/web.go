// Package web renders the master's HTML pages: the index (queue, slaves,
// recent jobs), a job's page, and a job's timeline per slave. Templates and
// styles are embedded in the binary. Pages read through Source, the same
// methods the JSON API uses.
package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dist-test/dist_test/internal/httpserver"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/requestid"
)

//go:embed templates/*.html
var files embed.FS

// Source is what the pages read.
type Source interface {
	Jobs(ctx context.Context, since time.Time, limit int) ([]model.Job, error)
	Job(ctx context.Context, id string) (model.Job, error)
	Attempts(ctx context.Context, jobID string, p model.AttemptPage) ([]model.Attempt, error)
	QueueStats(ctx context.Context) (queue.Stats, error)
	Slaves(ctx context.Context, aliveOnly bool) ([]model.Slave, error)
	OutputLink(ctx context.Context, base, key string) string
	// Now is the master's clock, so that the ages and runtimes shown agree
	// with the times the master records.
	Now() time.Time
	LiveSource
}

// Pages serves the HTML pages.
type Pages struct {
	src  Source
	tmpl *template.Template
	log  *slog.Logger
}

// New parses the templates.
func New(src Source, log *slog.Logger) *Pages {
	if log == nil {
		log = slog.Default()
	}
	t := template.Must(template.New("").Funcs(template.FuncMap{
		"ago":      func(t time.Time) string { return ago(src.Now(), t) },
		"stamp":    func(t time.Time) string { return stamp(t) },
		"secs":     func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() },
		"pct":      pct,
		"mb":       func(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) },
		"jobURL":   func(id string) string { return "/job?job_id=" + url.QueryEscape(id) },
		"traceURL": func(id string) string { return "/trace?job_id=" + url.QueryEscape(id) },
	}).Funcs(liveFuncs(src)).ParseFS(files, "templates/*.html"))
	return &Pages{src: src, tmpl: t, log: requestid.Logger(log)}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return now.Sub(t).Round(time.Second).String() + " ago"
}

func pct(n, total int) string {
	if total == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.2f%%", 100*float64(n)/float64(total))
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := p.tmpl.ExecuteTemplate(w, name, data); err != nil {
		p.log.WarnContext(r.Context(), "rendering page", "page", name, "err", err)
	}
}

// fail answers err as an HTML page (protocol.WriteError).
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	protocol.WriteError(w, r, p.log, protocol.HTML, err)
}

// Index shows the queue, the slaves and the jobs of the last day.
func (p *Pages) Index(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		p.fail(w, r, fmt.Errorf("%w: no page at %s: the pages are /, /job?job_id= and /trace?job_id=", model.ErrNotFound, r.URL.Path))
		return
	}
	ctx := r.Context()
	stats, err := p.src.QueueStats(ctx)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	jobs, err := p.src.Jobs(ctx, p.src.Now().Add(-24*time.Hour), 200)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	slaves, err := p.src.Slaves(ctx, true)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	tasks := 0
	for _, j := range jobs {
		tasks += j.Counts.TotalGroups
	}
	p.render(w, r, "index.html", map[string]any{"Stats": stats, "Jobs": jobs, "Tasks": tasks, "Slaves": slaves})
}

// jobRow is one attempt on the job page.
type jobRow struct {
	model.Attempt
	Class                  string
	StdoutView, StderrView string
	StdoutLink, StderrLink string
	ArtifactLink           string
	Runtime                time.Duration
}

// Job shows a job's summary and one page of its attempts, in task order
// (?limit=, default jobPage; ?after= for the next page; ?status=failed for
// the failures only), so that the page of a job of 100,000 tasks stays small.
func (p *Pages) Job(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	page := model.AttemptPage{Limit: jobPage}
	status := q.Get("status")
	switch status {
	case "":
	case "failed":
		page.States = []model.State{model.Failed, model.TimedOut, model.Canceled, model.InfraFailed}
	default:
		p.fail(w, r, fmt.Errorf("%w: status must be failed or absent", model.ErrInvalid))
		return
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > protocol.MaxPage {
			p.fail(w, r, fmt.Errorf("%w: limit must be a number from 1 to %d", model.ErrInvalid, protocol.MaxPage))
			return
		}
		page.Limit = n
	}
	if v := q.Get("after"); v != "" {
		var c model.Cursor
		if _, err := fmt.Sscanf(v, "%d.%d", &c.Index, &c.Attempt); err != nil || c.Index < 0 || c.Attempt < 0 {
			p.fail(w, r, fmt.Errorf("%w: after must be like 499.0", model.ErrInvalid))
			return
		}
		page.After = &c
	}
	limit := page.Limit
	page.Limit++
	job, attempts, ok := p.jobAndAttempts(w, r, page)
	if !ok {
		return
	}
	next := ""
	if len(attempts) > limit {
		attempts = attempts[:limit]
		last := attempts[limit-1]
		v := url.Values{"job_id": {job.ID}, "after": {fmt.Sprintf("%d.%d", last.Index, last.Attempt)}}
		if status != "" {
			v.Set("status", status)
		}
		if q.Get("limit") != "" {
			v.Set("limit", q.Get("limit"))
		}
		next = "/job?" + v.Encode()
	}
	base := httpserver.BaseURL(r)
	now := p.src.Now()
	rows := make([]jobRow, len(attempts))
	for i, a := range attempts {
		rows[i] = jobRow{Attempt: a, Class: "task-" + string(a.State), Runtime: a.Duration(now)}
		if a.Outputs.Stdout != "" {
			rows[i].StdoutLink = p.src.OutputLink(ctx, base, a.Outputs.Stdout)
			rows[i].StdoutView = viewLink(a, "stdout")
		}
		if a.Outputs.Stderr != "" {
			rows[i].StderrLink = p.src.OutputLink(ctx, base, a.Outputs.Stderr)
			rows[i].StderrView = viewLink(a, "stderr")
		}
		rows[i].ArtifactLink = p.src.OutputLink(ctx, base, a.Outputs.Artifacts)
	}
	runtime := now.Sub(job.SubmittedAt)
	if !job.FinishedAt.IsZero() {
		runtime = job.FinishedAt.Sub(job.SubmittedAt)
	}
	p.render(w, r, "job.html", map[string]any{"Job": job, "Rows": rows, "Runtime": runtime, "Next": next,
		"Failed": status == "failed", "Paged": page.After != nil})
}

// jobPage is how many attempts a job's page shows at once.
const jobPage = 500

// traceLimit bounds the attempts the timeline draws.
const traceLimit = 5000

// jobAndAttempts reads the job named by the job_id parameter and a page of
// its attempts; on failure it has answered, and ok is false.
func (p *Pages) jobAndAttempts(w http.ResponseWriter, r *http.Request, page model.AttemptPage) (job model.Job, attempts []model.Attempt, ok bool) {
	id := r.URL.Query().Get("job_id")
	job, err := p.src.Job(r.Context(), id)
	if err == nil {
		attempts, err = p.src.Attempts(r.Context(), id, page)
	}
	if err != nil {
		p.fail(w, r, err)
		return job, nil, false
	}
	return job, attempts, true
}

func viewLink(a model.Attempt, log string) string {
	v := url.Values{"job_id": {a.JobID}, "task_id": {a.TaskID}, "attempt": {strconv.Itoa(a.Attempt)}, "log": {log}}
	return "/view_log?" + v.Encode()
}
