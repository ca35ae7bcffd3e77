package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/server"
)

// A job with max_failures stops at its cap: once that many tasks failed
// for good, nothing more of it starts, its running attempts are killed and
// the rest is canceled; the counters still equal a recount.
func TestFailureCap(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		var doc map[string]json.RawMessage
		if err := json.Unmarshal([]byte(h.jobJSON(6, "")), &doc); err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]any{"id": "capped", "tasks": doc["tasks"], "max_failures": 2})
		code, resp, _ := h.do("POST", "/api/v1/jobs", "application/json", string(body))
		if code != 201 || !strings.Contains(resp, `"max_failures": 2`) {
			t.Fatalf("submit: %d %s", code, resp)
		}
		first, _ := h.startNext()
		second, _ := h.startNext()
		third, _ := h.startNext()
		h.failWithLog(first, "one")
		if job, _ := h.api.GetJob(ctx, "capped"); job.Canceled || job.Status != "running" {
			t.Fatalf("after one failure of a cap of 2: %+v", job)
		}
		h.failWithLog(second, "two")
		job, err := h.api.GetJob(ctx, "capped")
		if err != nil || job.Status != "finished" || !job.Canceled || job.FailedGroups != 6 || job.CanceledGroups != 4 ||
			job.SucceededGroups != 0 || job.MaxFailures != 2 {
			t.Fatalf("job at its cap = %+v, %v; want finished, 2 failed and 4 canceled", job, err)
		}
		// The third run was canceled: its finish is refused, and nothing of
		// the job is left to start.
		if _, err := h.slave.Finish(ctx, third.Lease, protocol.Finish{ExitCode: 0}); !errors.Is(err, model.ErrConflict) {
			t.Errorf("finish of a run canceled by the cap: %v, want a conflict", err)
		}
		if n, err := h.m.FeedOnce(ctx); n != 0 || err != nil {
			t.Errorf("feed after the cap put %d, %v", n, err)
		}
		all, err := h.st.PageAttempts(ctx, "capped", store.AttemptPage{})
		if err != nil {
			t.Fatal(err)
		}
		if got := model.Recount(all); got != job.Counts {
			t.Errorf("counters %+v != recount %+v", job.Counts, got)
		}
		evs, err := h.m.Events(ctx, store.EventFilter{JobID: "capped"})
		if err != nil {
			t.Fatal(err)
		}
		var capped bool
		for _, e := range evs {
			capped = capped || e.Kind == model.EventJobFailureCap && strings.Contains(e.Detail, "max_failures is 2")
		}
		if !capped {
			t.Errorf("no %s event among %+v", model.EventJobFailureCap, evs)
		}
	})
}

// Without a cap of its own a job takes the master's ([master]
// max_failures); a job's 0 turns the master's off; the legacy job_json
// takes the field too.
func TestFailureCapDefaults(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{config: server.Config{MaxFailures: 1}})
	ctx := context.Background()
	for _, c := range []struct {
		id, extra string
		want      int
	}{{"dflt", "", 1}, {"off", `, "max_failures": 0`, 0}, {"own", `, "max_failures": 7`, 7}, {"null", `, "max_failures": null`, 1}} {
		doc := strings.TrimSuffix(h.jobJSON(2, ""), "}") + c.extra + "}"
		if code, body := h.form("/submit_job", url.Values{"job_id": {c.id}, "job_json": {doc}}); code != 200 {
			t.Fatalf("%s: %d %s", c.id, code, body)
		}
		if job, err := h.api.GetJob(ctx, c.id); err != nil || job.MaxFailures != c.want {
			t.Errorf("legacy job %s: max_failures %d, %v; want %d", c.id, job.MaxFailures, err, c.want)
		}
	}
	first, e := h.startNext()
	if e.JobID != "dflt" {
		t.Fatalf("the oldest job's task did not start first: %+v", e)
	}
	h.failWithLog(first, "x")
	if job, _ := h.api.GetJob(ctx, "dflt"); !job.Canceled || job.Status != "finished" || job.CanceledGroups != 1 {
		t.Errorf("job under the master's cap of 1 after one failure: %+v", job)
	}
}

// A bad max_failures or hedge is refused with 400 by both submit
// endpoints, and writes nothing.
func TestBadJobOptions(t *testing.T) {
	h := newHarness(t)
	tasks := strings.TrimSuffix(strings.TrimPrefix(h.jobJSON(1, ""), `{"tasks": `), "}")
	for i, v := range []string{`"3"`, `-1`, `1.5`, `1e12`, `true`, `{}`, `[1]`, fmt.Sprint(protocol.MaxFailures + 1), `99999999999999999999999`} {
		body := fmt.Sprintf(`{"id": "bad%d", "tasks": %s, "max_failures": %s}`, i, tasks, v)
		code, resp, _ := h.do("POST", "/api/v1/jobs", "application/json", body)
		if code != 400 || !strings.Contains(resp, "max_failures") {
			t.Errorf("API, max_failures %s: %d %s; want 400 naming the field", v, code, resp)
		}
		doc := fmt.Sprintf(`{"tasks": %s, "max_failures": %s}`, tasks, v)
		code, resp = h.form("/submit_job", url.Values{"job_id": {fmt.Sprintf("lbad%d", i)}, "job_json": {doc}})
		if code != 400 || !strings.Contains(resp, "max_failures") {
			t.Errorf("legacy, max_failures %s: %d %s; want 400 naming the field", v, code, resp)
		}
	}
	for i, v := range []string{`"yes"`, `1`, `0`, `{}`, `[true]`, `"true"`} {
		body := fmt.Sprintf(`{"id": "badh%d", "tasks": %s, "hedge": %s}`, i, tasks, v)
		code, resp, _ := h.do("POST", "/api/v1/jobs", "application/json", body)
		if code != 400 || !strings.Contains(resp, "hedge") {
			t.Errorf("API, hedge %s: %d %s; want 400 naming the field", v, code, resp)
		}
		doc := fmt.Sprintf(`{"tasks": %s, "hedge": %s}`, tasks, v)
		code, resp = h.form("/submit_job", url.Values{"job_id": {fmt.Sprintf("lbadh%d", i)}, "job_json": {doc}})
		if code != 400 || !strings.Contains(resp, "hedge") {
			t.Errorf("legacy, hedge %s: %d %s; want 400 naming the field", v, code, resp)
		}
	}
	if n := h.count("jobs"); n != 0 {
		t.Errorf("%d jobs written", n)
	}
	// Both fields read back from the job.
	body := fmt.Sprintf(`{"id": "both", "tasks": %s, "hedge": true, "max_failures": 3}`, tasks)
	if code, resp, _ := h.do("POST", "/api/v1/jobs", "application/json", body); code != 201 ||
		!strings.Contains(resp, `"hedge": true`) || !strings.Contains(resp, `"max_failures": 3`) {
		t.Errorf("API job with hedge and max_failures: %d %s", code, resp)
	}
	// Unknown fields of a job_json are ignored, as the original did.
	doc := fmt.Sprintf(`{"tasks": %s, "priority_class": "x"}`, tasks)
	if code, resp := h.form("/submit_job", url.Values{"job_id": {"unknown"}, "job_json": {doc}}); code != 200 {
		t.Errorf("legacy job with an unknown field: %d %s", code, resp)
	}
}
