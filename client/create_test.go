package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// jobMaster stores jobs like the master does; with dropFirst it creates the
// first job it is sent but cuts the connection instead of answering, as a
// master restarting or a network failing at that moment would.
type jobMaster struct {
	mu        sync.Mutex
	jobs      map[string]protocol.Job
	dropFirst bool
}

func (j *jobMaster) routes() map[string]http.HandlerFunc {
	return map[string]http.HandlerFunc{
		"POST /api/v1/jobs": func(w http.ResponseWriter, r *http.Request) {
			var cj protocol.CreateJob
			json.NewDecoder(r.Body).Decode(&cj)
			j.mu.Lock()
			_, exists := j.jobs[cj.ID]
			if !exists {
				j.jobs[cj.ID] = protocol.Job{ID: cj.ID, Status: "running", Counts: model.Counts{TotalGroups: len(cj.Tasks)}}
			}
			drop := j.dropFirst
			j.dropFirst = false
			j.mu.Unlock()
			if drop {
				conn, _, _ := http.NewResponseController(w).Hijack()
				conn.Close()
				return
			}
			if exists {
				writeError(w, model.ErrExists, "job "+cj.ID+" already exists")
				return
			}
			writeJSON(w, http.StatusCreated, j.jobs[cj.ID])
		},
		"GET /api/v1/jobs/{id}": func(w http.ResponseWriter, r *http.Request) {
			j.mu.Lock()
			job, ok := j.jobs[r.PathValue("id")]
			j.mu.Unlock()
			if !ok {
				writeError(w, model.ErrNotFound, "no such job")
				return
			}
			writeJSON(w, 200, job)
		},
	}
}

var twoTasks = []protocol.Task{{IsolateHash: "a", Description: "x"}, {IsolateHash: "b", Description: "y"}}

func TestCreateJobRetryTreatsExistsAsSuccess(t *testing.T) {
	jm := &jobMaster{jobs: map[string]protocol.Job{}, dropFirst: true}
	m := newMaster(t, jm.routes())
	synctest.Test(t, func(t *testing.T) {
		c := New(m.URL, WithHTTPClient(noKeepAlive()))
		job, err := c.CreateJob(t.Context(), protocol.CreateJob{ID: "u.1.2", Tasks: twoTasks})
		if err != nil {
			t.Fatalf("CreateJob: %v", err)
		}
		if job.ID != "u.1.2" || job.TotalGroups != 2 {
			t.Errorf("job = %+v, want the job read back", job)
		}
		if got := m.count("POST /api/v1/jobs"); got != 2 {
			t.Errorf("%d POSTs, want 2", got)
		}
		if len(jm.jobs) != 1 {
			t.Errorf("%d jobs stored, want 1", len(jm.jobs))
		}
	})
}

func TestCreateJobExistsOnFirstTryIsAnError(t *testing.T) {
	jm := &jobMaster{jobs: map[string]protocol.Job{"u.1.2": {ID: "u.1.2", Counts: model.Counts{TotalGroups: 2}}}}
	m := newMaster(t, jm.routes())
	_, err := New(m.URL).CreateJob(t.Context(), protocol.CreateJob{ID: "u.1.2", Tasks: twoTasks})
	if !errors.Is(err, model.ErrExists) {
		t.Errorf("err = %v, want ErrExists: this call did not create the job", err)
	}
	if got := m.count("GET /api/v1/jobs/{id}"); got != 0 {
		t.Errorf("read the job back %d times, want 0", got)
	}
}

func TestCreateJobRetryFindsAnotherJob(t *testing.T) {
	jm := &jobMaster{jobs: map[string]protocol.Job{}, dropFirst: true}
	m := newMaster(t, jm.routes())
	synctest.Test(t, func(t *testing.T) {
		c := New(m.URL, WithHTTPClient(noKeepAlive()), WithRetry(2, 0, 0))
		// The dropped first try stored one task; this call has two, so
		// the job under that id is not the one it sent.
		jm.jobs["u.1.2"] = protocol.Job{ID: "u.1.2", Counts: model.Counts{TotalGroups: 1}}
		_, err := c.CreateJob(t.Context(), protocol.CreateJob{ID: "u.1.2", Tasks: twoTasks})
		if !errors.Is(err, model.ErrExists) {
			t.Errorf("err = %v, want ErrExists", err)
		}
	})
}

func TestCreateJobWithoutIDIsNotRetried(t *testing.T) {
	m := newMaster(t, map[string]http.HandlerFunc{"POST /api/v1/jobs": flaky(1, nil)})
	_, err := New(m.URL).CreateJob(t.Context(), protocol.CreateJob{Tasks: twoTasks})
	if !errors.Is(err, model.ErrUnavailable) || m.count("POST /api/v1/jobs") != 1 {
		t.Errorf("err = %v after %d POSTs, want the 503 after 1", err, m.count("POST /api/v1/jobs"))
	}
}
