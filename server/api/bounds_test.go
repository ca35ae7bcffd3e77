package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Hostile sizes and values get a 4xx that says what is wrong, never a 500,
// on SQLite and on MariaDB alike, and change nothing.
func TestOversizedFieldsAre400(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		long := func(n int) string { return strings.Repeat("x", n) }
		job := func(fields string) string {
			return `{"id": "j1", "tasks": [{"isolate_hash": "` + h.digest + `", "description": "d"` + fields + `}]` + "}"
		}
		cases := []struct {
			name, body string
			says       string
		}{
			{"timeout overflowing nanoseconds", job(`, "timeout": 1e10`), `"timeout" of 1e10 seconds is longer than the maximum`},
			{"timeout past a week", job(`, "timeout": 604801`), `longer than the maximum`},
			{"user too long", `{"id": "j1", "user": "` + long(201) + `", "tasks": [{"isolate_hash": "` + h.digest + `", "description": "d"}]}`, "user is 201 bytes long"},
			{"name too long", `{"id": "j1", "name": "` + long(300) + `", "tasks": [{"isolate_hash": "` + h.digest + `", "description": "d"}]}`, "name is 300 bytes long"},
			{"docker image too long", job(`, "docker_image": "` + long(501) + `"`), `"docker_image" is 501 bytes long`},
			{"glob too long", job(`, "artifact_archive_globs": ["` + long(protocol.MaxGlobLength+1) + `"]`), fmt.Sprintf("at most %d are allowed", protocol.MaxGlobLength)},
			{"description too long", job(`, "description": "` + long(1001) + `"`), `"description" is 1001 bytes long`},
		}
		for _, c := range cases {
			code, body, _ := h.do("POST", "/api/v1/jobs", "application/json", c.body)
			if code != http.StatusBadRequest || !strings.Contains(message(body), c.says) {
				t.Errorf("%s: %d %s; want 400 saying %q", c.name, code, clipBody(body), c.says)
			}
		}
		if n := h.count("jobs"); n != 0 {
			t.Errorf("%d jobs written by refused submissions", n)
		}

		// Ids no job or task can have are unknown, not server faults.
		for _, p := range []string{
			"/api/v1/jobs/%C3%A9", "/api/v1/jobs/" + long(300), "/api/v1/jobs/%C3%A9/tasks",
			"/job_status?job_id=%C3%A9", "/view_log?job_id=j&task_id=%C3%A9&attempt=0&log=stdout",
			"/outputs/..%2f..", "/outputs/..%2f..%2fdist_test.db", "/outputs/%2e%2e/x", "/outputs/a/%C3%A9",
		} {
			code, body, _ := h.do("GET", p, "", "")
			if code >= 500 || (code != 404 && !strings.HasPrefix(p, "/job_status")) {
				t.Errorf("GET %s: %d %s; want 404", p, code, clipBody(body))
			}
		}
		if code, body, _ := h.do("POST", "/api/v1/jobs/%C3%A9/cancel", "", ""); code != 404 {
			t.Errorf("cancel of an impossible id: %d %s", code, clipBody(body))
		}

		// A retry naming 40,000 tasks is refused as too long a list; one
		// naming an impossible task id finds no such task.
		if _, err := h.api.CreateJob(context.Background(), protocol.CreateJob{ID: "r1", Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}}}); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, 40000)
		for i := range ids {
			ids[i] = fmt.Sprintf("%s.%d", h.digest, i)
		}
		b, _ := json.Marshal(protocol.Retry{TaskIDs: ids})
		if code, body, _ := h.do("POST", "/api/v1/jobs/r1/retry", "application/json", string(b)); code != 400 || !strings.Contains(body, "at most 10000") {
			t.Errorf("retry of 40,000 ids: %d %s; want 400", code, clipBody(body))
		}
		if code, body, _ := h.do("POST", "/api/v1/jobs/r1/retry", "application/json", `{"task_ids": ["é", "`+long(200)+`"]}`); code != 404 {
			t.Errorf("retry of impossible ids: %d %s; want 404", code, clipBody(body))
		}
		if code, body := h.form("/retry_task", url.Values{"task_json": {`{"job_id": "é", "task_id": "é", "attempt": 0}`}}); code != 404 {
			t.Errorf("legacy retry of impossible ids: %d %s; want 404", code, clipBody(body))
		}
	})
}

// What a slave (or a task through it) reports is clipped to what the
// columns hold, or refused when it names outputs that do not exist.
func TestSlaveReportsAreBounded(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		ctx := context.Background()
		if _, err := h.api.CreateJob(ctx, protocol.CreateJob{ID: "big", Tasks: []protocol.Task{
			{IsolateHash: h.digest, Description: "a"}, {IsolateHash: h.digest, Description: "b"}}}); err != nil {
			t.Fatal(err)
		}
		reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 2, Version: strings.Repeat("v", 500)})
		if err != nil {
			t.Fatalf("register with a 500-byte version: %v", err)
		}
		c, _ := h.q.NewConsumer(ctx)
		defer c.Close()
		var leases []string
		for range 2 {
			res, e := h.reserve(c)
			started, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
			if err != nil {
				t.Fatal(err)
			}
			leases = append(leases, started.Lease)
		}
		for _, missing := range []string{`["` + strings.Repeat("m", 300) + `"]`, `["stdout", "stdout"]`} {
			code, body, _ := h.doWith(asSlave, "POST", "/api/v1/attempts/"+leases[0]+"/finish", "application/json", `{"exit_code": 1, "missing": `+missing+`}`)
			if code != 400 {
				t.Errorf("finish with missing %s: %d %s; want 400", clipBody(missing), code, clipBody(body))
			}
		}
		// A 60 MB error from a hostile task is stored clipped.
		huge := strings.Repeat("é", 30<<20)
		b, _ := json.Marshal(protocol.Finish{ExitCode: 1, Error: huge})
		if code, body, _ := h.doWith(asSlave, "POST", "/api/v1/attempts/"+leases[0]+"/finish", "application/json", string(b)); code != 200 {
			t.Fatalf("finish with a 60 MB error: %d %s", code, clipBody(body))
		}
		if code, body, _ := h.doWith(asSlave, "POST", "/api/v1/attempts/"+leases[1]+"/abort", "application/json", `{"reason": "`+strings.Repeat("r", 100000)+`"}`); code != 204 {
			t.Fatalf("abort with a 100 kB reason: %d %s", code, clipBody(body))
		}
		var longest int
		if err := h.st.DB().QueryRow(`SELECT MAX(LENGTH(error)) FROM attempts`).Scan(&longest); err != nil {
			t.Fatal(err)
		}
		if longest > 4096 {
			t.Errorf("an attempt's error holds %d bytes; want at most 4096", longest)
		}
		if err := h.st.DB().QueryRow(`SELECT MAX(LENGTH(detail)) FROM events`).Scan(&longest); err != nil {
			t.Fatal(err)
		}
		if longest > 4*1000 {
			t.Errorf("an event's detail holds %d bytes", longest)
		}
	})
}

func clipBody(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}
