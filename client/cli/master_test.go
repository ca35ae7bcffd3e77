package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// fakeMaster plays the master's API for the commands: jobs answer a script
// of counters, one per poll, and files are served under /files/.
type fakeMaster struct {
	mu        sync.Mutex
	jobs      map[string]*fakeJob
	created   []protocol.CreateJob
	createErr error // kind to refuse submissions with
	files     map[string]string
	busy      map[string]int // file → 503 answers before it is served
	requests  []string       // method and URL of every API request
}

type fakeJob struct {
	polls    []model.Counts // successive answers; the last repeats
	n        int
	tasks    []protocol.Attempt
	canceled bool
}

// locked runs fn with the master's state to itself.
func (f *fakeMaster) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func newFakeMaster() *fakeMaster {
	return &fakeMaster{jobs: map[string]*fakeJob{}, files: map[string]string{}, busy: map[string]int{}}
}

func (f *fakeMaster) reply(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *fakeMaster) fail(w http.ResponseWriter, kind error, msg string) {
	status, code := protocol.StatusOf(kind)
	f.reply(w, status, protocol.Error{Error: msg, Code: code})
}

func (f *fakeMaster) job(id string, j *fakeJob) protocol.Job {
	c := j.polls[min(j.n, len(j.polls)-1)]
	return protocol.Job{ID: id, Status: c.Status(), Canceled: j.canceled, Counts: c,
		SubmittedAt: time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)}
}

func (f *fakeMaster) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var cj protocol.CreateJob
		json.NewDecoder(r.Body).Decode(&cj)
		if f.createErr != nil {
			f.fail(w, f.createErr, "task 1 (\"b\"): the isolate server does not hold "+cj.Tasks[0].IsolateHash)
			return
		}
		f.created = append(f.created, cj)
		j := &fakeJob{polls: []model.Counts{{TotalTasks: len(cj.Tasks), TotalGroups: len(cj.Tasks)}}}
		f.jobs[cj.ID] = j
		f.reply(w, http.StatusCreated, f.job(cj.ID, j))
	})
	mux.HandleFunc("GET /api/v1/jobs", func(w http.ResponseWriter, r *http.Request) {
		var list protocol.JobList
		for id, j := range f.jobs {
			list.Jobs = append(list.Jobs, f.job(id, j))
		}
		f.reply(w, 200, list)
	})
	mux.HandleFunc("GET /api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		j, ok := f.jobs[r.PathValue("id")]
		if !ok {
			f.fail(w, model.ErrNotFound, "no job "+r.PathValue("id"))
			return
		}
		f.reply(w, 200, f.job(r.PathValue("id"), j))
		j.n++
	})
	mux.HandleFunc("GET /api/v1/jobs/{id}/tasks", func(w http.ResponseWriter, r *http.Request) {
		j, ok := f.jobs[r.PathValue("id")]
		if !ok {
			f.fail(w, model.ErrNotFound, "no job "+r.PathValue("id"))
			return
		}
		var out protocol.AttemptList
		for _, t := range j.tasks {
			if st := r.URL.Query().Get("status"); st == "" || st == "finished" || st == t.State {
				out.Tasks = append(out.Tasks, t)
			}
		}
		f.reply(w, 200, out)
	})
	mux.HandleFunc("POST /api/v1/jobs/{id}/cancel", func(w http.ResponseWriter, r *http.Request) {
		j, ok := f.jobs[r.PathValue("id")]
		if !ok {
			f.fail(w, model.ErrNotFound, "no job "+r.PathValue("id"))
			return
		}
		j.canceled = true
		f.reply(w, 200, f.job(r.PathValue("id"), j))
	})
	mux.HandleFunc("POST /api/v1/jobs/{id}/retry", func(w http.ResponseWriter, r *http.Request) {
		var req protocol.Retry
		json.NewDecoder(r.Body).Decode(&req)
		res := protocol.RetryResult{Retried: req.TaskIDs}
		if len(req.TaskIDs) == 0 {
			res.Retried = []string{"all.0", "all.1"}
		}
		f.reply(w, 200, res)
	})
	mux.HandleFunc("GET /files/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if f.busy[name] > 0 {
			f.busy[name]--
			http.Error(w, "SlowDown", http.StatusServiceUnavailable)
			return
		}
		body, ok := f.files[name]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write([]byte(body))
	})
	f.requests = append(f.requests, r.Method+" "+r.URL.RequestURI())
	mux.ServeHTTP(w, r)
}

// inMemory serves requests with the fake master without a network, so
// that synctest's clock can move while a command polls.
type inMemory struct{ h http.Handler }

func (t inMemory) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if r.Body != nil {
		r.Body.Close()
	}
	return rec.Result(), nil
}

// harness runs commands as the dist_test binary would, against a master,
// with a home folder of its own.
type harness struct {
	t              *testing.T
	env            *Env
	vars           map[string]string
	stdout, stderr bytes.Buffer
	home           string
	master         string
	tty            bool
	ctx            context.Context // nil: the test's
}

// newHarness points the commands at master; a nil client means a real
// network connection.
func newHarness(t *testing.T, master string, hc *http.Client) *harness {
	h := &harness{t: t, home: t.TempDir(), master: master}
	h.vars = map[string]string{
		"HOME":             h.home,
		"USER":             "alice",
		"DIST_TEST_MASTER": master,
	}
	cfg := ""
	h.env = &Env{
		Stdout:     &h.stdout,
		Stderr:     &h.stderr,
		Getenv:     func(k string) string { return h.vars[k] },
		ConfigPath: &cfg,
		IsTerminal: func(w io.Writer) bool { return h.tty && w == io.Writer(&h.stdout) },
		HTTPClient: hc,
	}
	return h
}

func (h *harness) lastJobPath() string { return filepath.Join(h.home, ".dist-test-last-job") }

// run runs one command line and returns its exit code.
func (h *harness) run(args ...string) int {
	h.t.Helper()
	h.stdout.Reset()
	h.stderr.Reset()
	root := &cobra.Command{Use: "dist_test", SilenceErrors: true}
	root.PersistentFlags().StringVar(h.env.ConfigPath, "config", "", "configuration file")
	root.AddCommand(Commands(h.env)...)
	root.SetArgs(args)
	root.SetOut(&h.stderr)
	root.SetErr(&h.stderr)
	ctx := h.ctx
	if ctx == nil {
		ctx = h.t.Context()
	}
	return Report(&h.stderr, root.ExecuteContext(ctx))
}

func counts(total, finished, failed, retried int) model.Counts {
	return model.Counts{TotalGroups: total, TotalTasks: total + retried, FinishedGroups: finished, FailedGroups: failed,
		SucceededGroups: finished - failed, RetriedTasks: retried}
}
