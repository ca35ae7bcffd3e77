package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// master is an httptest server playing the master: each test gives the
// handler of the calls it expects and can count requests per route.
type master struct {
	*httptest.Server
	mu    sync.Mutex
	calls map[string]int
}

func newMaster(t *testing.T, routes map[string]http.HandlerFunc) *master {
	t.Helper()
	m := &master{calls: make(map[string]int)}
	mux := http.NewServeMux()
	for pattern, h := range routes {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			m.mu.Lock()
			m.calls[pattern]++
			m.mu.Unlock()
			h(w, r)
		})
	}
	m.Server = httptest.NewServer(mux)
	t.Cleanup(m.Close)
	return m
}

func (m *master) count(pattern string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[pattern]
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, kind error, msg string) {
	status, code := protocol.StatusOf(kind)
	writeJSON(w, status, protocol.Error{Error: msg, Code: code})
}

// noKeepAlive is an HTTP client that leaves no idle connection behind,
// which lets virtual time advance in a synctest bubble between calls.
func noKeepAlive() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
}

func TestErrorsMapToKinds(t *testing.T) {
	kinds := []error{model.ErrInvalid, model.ErrNotFound, model.ErrExists, model.ErrConflict, model.ErrTooLarge, model.ErrUnavailable}
	for _, kind := range kinds {
		t.Run(kind.Error(), func(t *testing.T) {
			m := newMaster(t, map[string]http.HandlerFunc{
				"GET /api/v1/jobs/{id}": func(w http.ResponseWriter, r *http.Request) {
					writeError(w, kind, "job "+r.PathValue("id")+" says no")
				},
			})
			c := New(m.URL, WithRetry(1, 0, 0))
			_, err := c.GetJob(t.Context(), "j1")
			if !errors.Is(err, kind) {
				t.Fatalf("err = %v, want errors.Is %v", err, kind)
			}
			var e *protocol.StatusError
			if !errors.As(err, &e) {
				t.Fatalf("err %T is not a *protocol.StatusError", err)
			}
			wantStatus, wantCode := protocol.StatusOf(kind)
			if e.Status != wantStatus || e.Code != wantCode || e.Message != "job j1 says no" {
				t.Errorf("Error = %+v, want status %d code %s and the master's message", e, wantStatus, wantCode)
			}
		})
	}
}

func TestErrorFromAProxy(t *testing.T) {
	m := newMaster(t, map[string]http.HandlerFunc{
		"GET /api/v1/jobs": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "upstream is down\nmore detail", http.StatusBadGateway)
		},
	})
	_, err := New(m.URL, WithRetry(1, 0, 0)).ListJobs(t.Context(), 5)
	var e *protocol.StatusError
	if !errors.As(err, &e) || e.Status != http.StatusBadGateway || e.Code != "" {
		t.Fatalf("err = %#v, want a 502 *protocol.StatusError without code", err)
	}
	if !strings.Contains(e.Message, "502 Bad Gateway: upstream is down") || strings.Contains(e.Message, "more detail") {
		t.Errorf("message %q should quote the first line of the body", e.Message)
	}
	if errors.Unwrap(e) != nil {
		t.Errorf("an error without code has kind %v", errors.Unwrap(e))
	}
}

func TestRequestsAndAnswers(t *testing.T) {
	exit1 := 1
	var gotCreate protocol.CreateJob
	var gotRetry protocol.Retry
	var gotHeartbeat protocol.Heartbeat
	var gotFinish protocol.Finish
	var gotAbort protocol.Abort
	var gotUpload string
	var gotQuery []string
	m := newMaster(t, map[string]http.HandlerFunc{
		"POST /api/v1/jobs": func(w http.ResponseWriter, r *http.Request) {
			json.NewDecoder(r.Body).Decode(&gotCreate)
			writeJSON(w, http.StatusCreated, protocol.Job{ID: gotCreate.ID, Status: "running"})
		},
		"GET /api/v1/jobs": func(w http.ResponseWriter, r *http.Request) {
			gotQuery = append(gotQuery, r.URL.RawQuery)
			writeJSON(w, 200, protocol.JobList{Jobs: []protocol.Job{{ID: "b"}, {ID: "a"}}})
		},
		"GET /api/v1/jobs/{id}/tasks": func(w http.ResponseWriter, r *http.Request) {
			gotQuery = append(gotQuery, r.PathValue("id")+"?"+r.URL.RawQuery)
			writeJSON(w, 200, protocol.AttemptList{Tasks: []protocol.Attempt{{TaskID: "t.0", ExitCode: &exit1}}})
		},
		"POST /api/v1/jobs/{id}/cancel": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, protocol.Job{ID: r.PathValue("id"), Canceled: true})
		},
		"POST /api/v1/jobs/{id}/retry": func(w http.ResponseWriter, r *http.Request) {
			json.NewDecoder(r.Body).Decode(&gotRetry)
			writeJSON(w, 200, protocol.RetryResult{Retried: gotRetry.TaskIDs})
		},
		"POST /api/v1/slaves": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 201, protocol.Registered{SlaveID: "s1", HeartbeatIntervalMS: 5000})
		},
		"POST /api/v1/slaves/{id}/heartbeat": func(w http.ResponseWriter, r *http.Request) {
			json.NewDecoder(r.Body).Decode(&gotHeartbeat)
			writeJSON(w, 200, protocol.HeartbeatReply{Kill: []string{"l2"}})
		},
		"DELETE /api/v1/slaves/{id}": func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNoContent)
		},
		"POST /api/v1/attempts/start": func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, protocol.Started{Lease: "l1", Spec: protocol.Spec{TaskID: "t.0"}})
		},
		"PUT /api/v1/attempts/{lease}/outputs/{name}": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			gotUpload = fmt.Sprintf("%s %s %d %s", r.PathValue("lease"), r.PathValue("name"), r.ContentLength, b)
			w.WriteHeader(http.StatusNoContent)
		},
		"POST /api/v1/attempts/{lease}/finish": func(w http.ResponseWriter, r *http.Request) {
			json.NewDecoder(r.Body).Decode(&gotFinish)
			writeJSON(w, 200, protocol.Finished{State: "failed", Retried: true})
		},
		"POST /api/v1/attempts/{lease}/abort": func(w http.ResponseWriter, r *http.Request) {
			json.NewDecoder(r.Body).Decode(&gotAbort)
			gotAbort.Reason = r.PathValue("lease") + " " + gotAbort.Reason
			w.WriteHeader(http.StatusNoContent)
		},
	})
	ctx := t.Context()
	c := New(m.URL+"/", WithRetry(1, 0, 0))

	job, err := c.CreateJob(ctx, protocol.CreateJob{ID: "n.u.1.2", Tasks: []protocol.Task{{IsolateHash: "ab", Description: "d"}}})
	if err != nil || job.ID != "n.u.1.2" || gotCreate.Tasks[0].Description != "d" {
		t.Errorf("CreateJob = %+v, %v (sent %+v)", job, err, gotCreate)
	}
	jobs, err := c.ListJobs(ctx, 7)
	if err != nil || len(jobs) != 2 || jobs[0].ID != "b" {
		t.Errorf("ListJobs = %+v, %v", jobs, err)
	}
	tasks, err := c.Tasks(ctx, "a:b@c+d", "failed")
	if err != nil || len(tasks) != 1 || *tasks[0].ExitCode != 1 {
		t.Errorf("Tasks = %+v, %v", tasks, err)
	}
	if want := []string{"limit=7", "a:b@c+d?status=failed"}; fmt.Sprint(gotQuery) != fmt.Sprint(want) {
		t.Errorf("queries = %q, want %q", gotQuery, want)
	}
	if j, err := c.Cancel(ctx, "x/y"); err != nil || j.ID != "x/y" || !j.Canceled {
		t.Errorf("Cancel = %+v, %v: an id with a slash must reach the master whole", j, err)
	}
	if r, err := c.Retry(ctx, "x", protocol.Retry{TaskIDs: []string{"t.1"}}); err != nil || fmt.Sprint(r.Retried) != "[t.1]" {
		t.Errorf("Retry = %+v, %v", r, err)
	}
	if r, err := c.Register(ctx, protocol.Register{Hostname: "h", Slots: 2}); err != nil || r.SlaveID != "s1" {
		t.Errorf("Register = %+v, %v", r, err)
	}
	if r, err := c.Heartbeat(ctx, "s1", protocol.Heartbeat{Running: []string{"l1", "l2"}}); err != nil || fmt.Sprint(r.Kill) != "[l2]" || len(gotHeartbeat.Running) != 2 {
		t.Errorf("Heartbeat = %+v, %v", r, err)
	}
	if err := c.Deregister(ctx, "s1"); err != nil {
		t.Errorf("Deregister: %v", err)
	}
	if s, err := c.Start(ctx, protocol.Start{SlaveID: "s1"}); err != nil || s.Lease != "l1" {
		t.Errorf("Start = %+v, %v", s, err)
	}
	if err := c.Upload(ctx, "l1", protocol.OutputStdout, strings.NewReader("hello"), 5); err != nil || gotUpload != "l1 stdout 5 hello" {
		t.Errorf("Upload: %v; master got %q", err, gotUpload)
	}
	if err := c.Upload(ctx, "l1", protocol.OutputStderr, strings.NewReader(""), 0); err != nil || gotUpload != "l1 stderr 0 " {
		t.Errorf("empty Upload: %v; master got %q", err, gotUpload)
	}
	if f, err := c.Finish(ctx, "l1", protocol.Finish{ExitCode: 3, DurationMS: 10}); err != nil || !f.Retried || gotFinish.ExitCode != 3 {
		t.Errorf("Finish = %+v, %v (sent %+v)", f, err, gotFinish)
	}
	if err := c.Abort(ctx, "l1", "slave shutting down"); err != nil || gotAbort.Reason != "l1 slave shutting down" {
		t.Errorf("Abort: %v; master got %q", err, gotAbort.Reason)
	}
}

// flaky answers 503 to the first n requests, then calls h.
func flaky(n int, h http.HandlerFunc) http.HandlerFunc {
	var mu sync.Mutex
	return func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n--
		fail := n >= 0
		mu.Unlock()
		if fail {
			writeError(w, model.ErrUnavailable, "database restarting")
			return
		}
		h(w, r)
	}
}

func TestIdempotentCallsRetryOn503(t *testing.T) {
	m := newMaster(t, map[string]http.HandlerFunc{
		"GET /api/v1/jobs/{id}": flaky(3, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, protocol.Job{ID: r.PathValue("id"), Status: "finished"})
		}),
		"POST /api/v1/attempts/{lease}/finish": flaky(2, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, protocol.Finished{State: "passed"})
		}),
	})
	synctest.Test(t, func(t *testing.T) {
		var logs []string
		c := New(m.URL, WithHTTPClient(noKeepAlive()), WithLogf(func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }))
		start := time.Now()
		job, err := c.GetJob(t.Context(), "j")
		if err != nil || job.Status != "finished" {
			t.Fatalf("GetJob = %+v, %v", job, err)
		}
		if got := m.count("GET /api/v1/jobs/{id}"); got != 4 {
			t.Errorf("%d requests, want 4 (3 answered 503)", got)
		}
		if waited := time.Since(start); waited < 2*time.Second || waited > 5*time.Second {
			t.Errorf("waited %s in all; backoff of 0.5, 1 and 2 s (±20%%) expected", waited)
		}
		if len(logs) != 3 || !strings.Contains(logs[0], "database restarting; retrying in") || !strings.Contains(logs[0], "(2 of 10 tries)") {
			t.Errorf("retry log = %q", logs)
		}
		if f, err := c.Finish(t.Context(), "l", protocol.Finish{}); err != nil || f.State != "passed" {
			t.Errorf("Finish = %+v, %v", f, err)
		}
	})
}

func TestRetriesRunOut(t *testing.T) {
	m := newMaster(t, map[string]http.HandlerFunc{
		"POST /api/v1/jobs/{id}/cancel": flaky(100, nil),
	})
	synctest.Test(t, func(t *testing.T) {
		c := New(m.URL, WithHTTPClient(noKeepAlive()), WithRetry(4, time.Second, 2*time.Second))
		_, err := c.Cancel(t.Context(), "j")
		if !errors.Is(err, model.ErrUnavailable) || !strings.Contains(err.Error(), "gave up after 4 tries") {
			t.Errorf("err = %v", err)
		}
		if got := m.count("POST /api/v1/jobs/{id}/cancel"); got != 4 {
			t.Errorf("%d requests, want 4", got)
		}
	})
}

func TestCallsThatChangeStateAreNotRetried(t *testing.T) {
	m := newMaster(t, map[string]http.HandlerFunc{
		"POST /api/v1/slaves":           flaky(1, nil),
		"POST /api/v1/attempts/start":   flaky(1, nil),
		"POST /api/v1/jobs/{id}/retry":  flaky(1, nil),
		"PUT /api/v1/attempts/{l}/{o}/": flaky(1, nil),
	})
	c := New(m.URL)
	ctx := t.Context()
	_, err1 := c.Register(ctx, protocol.Register{})
	_, err2 := c.Start(ctx, protocol.Start{})
	_, err3 := c.Retry(ctx, "j", protocol.Retry{})
	// A plain reader cannot be sent twice.
	err4 := c.Upload(ctx, "l", "stdout", io.MultiReader(strings.NewReader("x")), 1)
	for i, err := range []error{err1, err2, err3, err4} {
		if !errors.Is(err, model.ErrUnavailable) {
			t.Errorf("call %d: err = %v, want the 503", i+1, err)
		}
	}
	for p := range m.calls {
		if got := m.count(p); got != 1 {
			t.Errorf("%s: %d requests, want 1", p, got)
		}
	}
}

func TestUploadOfASeekerIsRetriedFromTheStart(t *testing.T) {
	var bodies []string
	m := newMaster(t, map[string]http.HandlerFunc{
		"PUT /api/v1/attempts/{lease}/outputs/{name}": func(w http.ResponseWriter, r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			bodies = append(bodies, string(b))
			if len(bodies) == 1 {
				writeError(w, model.ErrUnavailable, "busy")
				return
			}
			w.WriteHeader(http.StatusNoContent)
		},
	})
	synctest.Test(t, func(t *testing.T) {
		c := New(m.URL, WithHTTPClient(noKeepAlive()))
		if err := c.Upload(t.Context(), "l", "artifacts", strings.NewReader("zipdata"), 7); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(bodies) != "[zipdata zipdata]" {
			t.Errorf("bodies = %q", bodies)
		}
	})
}

func TestConnectionErrorsAreRetried(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	synctest.Test(t, func(t *testing.T) {
		c := New(dead.URL, WithRetry(3, time.Second, time.Second))
		_, err := c.GetJob(t.Context(), "j")
		if err == nil || !strings.Contains(err.Error(), "gave up after 3 tries") || !strings.Contains(err.Error(), "connect") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestContextEndsTheBackoff(t *testing.T) {
	m := newMaster(t, map[string]http.HandlerFunc{"GET /api/v1/jobs/{id}": flaky(100, nil)})
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Second)
		defer cancel()
		c := New(m.URL, WithHTTPClient(noKeepAlive()), WithRetry(10, 10*time.Second, 10*time.Second))
		start := time.Now()
		_, err := c.GetJob(ctx, "j")
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "database restarting") {
			t.Errorf("err = %v, want the deadline and the last failure", err)
		}
		if d := time.Since(start); d != 3*time.Second {
			t.Errorf("returned after %s, want at the deadline (3s)", d)
		}
		if got := m.count("GET /api/v1/jobs/{id}"); got != 1 {
			t.Errorf("%d requests, want 1", got)
		}
	})
}

// handlerTransport serves requests in memory: a master whose handler can
// block durably, so that synctest's clock moves while a request hangs.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	if r.Body != nil {
		r.Body.Close() // as every RoundTripper must
	}
	if err := r.Context().Err(); err != nil {
		return nil, err
	}
	return rec.Result(), nil
}

func TestStalledRequestIsAbandonedAndRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var calls int
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			calls++
			if calls == 1 {
				<-r.Context().Done() // a master that never answers
				return
			}
			writeJSON(w, 200, protocol.HeartbeatReply{Reset: true})
		})
		c := New("http://master", WithHTTPClient(&http.Client{Transport: handlerTransport{hang}}), WithTimeout(20*time.Second))
		start := time.Now()
		r, err := c.Heartbeat(t.Context(), "s", protocol.Heartbeat{})
		if err != nil || !r.Reset {
			t.Fatalf("Heartbeat = %+v, %v", r, err)
		}
		if d := time.Since(start); d < 20*time.Second || d > 21*time.Second {
			t.Errorf("took %s; the first try should be abandoned after 20s, then retried after ~0.5s", d)
		}
	})
}

func TestStallMessage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
		c := New("http://master", WithHTTPClient(&http.Client{Transport: handlerTransport{hang}}), WithTimeout(5*time.Second), WithRetry(1, 0, 0))
		_, err := c.GetJob(t.Context(), "j")
		if err == nil || !strings.Contains(err.Error(), "no progress for 5s") {
			t.Errorf("err = %v, want it to say the master made no progress for 5s", err)
		}
	})
}

// A read-only call of a fail-fast client gives up at once when nothing
// listens at the master's address, naming it; a write still retries.
func TestFailFastOnRefusedConnection(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	synctest.Test(t, func(t *testing.T) {
		var logs []string
		logf := func(f string, a ...any) { logs = append(logs, fmt.Sprintf(f, a...)) }
		c := New(dead.URL, WithFailFast(), WithRetry(3, time.Second, time.Second), WithLogf(logf))
		_, err := c.GetJob(t.Context(), "j")
		if err == nil || !strings.Contains(err.Error(), "no master answers at "+dead.URL) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("read: err = %v", err)
		}
		if len(logs) != 0 {
			t.Errorf("read retried: %q", logs)
		}
		_, err = c.Cancel(t.Context(), "j")
		if err == nil || !strings.Contains(err.Error(), "gave up after 3 tries") || len(logs) != 2 {
			t.Errorf("write: err = %v after %d retries, want 3 tries", err, len(logs))
		}
	})
}

// WithRetryFor bounds the retries by time: 0.5 s, 1 s, 2 s, 4 s, 4 s ...
// fit 10 s until the next wait would pass it.
func TestRetryForBoundsByTime(t *testing.T) {
	m := newMaster(t, map[string]http.HandlerFunc{"GET /api/v1/jobs/{id}": flaky(1000, nil)})
	synctest.Test(t, func(t *testing.T) {
		c := New(m.URL, WithHTTPClient(noKeepAlive()), WithRetry(3, 500*time.Millisecond, 4*time.Second), WithRetryFor(10*time.Second))
		start := time.Now()
		_, err := c.GetJob(t.Context(), "j")
		spent := time.Since(start)
		if !errors.Is(err, model.ErrUnavailable) || !strings.Contains(err.Error(), "gave up after") {
			t.Errorf("err = %v", err)
		}
		if n := m.count("GET /api/v1/jobs/{id}"); n <= 3 {
			t.Errorf("%d tries: --retry-for must allow more than the count", n)
		}
		if spent > 10*time.Second {
			t.Errorf("retried for %s, beyond 10 s", spent)
		}
	})
}
