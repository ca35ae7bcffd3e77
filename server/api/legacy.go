package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/httpserver"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/server"
)

// The endpoints of the original master (cloudera/dist_test's
// infra/server.py), with its parameters and answers, so that existing
// scripts keep working against this one.
// Parameters may come in the query string or a form body.
func (a *API) legacy(r chi.Router, read, write func(http.Handler) http.Handler) {
	r.With(write).Post("/submit_job", a.legacyJSON(a.submitJobLegacy))
	r.With(write).Post("/retry_task", a.legacyJSON(a.retryTaskLegacy))
	r.With(a.sameSiteGet, write).Get("/cancel_job", a.legacyJSON(a.cancelJobLegacy))
	r.With(write).Post("/cancel_job", a.legacyJSON(a.cancelJobLegacy))
	r.With(read).Get("/job_status", a.legacyJSON(a.jobStatusLegacy))
	r.With(read).Get("/tasks", a.legacyJSON(a.tasksLegacy))
	r.With(read).Get("/failed_tasks", a.legacyJSON(func(r *http.Request) (any, error) {
		return a.legacyTasks(r, "failed")
	}))
	r.With(read).Get("/view_log", a.viewLog)
}

// sameSiteGet refuses a GET that changes state (the original's
// GET /cancel_job) when a browser says it comes from another site: a link or
// an image on any web page would otherwise cancel jobs with the visitor's
// address or cached login. Clients that send no Sec-Fetch-Site (curl, the
// original's Python client, ours) are not browsers and pass, as
// http.CrossOriginProtection lets them pass for the other methods.
func (a *API) sameSiteGet(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Sec-Fetch-Site") {
		case "", "same-origin", "none":
			next.ServeHTTP(w, r)
		default:
			a.writeLegacyError(w, r, model.WithKind(model.ErrForbidden,
				errors.New("cross-site request refused: cancel from the dashboard's own pages or with dist_test cancel")))
		}
	})
}

var success = map[string]string{"status": "SUCCESS"}

// legacyJSON answers like the original: the value as JSON, and for errors
// {"status": "ERROR", "error": "..."} with the status of the error's kind.
func (a *API) legacyJSON(h func(*http.Request) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, a.opt.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				err = fmt.Errorf("%w: request body over %d bytes", model.ErrTooLarge, a.opt.MaxBodyBytes)
			} else {
				err = fmt.Errorf("%w: malformed form: %v", model.ErrInvalid, err)
			}
			a.writeLegacyError(w, r, err)
			return
		}
		v, err := h(r)
		if err != nil {
			a.writeLegacyError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if s, ok := v.(streamed); ok {
			if err := s(w); err != nil {
				// Too late for an error status: cut the answer, so the
				// client sees a broken one rather than a short list.
				a.log.WarnContext(r.Context(), "streaming an answer", "path", r.URL.Path, "err", err)
				panic(http.ErrAbortHandler)
			}
			return
		}
		_ = json.NewEncoder(w).Encode(v)
	}
}

// writeLegacyError answers err in the original's shape,
// {"status": "ERROR", "error": ...} (protocol.WriteError).
func (a *API) writeLegacyError(w http.ResponseWriter, r *http.Request, err error) {
	protocol.WriteError(w, r, a.log, protocol.Legacy, err)
}

func required(r *http.Request, name string) (string, error) {
	v := r.Form.Get(name)
	if v == "" {
		return "", fmt.Errorf("%w: missing parameter %q", model.ErrInvalid, name)
	}
	return v, nil
}

func (a *API) submitJobLegacy(r *http.Request) (any, error) {
	id, err := required(r, "job_id")
	if err != nil {
		return nil, err
	}
	doc, err := required(r, "job_json")
	if err != nil {
		return nil, err
	}
	specs, opt, err := protocol.ParseJobDocument([]byte(doc), a.m.Config().MaxTasksPerJob)
	if err != nil {
		return nil, model.WithKind(model.ErrInvalid, err)
	}
	sub := server.Submission{ID: id, User: auth.IdentityOf(r.Context()).Name, Tasks: specs,
		FailMissingInputs: true, IsolateServer: a.isolateServer(r), MaxFailures: opt.MaxFailures, Hedge: opt.Hedge}
	if _, err := a.m.Submit(r.Context(), sub); err != nil {
		return nil, err
	}
	return success, nil
}

// isolateServer is the isolate server's URL as the caller reaches it: this
// master's, when it serves the isolate server itself.
func (a *API) isolateServer(r *http.Request) string {
	if a.opt.CAS != nil {
		return httpserver.BaseURL(r)
	}
	return a.m.Config().IsolateServer
}

// retryTaskLegacy serves the original slaves' retry request. This master
// queues retries itself when an attempt fails, so this is normally a no-op
// answered with success.
func (a *API) retryTaskLegacy(r *http.Request) (any, error) {
	doc, err := required(r, "task_json")
	if err != nil {
		return nil, err
	}
	var t struct {
		JobID   string `json:"job_id"`
		TaskID  string `json:"task_id"`
		Attempt int    `json:"attempt"`
	}
	if err := json.Unmarshal([]byte(doc), &t); err != nil || t.JobID == "" || t.TaskID == "" {
		return nil, fmt.Errorf(`%w: task_json must be {"job_id": ..., "task_id": ..., "attempt": n}`, model.ErrInvalid)
	}
	if err := a.mayChange(r, t.JobID); err != nil {
		return nil, err
	}
	if err := a.m.RetryAttempt(r.Context(), t.JobID, t.TaskID, t.Attempt); err != nil {
		return nil, err
	}
	return success, nil
}

func (a *API) cancelJobLegacy(r *http.Request) (any, error) {
	id, err := required(r, "job_id")
	if err != nil {
		return nil, err
	}
	// An unknown job is canceled already, as the original answered: its
	// client retries any error for 50 s before giving up.
	err = a.mayChange(r, id)
	if err == nil {
		_, err = a.m.Cancel(r.Context(), id)
	}
	if err != nil && !errors.Is(err, model.ErrNotFound) {
		return nil, err
	}
	return success, nil
}

func (a *API) jobStatusLegacy(r *http.Request) (any, error) {
	id, err := required(r, "job_id")
	if err != nil {
		return nil, err
	}
	job, err := a.m.Job(r.Context(), id)
	if errors.Is(err, model.ErrNotFound) {
		// HTTP 200 with an error, as the original answered: its client
		// retries any HTTP error for 50 s before giving up.
		return map[string]string{"error": "Did not fetch any tasks for specified job_id " + id}, nil
	}
	if err != nil {
		return nil, err
	}
	type status struct {
		model.Counts
		Status string `json:"status"`
	}
	return status{Counts: job.Counts, Status: job.Counts.Status()}, nil
}

func (a *API) tasksLegacy(r *http.Request) (any, error) {
	return a.legacyTasks(r, r.Form.Get("status"))
}

// legacyTask is a record of the original /tasks answer.
type legacyTask struct {
	TaskID              string `json:"task_id"`
	Attempt             int    `json:"attempt"`
	Description         string `json:"description"`
	StdoutLink          string `json:"stdout_link,omitempty"`
	StderrLink          string `json:"stderr_link,omitempty"`
	ArtifactArchiveLink string `json:"artifact_archive_link,omitempty"`
}

// legacyTasks answers the whole list, as the original client expects (it
// reads /tasks once, then fetches): a 100,000-task job makes an answer of
// tens of megabytes. It is streamed a page at a time, so the master holds
// one page (legacyPage attempts) whatever the job's size.
func (a *API) legacyTasks(r *http.Request, status string) (any, error) {
	id, err := required(r, "job_id")
	if err != nil {
		return nil, err
	}
	// The original's answers, all HTTP 200: its client retries any HTTP
	// error for 50 s, and says "No tasks in specified job, or job does not
	// exist" of an empty list.
	if status != "" && status != "failed" && status != "succeeded" && status != "finished" {
		return map[string]string{"error": "Unknown status type " + status}, nil
	}
	states, err := statusFilter(status)
	if err != nil {
		return nil, err
	}
	p := store.AttemptPage{States: states, Limit: legacyPage}
	first, err := a.m.Attempts(r.Context(), id, p)
	if errors.Is(err, model.ErrNotFound) {
		return []legacyTask{}, nil
	}
	if err != nil {
		return nil, err
	}
	return streamed(func(w io.Writer) error {
		base := httpserver.BaseURL(r)
		enc := json.NewEncoder(w)
		io.WriteString(w, "[")
		page, n := first, 0
		for {
			for _, at := range page {
				if n++; n > 1 {
					io.WriteString(w, ",")
				}
				if err := enc.Encode(legacyTask{
					TaskID: at.TaskID, Attempt: at.Attempt, Description: at.Description,
					StdoutLink:          a.m.OutputLink(r.Context(), base, at.Outputs.Stdout),
					StderrLink:          a.m.OutputLink(r.Context(), base, at.Outputs.Stderr),
					ArtifactArchiveLink: a.m.OutputLink(r.Context(), base, at.Outputs.Artifacts),
				}); err != nil {
					return err
				}
			}
			if len(page) < legacyPage {
				break
			}
			c := store.CursorOf(page[len(page)-1])
			p.After = &c
			if page, err = a.m.Attempts(r.Context(), id, p); err != nil {
				return err
			}
		}
		_, err := io.WriteString(w, "]\n")
		return err
	}), nil
}

// legacyPage is how many attempts the legacy lists read at a time.
const legacyPage = 1000

// streamed is an answer legacyJSON writes by calling it, once the status
// is sent.
type streamed func(w io.Writer) error

// viewLog answers a task's log, HTML-escaped, as the original did; a
// browser (it asks for text/html) gets the dashboard's log page instead,
// with the same parameters.
func (a *API) viewLog(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	if a.opt.Pages != nil && strings.Contains(r.Header.Get("Accept"), "text/html") {
		a.opt.Pages.ViewLog(w, r)
		return
	}
	q := r.URL.Query()
	fail := func(err error) { protocol.WriteError(w, r, a.log, protocol.HTML, err) }
	n, err := strconv.Atoi(q.Get("attempt"))
	if err != nil {
		fail(fmt.Errorf("%w: attempt must be a number", model.ErrInvalid))
		return
	}
	at, err := a.m.Attempt(r.Context(), q.Get("job_id"), q.Get("task_id"), n)
	if err != nil {
		fail(err)
		return
	}
	var key string
	switch q.Get("log") {
	case "stdout":
		key = at.Outputs.Stdout
	case "stderr":
		key = at.Outputs.Stderr
	default:
		fail(fmt.Errorf("%w: log must be stdout or stderr", model.ErrInvalid))
		return
	}
	if key == "" {
		fail(fmt.Errorf("%w: this attempt has no %s log", model.ErrNotFound, q.Get("log")))
		return
	}
	rc, _, err := a.m.OpenOutput(r.Context(), key)
	if err != nil {
		fail(err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = io.WriteString(w, "<pre>")
	// Escaping works character by character, so the log streams through
	// in chunks instead of being held whole.
	if _, err := io.Copy(escaper{w}, rc); err != nil {
		a.log.WarnContext(r.Context(), "serving log", "key", key, "err", err)
		return
	}
	_, _ = io.WriteString(w, "</pre>")
}

type escaper struct{ w io.Writer }

func (e escaper) Write(p []byte) (int, error) {
	if _, err := io.WriteString(e.w, html.EscapeString(string(p))); err != nil {
		return 0, err
	}
	return len(p), nil
}
