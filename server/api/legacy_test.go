package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/protocol"
)

// The legacy endpoints answer as the original master did, so that existing
// scripts keep working.
func TestLegacyEndpoints(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	code, body := h.form("/submit_job", url.Values{"job_id": {"legacy.1"}, "job_json": {h.jobJSON(2, `, "max_retries": 0`)}})
	if code != 200 || strings.TrimSpace(body) != `{"status":"SUCCESS"}` {
		t.Fatalf("submit_job: %d %s", code, body)
	}

	// One task fails with a log that needs escaping; the other passes.
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := h.q.NewConsumer(ctx)
	defer c.Close()
	for i, exit := range []int{1, 0} {
		res, e := h.reserve(c)
		st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
		if err != nil {
			t.Fatal(err)
		}
		var outputs []string
		if exit != 0 {
			log := "<b>boom</b> & more\n"
			if err := h.slave.Upload(ctx, st.Lease, "stderr", strings.NewReader(log), int64(len(log))); err != nil {
				t.Fatal(err)
			}
			outputs = []string{"stderr"}
		}
		if _, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{ExitCode: exit, Outputs: outputs}); err != nil {
			t.Fatalf("finish %d: %v", i, err)
		}
		_ = c.Delete(ctx, res.ID)
	}

	code, body, hdr := h.do("GET", "/job_status?job_id=legacy.1", "", "")
	if code != 200 || hdr.Get("Cache-Control") != "no-cache, no-store" {
		t.Fatalf("job_status: %d, Cache-Control %q", code, hdr.Get("Cache-Control"))
	}
	var status map[string]any
	if err := json.Unmarshal([]byte(body), &status); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"total_tasks": 2.0, "finished_tasks": 2.0, "running_tasks": 0.0, "retried_tasks": 0.0,
		"timedout_tasks": 0.0, "failed_tasks": 1.0, "succeeded_tasks": 1.0, "total_groups": 2.0, "finished_groups": 2.0,
		"failed_groups": 1.0, "succeeded_groups": 1.0, "flaky_groups": 0.0, "flaky_tasks": 0.0, "status": "finished",
		"canceled_tasks": 0.0, "canceled_groups": 0.0}
	if !reflect.DeepEqual(status, want) {
		t.Errorf("job_status =\n%v\nwant\n%v", status, want)
	}

	var failed []map[string]any
	code, body, _ = h.do("GET", "/failed_tasks?job_id=legacy.1", "", "")
	if err := json.Unmarshal([]byte(body), &failed); code != 200 || err != nil || len(failed) != 1 {
		t.Fatalf("failed_tasks: %d %s", code, body)
	}
	keys := make([]string, 0, len(failed[0]))
	for k := range failed[0] {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "attempt,description,stderr_link,task_id" || failed[0]["description"] != "ta" {
		t.Errorf("failed_tasks record = %v", failed[0])
	}
	// The link is fetchable with a plain GET.
	resp, err := http.Get(failed[0]["stderr_link"].(string))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(raw) != "<b>boom</b> & more\n" {
		t.Errorf("stderr link: %d %q", resp.StatusCode, raw)
	}
	for status, n := range map[string]int{"": 2, "finished": 2, "succeeded": 1, "failed": 1} {
		var list []map[string]any
		_, body, _ := h.do("GET", "/tasks?job_id=legacy.1&status="+status, "", "")
		if json.Unmarshal([]byte(body), &list) != nil || len(list) != n {
			t.Errorf("tasks?status=%s: %s; want %d records", status, body, n)
		}
	}
	// Unknown statuses and jobs are answered as the original did, with HTTP
	// 200: its client retries any HTTP error for 50 s and then dies.
	if code, body, _ := h.do("GET", "/tasks?job_id=legacy.1&status=bogus", "", ""); code != 200 || body != `{"error":"Unknown status type bogus"}`+"\n" {
		t.Errorf("tasks with an unknown status: %d %q", code, body)
	}
	for _, path := range []string{"/tasks?job_id=nope", "/failed_tasks?job_id=nope", "/tasks?job_id=nope&status=failed"} {
		if code, body, _ := h.do("GET", path, "", ""); code != 200 || body != "[]\n" {
			t.Errorf("%s: %d %q; want 200 []", path, code, body)
		}
	}
	if code, body := h.form("/cancel_job", url.Values{"job_id": {"nope"}}); code != 200 || !strings.Contains(body, `"SUCCESS"`) {
		t.Errorf("cancel_job of an unknown job: %d %s", code, body)
	}
	if code, body, _ := h.do("GET", "/cancel_job?job_id=nope", "", ""); code != 200 || !strings.Contains(body, `"SUCCESS"`) {
		t.Errorf("GET cancel_job of an unknown job: %d %s", code, body)
	}

	q := url.Values{"job_id": {"legacy.1"}, "task_id": {failed[0]["task_id"].(string)}, "attempt": {"0"}, "log": {"stderr"}}
	code, body, _ = h.do("GET", "/view_log?"+q.Encode(), "", "")
	if code != 200 || body != "<pre>&lt;b&gt;boom&lt;/b&gt; &amp; more\n</pre>" {
		t.Errorf("view_log: %d %q", code, body)
	}

	code, body, _ = h.do("GET", "/job_status?job_id=nope", "", "")
	if code != 200 || body != `{"error":"Did not fetch any tasks for specified job_id nope"}`+"\n" {
		t.Errorf("job_status of an unknown job: %d %q", code, body)
	}
	// The JSON API keeps its 404.
	if code, _, _ := h.do("GET", "/api/v1/jobs/nope", "", ""); code != 404 {
		t.Errorf("/api/v1 of an unknown job: %d, want 404", code)
	}
	// retry_task of an attempt that has no retry left is a harmless no-op.
	code, body = h.form("/retry_task", url.Values{"task_json": {`{"job_id": "legacy.1", "task_id": "` + failed[0]["task_id"].(string) + `", "attempt": 0}`}})
	if code != 200 || !strings.Contains(body, "SUCCESS") || h.count("attempts") != 2 {
		t.Errorf("retry_task: %d %s, %d attempts", code, body, h.count("attempts"))
	}
	// Pages render and name the job.
	for _, p := range []string{"/", "/job?job_id=legacy.1", "/trace?job_id=legacy.1"} {
		code, body, _ := h.do("GET", p, "", "")
		if code != 200 || !strings.Contains(body, "legacy.1") {
			t.Errorf("%s: %d, page does not name the job", p, code)
		}
	}
}

// Cancel ends a job at once: queued and running attempts are canceled, the
// job is finished, and the slave running one is told to kill it.
func TestCancel(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if code, body := h.form("/submit_job", url.Values{"job_id": {"c1"}, "job_json": {h.jobJSON(3, `, "max_retries": 5`)}}); code != 200 {
		t.Fatal(code, body)
	}
	reg, _ := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 1})
	c, _ := h.q.NewConsumer(ctx)
	defer c.Close()
	res, e := h.reserve(c)
	st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	code, body := h.form("/cancel_job", url.Values{"job_id": {"c1"}})
	if code != 200 || !strings.Contains(body, "SUCCESS") {
		t.Fatalf("cancel_job: %d %s", code, body)
	}
	job, err := h.api.GetJob(ctx, "c1")
	if err != nil || job.Status != "finished" || !job.Canceled || job.CanceledTasks != 3 || job.FailedGroups != 3 {
		t.Errorf("canceled job = %+v, %v", job, err)
	}
	hb, err := h.slave.Heartbeat(ctx, reg.SlaveID, protocol.Heartbeat{Running: []string{st.Lease}})
	if err != nil || len(hb.Kill) != 1 || hb.Kill[0] != st.Lease {
		t.Errorf("heartbeat after cancel = %+v, %v; want the run killed", hb, err)
	}
	// The queue no longer holds the canceled job's waiting entries.
	stats, _ := h.q.Stats(ctx)
	if stats.Ready != 0 {
		t.Errorf("%d entries still ready after cancel", stats.Ready)
	}
}

// A job naming inputs the isolate server lacks is accepted by the legacy
// /submit_job (the original client hides error answers and retries them
// for 50 s), and those tasks fail at once, unrun and without retries, with
// the reason as their stderr, which /failed_tasks links and /view_log
// shows. The other tasks run.
func TestLegacyMissingInputs(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		absent := strings.Repeat("0f", 20)
		doc := `{"tasks": [{"isolate_hash": "` + absent + `", "description": "gone-a", "max_retries": 3},
			{"isolate_hash": "` + h.digest + `", "description": "here"},
			{"isolate_hash": "` + strings.ToUpper(absent) + `", "description": "gone-b"}]}`
		code, body := h.form("/submit_job", url.Values{"job_id": {"miss.1"}, "job_json": {doc}})
		if code != 200 || strings.TrimSpace(body) != `{"status":"SUCCESS"}` {
			t.Fatalf("submit_job: %d %s", code, body)
		}
		note := "inputs " + absent + " are not on the isolate server " + h.url + ": archive them first\n"

		job, err := h.api.GetJob(ctx, "miss.1")
		if err != nil || job.TotalTasks != 3 || job.FinishedTasks != 2 || job.FailedTasks != 2 || job.FailedGroups != 2 ||
			job.RetriedTasks != 0 || job.Status != "running" {
			t.Fatalf("job = %+v, %v", job, err)
		}
		var failed []map[string]any
		code, body, _ = h.do("GET", "/failed_tasks?job_id=miss.1", "", "")
		if err := json.Unmarshal([]byte(body), &failed); code != 200 || err != nil || len(failed) != 2 {
			t.Fatalf("failed_tasks: %d %s", code, body)
		}
		for _, f := range failed {
			link, _ := f["stderr_link"].(string)
			resp, err := http.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(raw) != note || f["stdout_link"] != nil {
				t.Errorf("%v: stderr %d %q; want %q and no stdout", f, resp.StatusCode, raw, note)
			}
			q := url.Values{"job_id": {"miss.1"}, "task_id": {f["task_id"].(string)}, "attempt": {"0"}, "log": {"stderr"}}
			if code, body, _ := h.do("GET", "/view_log?"+q.Encode(), "", ""); code != 200 || body != "<pre>"+note+"</pre>" {
				t.Errorf("view_log: %d %q", code, body)
			}
			// Asking for a retry, as the original client did after each
			// failure, queues nothing: none is left.
			code, body := h.form("/retry_task", url.Values{"task_json": {`{"job_id": "miss.1", "task_id": "` + f["task_id"].(string) + `", "attempt": 0}`}})
			if code != 200 || !strings.Contains(body, "SUCCESS") {
				t.Errorf("retry_task: %d %s", code, body)
			}
		}
		var list protocol.AttemptList
		if code, body, _ := h.do("GET", "/api/v1/jobs/miss.1/tasks?status=failed", "", ""); code != 200 || json.Unmarshal([]byte(body), &list) != nil {
			t.Fatalf("API tasks: %d %s", code, body)
		}
		for _, a := range list.Tasks {
			if a.Error != strings.TrimSpace(note) || a.ExitCode != nil || a.Slave != "" {
				t.Errorf("refused attempt %+v; want its error, no exit code, no slave", a)
			}
		}

		for _, p := range []string{"/job?job_id=miss.1", "/trace?job_id=miss.1"} {
			if code, body, _ := h.do("GET", p, "", ""); code != 200 || !strings.Contains(body, "miss.1") {
				t.Errorf("%s: %d with the refused tasks", p, code)
			}
		}

		// Only the task whose inputs are there reaches the queue; it passes
		// and the job ends with the two failures.
		st, _ := h.startNext()
		if _, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{ExitCode: 0}); err != nil {
			t.Fatal(err)
		}
		if stats, _ := h.q.Stats(ctx); stats.Ready != 0 || stats.Delayed != 0 {
			t.Errorf("queue after the one runnable task: %+v", stats)
		}
		job, err = h.api.GetJob(ctx, "miss.1")
		if err != nil || job.Status != "finished" || job.TotalTasks != 3 || job.FailedGroups != 2 || job.SucceededGroups != 1 {
			t.Errorf("finished job = %+v, %v", job, err)
		}

		// A submission that is refused all the same (its id is taken)
		// leaves none of its logs behind.
		before := h.outputs("miss.1")
		code, body = h.form("/submit_job", url.Values{"job_id": {"miss.1"}, "job_json": {doc}})
		if code != 409 || h.outputs("miss.1") != before || before != 1 {
			t.Errorf("resubmitted id: %d %s; outputs %d → %d, want 1 kept", code, body, before, h.outputs("miss.1"))
		}
		// The JSON API still refuses such a job outright.
		req := `{"id": "miss.2", "tasks": [{"isolate_hash": "` + absent + `", "description": "x"}]}`
		if code, body, _ := h.do("POST", "/api/v1/jobs", "application/json", req); code != 400 || !strings.Contains(body, "not on the isolate server") {
			t.Errorf("API submit: %d %s; want 400", code, body)
		}
	})
}

// outputs counts the blobs stored under a job's outputs.
func (h *harness) outputs(jobID string) int {
	h.t.Helper()
	n := 0
	if err := h.blobs.List(context.Background(), "outputs/"+jobID+"/", func(string, blob.Info) error { n++; return nil }); err != nil {
		h.t.Fatal(err)
	}
	return n
}
