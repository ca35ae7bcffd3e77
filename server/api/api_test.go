package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// Every bad submission is refused with a 4xx that says what is wrong, and
// writes nothing.
func TestBadSubmissionsChangeNothing(t *testing.T) {
	h := newHarness(t)
	good := h.jobJSON(2, "")
	if code, body := h.form("/submit_job", url.Values{"job_id": {"taken"}, "job_json": {good}}); code != 200 {
		t.Fatalf("first submission: %d %s", code, body)
	}
	jobs, tasks, attempts := h.count("jobs"), h.count("tasks"), h.count("attempts")
	unknown := strings.Repeat("ab", 20)
	cases := []struct {
		name, id, doc string
		status        int
		says          string
	}{
		{"malformed JSON", "j1", `{"tasks": [`, 400, "malformed JSON"},
		{"not an object", "j2", `[1, 2]`, 400, "expected a JSON object"},
		{"no tasks key", "j3", `{"jobs": []}`, 400, `missing "tasks"`},
		{"empty job", "j4", `{"tasks": []}`, 400, "no tasks"},
		{"task without isolate_hash", "j5", `{"tasks": [{"description": "x"}]}`, 400, `task 0 ("x"): missing "isolate_hash"`},
		{"task without description", "j6", `{"tasks": [{"isolate_hash": "` + h.digest + `"}]}`, 400, `missing "description"`},
		{"hash that is not hex", "j7", `{"tasks": [{"isolate_hash": "xyz", "description": "x"}]}`, 400, "hex SHA-1"},
		{"unknown hash", "j8", `{"tasks": [{"isolate_hash": "` + unknown + `", "description": "x"}]}`, 400, "not on the isolate server"},
		{"hash one digit short", "j8s", `{"tasks": [{"isolate_hash": "` + unknown[1:] + `", "description": "x"}]}`, 400, "hex SHA-1"},
		{"hash that is a path", "j8p", `{"tasks": [{"isolate_hash": "../../` + unknown[6:] + `", "description": "x"}]}`, 400, "hex SHA-1"},
		{"hash with a slash", "j8q", `{"tasks": [{"isolate_hash": "` + unknown[:20] + `/` + unknown[21:] + `", "description": "x"}]}`, 400, "hex SHA-1"},
		{"non-numeric timeout", "j9", h.jobJSON(1, `, "timeout": "abc"`), 400, `"timeout" must be a number of seconds`},
		{"negative timeout", "j10", h.jobJSON(1, `, "timeout": -5`), 400, `"timeout" must be a number`},
		{"fractional retries", "j11", h.jobJSON(1, `, "max_retries": 1.5`), 400, `"max_retries" must be a whole number`},
		{"glob out of the sandbox", "j12", h.jobJSON(1, `, "artifact_archive_globs": ["../x"]`), 400, `leads out of the task's folder`},
		{"duplicate job id", "taken", good, 409, "already exists"},
		{"bad job id", "has space", good, 400, "job id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Well-formed hashes of inputs the isolate server lacks are
			// accepted there, their tasks failed (TestLegacyMissingInputs).
			if c.id != "j8" {
				code, body := h.form("/submit_job", url.Values{"job_id": {c.id}, "job_json": {c.doc}})
				if code != c.status || !strings.Contains(message(body), c.says) {
					t.Errorf("legacy submit: %d %s; want %d saying %q", code, body, c.status, c.says)
				}
			}
			// The JSON API refuses the same input the same way.
			var doc map[string]json.RawMessage
			if json.Unmarshal([]byte(c.doc), &doc) == nil && doc["tasks"] != nil {
				req, _ := json.Marshal(map[string]any{"id": c.id, "tasks": doc["tasks"]})
				code, body, _ := h.do("POST", "/api/v1/jobs", "application/json", string(req))
				if code != c.status || !strings.Contains(message(body), c.says) {
					t.Errorf("API submit: %d %s; want %d saying %q", code, body, c.status, c.says)
				}
			}
		})
	}
	if h.count("jobs") != jobs || h.count("tasks") != tasks || h.count("attempts") != attempts {
		t.Errorf("rows changed: jobs %d→%d, tasks %d→%d, attempts %d→%d", jobs, h.count("jobs"),
			tasks, h.count("tasks"), attempts, h.count("attempts"))
	}
}

// message is the "error" of a JSON error body.
func message(body string) string {
	var e struct{ Error string }
	if json.Unmarshal([]byte(body), &e) != nil {
		return body
	}
	return e.Error
}

// A finish with anything but the current lease is refused with 409 and
// changes no row.
func TestStaleFinishIsRefused(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.api.CreateJob(ctx, protocol.CreateJob{ID: "stale", Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t", MaxRetries: 1}}}); err != nil {
		t.Fatal(err)
	}
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := h.q.NewConsumer(ctx)
	defer c.Close()
	res, e := h.reserve(c)
	started, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	snapshot := h.dump()
	for _, lease := range []string{"0123456789abcdef0123456789abcdef", strings.ToUpper(started.Lease), e.Token} {
		_, err := h.slave.Finish(ctx, lease, protocol.Finish{ExitCode: 0})
		var ce interface{ Unwrap() error }
		if !errors.Is(err, model.ErrConflict) || !errors.As(err, &ce) {
			t.Errorf("finish with lease %q: %v; want 409 conflict", lease, err)
		}
		code, _, _ := h.doWith(asSlave, "POST", "/api/v1/attempts/"+lease+"/finish", "application/json", `{"exit_code": 0}`)
		if code != http.StatusConflict {
			t.Errorf("finish with lease %q answered %d, want 409", lease, code)
		}
	}
	// A start with a forged token is refused the same way.
	forged := e
	forged.Token = strings.Repeat("0", 32)
	if _, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: forged}); !errors.Is(err, model.ErrConflict) {
		t.Errorf("start with a forged token: %v; want conflict", err)
	}
	if after := h.dump(); after != snapshot {
		t.Errorf("rows changed by refused requests:\nbefore %s\nafter  %s", snapshot, after)
	}
	// The current lease is accepted, once; sent again it is acknowledged
	// without counting twice.
	for range 2 {
		out, err := h.slave.Finish(ctx, started.Lease, protocol.Finish{ExitCode: 1, DurationMS: 5})
		if err != nil || out.State != "failed" || !out.Retried {
			t.Fatalf("finish with the current lease = %+v, %v", out, err)
		}
	}
	job, err := h.api.GetJob(ctx, "stale")
	if err != nil || job.TotalTasks != 2 || job.FailedTasks != 1 || job.FinishedTasks != 1 {
		t.Errorf("job after the finish: %+v, %v", job, err)
	}
}

// dump renders every attempt row, to compare before and after.
func (h *harness) dump() string {
	h.t.Helper()
	rows, err := h.st.DB().Query(`SELECT id, state, token, COALESCE(lease, ''), finished_at, COALESCE(exit_code, -999), runs FROM attempts ORDER BY id`)
	if err != nil {
		h.t.Fatal(err)
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id, fin, exit, runs int64
		var state, token, lease string
		if err := rows.Scan(&id, &state, &token, &lease, &fin, &exit, &runs); err != nil {
			h.t.Fatal(err)
		}
		b.WriteString(strings.Join([]string{state, token, lease}, "/"))
		b.WriteString(";")
	}
	var counters string
	_ = h.st.DB().QueryRow(`SELECT total_tasks || '/' || finished_tasks || '/' || failed_tasks FROM jobs`).Scan(&counters)
	return b.String() + " jobs:" + counters
}

// A misspelt field is refused by /api/v1 with the field it most likely
// means, and ignored by the legacy /submit_job, as the original did.
func TestUnknownFieldsRefusedByTheAPIOnly(t *testing.T) {
	h := newHarness(t)
	typo := h.jobJSON(1, `, "timout": 30, "max_retires": 2`)
	if code, body := h.form("/submit_job", url.Values{"job_id": {"legacy"}, "job_json": {typo}}); code != 200 {
		t.Errorf("legacy submit with unknown fields: %d %s, want 200", code, body)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal([]byte(typo), &doc); err != nil {
		t.Fatal(err)
	}
	jobs := h.count("jobs")
	tasks := `[{"isolate_hash": "` + h.digest + `", "description": "d"}]`
	for _, c := range []struct{ name, body, says string }{
		{"task field", `{"id": "a1", "tasks": ` + string(doc["tasks"]) + `}`, `task 0: unknown field "max_retires" (did you mean "max_retries"?)`},
		{"job field", `{"id": "a2", "nmae": "x", "tasks": ` + tasks + `}`, `unknown field "nmae"`},
		{"data after the object", `{"id": "a3", "tasks": ` + tasks + `}}`, "data after the top-level value"},
		{"hostile field name", `{"id": "a4", "tasks": [{"isolate_hash": "` + h.digest + `", "description": "d", "\u001b[2J` + strings.Repeat("x", 5000) + `": 1}]}`, `unknown field "\x1b[2J`},
	} {
		code, body, _ := h.do("POST", "/api/v1/jobs", "application/json", c.body)
		if code != 400 || !strings.Contains(message(body), c.says) {
			t.Errorf("%s: %d %s; want 400 saying %q", c.name, code, body, c.says)
		}
		if len(body) > 2000 {
			t.Errorf("%s: an answer of %d bytes; the field name must be clipped", c.name, len(body))
		}
	}
	if h.count("jobs") != jobs {
		t.Errorf("a refused submission wrote a job")
	}
}

// What a run used, as its slave reports it, is shown on its attempt; a
// figure that cannot be true (negative, beyond any run) is dropped as
// unknown rather than recorded.
func TestAttemptUsage(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tasks := make([]protocol.Task, 4)
	for i := range tasks {
		tasks[i] = protocol.Task{IsolateHash: h.digest, Description: "t" + strconv.Itoa(i)}
	}
	if _, err := h.api.CreateJob(ctx, protocol.CreateJob{ID: "usage", Tasks: tasks}); err != nil {
		t.Fatal(err)
	}
	reports := map[string]protocol.Finish{
		"true":      {CPUMS: 1500, PeakMemoryBytes: 64 << 20},
		"negative":  {CPUMS: -1, PeakMemoryBytes: -5},
		"huge":      {CPUMS: math.MaxInt64, PeakMemoryBytes: math.MaxInt64},
		"not given": {},
	}
	want := map[string][2]any{
		"true": {1.5, int64(64 << 20)}, "negative": {0.0, int64(0)}, "huge": {0.0, int64(0)}, "not given": {0.0, int64(0)},
	}
	byTask := map[string]string{}
	for name, f := range reports {
		st, _ := h.startNext()
		if _, err := h.slave.Finish(ctx, st.Lease, f); err != nil {
			t.Fatalf("finish %s: %v", name, err)
		}
		byTask[st.Spec.TaskID] = name
	}
	got, err := h.api.Tasks(ctx, "usage", "")
	if err != nil || len(got) != len(tasks) {
		t.Fatalf("tasks: %d, %v", len(got), err)
	}
	for _, a := range got {
		name := byTask[a.TaskID]
		if w := want[name]; a.CPUSeconds != w[0] || a.PeakMemoryBytes != w[1] {
			t.Errorf("%s: cpu_s %v, peak_memory_bytes %d; want %v, %v", name, a.CPUSeconds, a.PeakMemoryBytes, w[0], w[1])
		}
	}
	// Unknown figures are left out of the JSON.
	_, body, _ := h.do("GET", "/api/v1/jobs/usage/tasks", "", "")
	if n := strings.Count(body, `"cpu_s"`); n != 1 {
		t.Errorf("cpu_s appears %d times in %s; want once, for the run that reported it", n, body)
	}
}
