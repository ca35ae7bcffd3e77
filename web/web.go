// Package web renders the master's HTML pages: the jobs (with the queue
// figures and the flaky tests), a job's page, a test's history, a job's
// timeline per slave, the slaves and the logs. Templates, styles and
// scripts are embedded in the binary. Pages read through Source, the same
// methods the JSON API uses.
package web

import (
	"context"
	"embed"
	"html/template"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/requestid"
)

//go:embed templates/*.html
var files embed.FS

// Source is what the pages read.
type Source interface {
	Job(ctx context.Context, id string) (model.Job, error)
	Attempts(ctx context.Context, jobID string, p model.AttemptPage) ([]model.Attempt, error)
	QueueStats(ctx context.Context) (queue.Stats, error)
	Slaves(ctx context.Context, aliveOnly bool) ([]model.Slave, error)
	OutputLink(ctx context.Context, base, key string) string
	// Dashboard: see jobs.go, job.go and testhistory.go.
	Dashboard
	// Now is the master's clock, so that the ages and runtimes shown agree
	// with the times the master records.
	Now() time.Time
	// Version is the master's build, shown at the foot of each page.
	Version() string
	LiveSource
}

// Pages serves the HTML pages.
type Pages struct {
	src   Source
	pages map[string]*template.Template // by file name
	log   *slog.Logger
}

// New parses the templates.
func New(src Source, log *slog.Logger) *Pages {
	if log == nil {
		log = slog.Default()
	}
	funcs := template.FuncMap{
		"version":  src.Version,
		"stamp":    func(t time.Time) string { return stamp(t) },
		"secs":     func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() },
		"jobURL":   func(id string) string { return "/job?job_id=" + url.QueryEscape(id) },
		"traceURL": func(id string) string { return "/trace?job_id=" + url.QueryEscape(id) },
	}
	maps.Copy(funcs, pageFuncs(src))
	maps.Copy(funcs, liveFuncs(src))
	return &Pages{src: src, pages: parsePages(funcs), log: requestid.Logger(log)}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func (p *Pages) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := p.pages[name].ExecuteTemplate(w, name, data); err != nil {
		p.log.WarnContext(r.Context(), "rendering page", "page", name, "err", err)
	}
}

// fail answers err as an HTML page (protocol.WriteError).
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, err error) {
	protocol.WriteError(w, r, p.log, protocol.HTML, err)
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
