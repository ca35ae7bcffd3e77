package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/httpserver"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/server"
)

func (a *API) createJob(r *http.Request) (result, error) {
	var req struct {
		ID          string          `json:"id"`
		Name        string          `json:"name"`
		User        string          `json:"user"`
		Tasks       json.RawMessage `json:"tasks"`
		MaxFailures json.RawMessage `json:"max_failures"`
		Hedge       json.RawMessage `json:"hedge"`
	}
	// Unlike the legacy /submit_job, which ignores unknown fields as the
	// original did, the API refuses them: a "timout" is a timeout lost.
	if err := a.decodeStrict(r, &req); err != nil {
		return result{}, err
	}
	fields := map[string]json.RawMessage{}
	if req.MaxFailures != nil {
		fields["max_failures"] = req.MaxFailures
	}
	if req.Hedge != nil {
		fields["hedge"] = req.Hedge
	}
	opt, err := protocol.ParseJobOptions(fields)
	if err != nil {
		return result{}, model.WithKind(model.ErrInvalid, err)
	}
	if len(req.Tasks) == 0 {
		return result{}, fmt.Errorf(`%w: missing "tasks"`, model.ErrInvalid)
	}
	specs, unknown, err := protocol.ParseTasksChecked(req.Tasks, a.m.Config().MaxTasksPerJob)
	if err != nil {
		return result{}, model.WithKind(model.ErrInvalid, err)
	}
	if len(unknown) > 0 {
		return result{}, fmt.Errorf("%w: job JSON: %s", model.ErrInvalid, unknown[0])
	}
	if req.ID == "" {
		req.ID = fmt.Sprintf("%s%d.%s", prefix(req.Name), a.m.Now().Unix(), model.NewToken()[:8])
	}
	// The job belongs to the account that submits it; an address in
	// allowed_ip_ranges submits without one and names its user itself.
	if name := auth.IdentityOf(r.Context()).Name; name != "" {
		req.User = name
	}
	job, err := a.m.Submit(r.Context(), server.Submission{ID: req.ID, User: req.User, Name: req.Name, Tasks: specs,
		MaxFailures: opt.MaxFailures, Hedge: opt.Hedge})
	if err != nil {
		return result{}, err
	}
	return result{http.StatusCreated, jobJSON(job)}, nil
}

func prefix(name string) string {
	if name == "" {
		return ""
	}
	return name + "."
}

// decode reads a bounded JSON body into v.
func (a *API) decode(r *http.Request, v any) error { return a.decodeBody(r, v, false) }

// decodeStrict is decode that refuses fields v does not have.
func (a *API) decodeStrict(r *http.Request, v any) error { return a.decodeBody(r, v, true) }

func (a *API) decodeBody(r *http.Request, v any, strict bool) error {
	body := http.MaxBytesReader(nil, r.Body, a.opt.MaxBodyBytes)
	var buf bytes.Buffer
	if n := r.ContentLength; n > 0 && n <= a.opt.MaxBodyBytes {
		buf.Grow(int(n) + 1) // one allocation, not a doubling series
	}
	_, err := buf.ReadFrom(body)
	data := buf.Bytes()
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return fmt.Errorf("%w: request body over %d bytes", model.ErrTooLarge, a.opt.MaxBodyBytes)
	}
	if err != nil {
		return fmt.Errorf("%w: reading the request body: %v", model.ErrInvalid, err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: malformed JSON: %v", model.ErrInvalid, err)
	}
	if len(bytes.TrimSpace(data[dec.InputOffset():])) > 0 {
		return fmt.Errorf("%w: malformed JSON: data after the top-level value", model.ErrInvalid)
	}
	return nil
}

func (a *API) getJob(r *http.Request) (result, error) {
	job, err := a.m.Job(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return result{}, err
	}
	return result{value: jobJSON(job)}, nil
}

func (a *API) listJobs(r *http.Request) (result, error) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return result{}, fmt.Errorf("%w: limit must be a number from 1 to 10000, got %q", model.ErrInvalid, v)
		}
		limit = n
	}
	jobs, err := a.m.Jobs(r.Context(), time.Time{}, limit)
	if err != nil {
		return result{}, err
	}
	out := protocol.JobList{Jobs: make([]protocol.Job, len(jobs))}
	for i, j := range jobs {
		out.Jobs[i] = jobJSON(j)
	}
	return result{value: out}, nil
}

func (a *API) listTasks(r *http.Request) (result, error) {
	q := r.URL.Query()
	p, err := pageOf(q)
	if err != nil {
		return result{}, err
	}
	limit := p.Limit
	p.Limit++ // one more tells whether there is a next page
	attempts, err := a.m.Attempts(r.Context(), chi.URLParam(r, "id"), p)
	if err != nil {
		return result{}, err
	}
	out := protocol.AttemptList{}
	if len(attempts) > limit {
		attempts = attempts[:limit]
		out.Next = formatCursor(store.CursorOf(attempts[limit-1]))
	}
	base := httpserver.BaseURL(r)
	out.Tasks = make([]protocol.Attempt, len(attempts))
	for i, at := range attempts {
		out.Tasks[i] = a.attemptJSON(r, base, at)
		if !at.State.Final() {
			// What clients estimate the time left from.
			out.Tasks[i].ExpectedSeconds = at.Expected.Seconds()
		}
	}
	return result{value: out}, nil
}

// pageOf reads status=, limit= (DefaultPage when absent) and after= (a
// next of an earlier page).
func pageOf(q url.Values) (store.AttemptPage, error) {
	states, err := statusFilter(q.Get("status"))
	if err != nil {
		return store.AttemptPage{}, err
	}
	p := store.AttemptPage{States: states, Limit: protocol.DefaultPage}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > protocol.MaxPage {
			return p, fmt.Errorf("%w: limit must be a number from 1 to %d, got %q", model.ErrInvalid, protocol.MaxPage, clipParam(v))
		}
		p.Limit = n
	}
	if v := q.Get("after"); v != "" {
		c, err := parseCursor(v)
		if err != nil {
			return p, err
		}
		p.After = &c
	}
	return p, nil
}

// A cursor travels as "<task index>.<attempt>".
func formatCursor(c store.Cursor) string { return fmt.Sprintf("%d.%d", c.Index, c.Attempt) }

func parseCursor(v string) (store.Cursor, error) {
	i, n, ok := strings.Cut(v, ".")
	idx, err1 := strconv.Atoi(i)
	att, err2 := strconv.Atoi(n)
	if !ok || err1 != nil || err2 != nil || idx < 0 || att < 0 {
		return store.Cursor{}, fmt.Errorf("%w: after must be the next of an earlier page, such as 999.0, got %q", model.ErrInvalid, clipParam(v))
	}
	return store.Cursor{Index: idx, Attempt: att}, nil
}

func clipParam(v string) string { return model.Clip(v, 40) }

// statusFilter maps a status filter to attempt states: the legacy names
// (failed, succeeded, finished) and every state's own name.
func statusFilter(status string) ([]model.State, error) {
	switch status {
	case "":
		return nil, nil
	case "failed":
		return []model.State{model.Failed, model.TimedOut, model.Canceled, model.InfraFailed}, nil
	case "succeeded":
		return []model.State{model.Passed}, nil
	case "finished":
		return []model.State{model.Passed, model.Failed, model.TimedOut, model.Canceled, model.InfraFailed}, nil
	}
	if s := model.State(status); s.Valid() {
		return []model.State{s}, nil
	}
	return nil, fmt.Errorf("%w: unknown status %q: use failed, succeeded, finished or a state (queued, running, passed, failed, timed_out, canceled, infra_failed)",
		model.ErrInvalid, status)
}

// mayChange refuses to cancel or retry a job of someone else when
// [master] owners_only is on. An unknown job is left to the call, which
// answers it as it always did.
func (a *API) mayChange(r *http.Request, jobID string) error {
	if !a.opt.OwnersOnly {
		return nil
	}
	job, err := a.m.Job(r.Context(), jobID)
	if errors.Is(err, model.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return auth.MayChange(auth.IdentityOf(r.Context()), job.User)
}

func (a *API) cancelJob(r *http.Request) (result, error) {
	if err := a.mayChange(r, chi.URLParam(r, "id")); err != nil {
		return result{}, err
	}
	job, err := a.m.Cancel(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return result{}, err
	}
	return result{value: jobJSON(job)}, nil
}

func (a *API) retryTasks(r *http.Request) (result, error) {
	if err := a.mayChange(r, chi.URLParam(r, "id")); err != nil {
		return result{}, err
	}
	var req protocol.Retry
	if r.ContentLength != 0 {
		if err := a.decode(r, &req); err != nil {
			return result{}, err
		}
	}
	got, err := a.m.Retry(r.Context(), chi.URLParam(r, "id"), req.TaskIDs)
	if err != nil {
		return result{}, err
	}
	if got == nil {
		got = []string{}
	}
	return result{value: protocol.RetryResult{Retried: got}}, nil
}

func (a *API) queueStats(r *http.Request) (result, error) {
	st, err := a.m.QueueStats(r.Context())
	if err != nil {
		return result{}, err
	}
	return result{value: map[string]int{"ready": st.Ready, "reserved": st.Reserved, "delayed": st.Delayed,
		"buried": st.Buried, "waiting": st.Waiting}}, nil
}

func jobJSON(j model.Job) protocol.Job {
	out := protocol.Job{ID: j.ID, User: j.User, Name: j.Name, Status: j.Counts.Status(), Canceled: j.Canceled,
		MaxFailures: j.MaxFailures, Hedge: j.Hedge,
		SubmittedAt: j.SubmittedAt.UTC(), Counts: j.Counts, Inputs: protocol.InputsFrom(j.Inputs)}
	if !j.FinishedAt.IsZero() {
		t := j.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	return out
}

func (a *API) attemptJSON(r *http.Request, base string, at model.Attempt) protocol.Attempt {
	ctx := r.Context()
	out := protocol.Attempt{
		TaskID: at.TaskID, Attempt: at.Attempt, Description: at.Description,
		StdoutLink:          a.m.OutputLink(ctx, base, at.Outputs.Stdout),
		StderrLink:          a.m.OutputLink(ctx, base, at.Outputs.Stderr),
		ArtifactArchiveLink: a.m.OutputLink(ctx, base, at.Outputs.Artifacts),
		State:               string(at.State), IsolateHash: at.IsolateHash, ExitCode: at.ExitCode,
		Slave: at.SlaveID, Hostname: at.Hostname, SubmittedAt: at.SubmittedAt.UTC(),
		DurationSeconds: at.Duration(a.m.Now()).Seconds(), Runs: at.Runs,
		MissingOutputs: at.Outputs.Missing, Error: at.Error, Inputs: protocol.InputsFrom(at.Inputs),
		CPUSeconds: at.Usage.CPUTime.Seconds(), PeakMemoryBytes: at.Usage.PeakMemory,
		DockerImage: at.DockerImage, ImagePullSeconds: at.Usage.ImagePull.Seconds(),
	}
	if !at.StartedAt.IsZero() {
		t := at.StartedAt.UTC()
		out.StartedAt = &t
	}
	if !at.FinishedAt.IsZero() {
		t := at.FinishedAt.UTC()
		out.FinishedAt = &t
	}
	return out
}
