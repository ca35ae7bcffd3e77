package api_test

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// A job named without an id, the runtimes of the API and the ages and
// runtimes of the pages are all read from the master's clock, the one that
// stamps the rows: shown on a master whose clock stands in 2001, a task
// started 90 seconds ago has run 90 seconds, not a quarter of a century.
func TestTimesComeFromTheMastersClock(t *testing.T) {
	clk := &clock{now: time.Unix(1_000_000_000, 0)}
	h := newHarnessWith(t, harnessOptions{now: clk.Now})
	ctx := context.Background()
	job, err := h.api.CreateJob(ctx, protocol.CreateJob{Name: "nightly",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(job.ID, "nightly.1000000000.") {
		t.Errorf("job id %q, want nightly.1000000000.<random>", job.ID)
	}
	h.startNext()
	clk.add(90 * time.Second)

	tasks, err := h.api.Tasks(ctx, job.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 1 || tasks[0].DurationSeconds != 90 {
		t.Errorf("tasks = %+v, want one that has run 90 s", tasks)
	}
	for _, p := range []struct{ path, want string }{
		{"/job?job_id=" + job.ID, "Elapsed: <strong>1m30s</strong>"},                                                                             // the job's
		{"/job?job_id=" + job.ID, `<td data-label="Host">h1/0</td>` + "\n" + `<td data-label="Runtime"><span>1m30s</span>`},                      // the task's
		{"/", `<td data-label="Submitted"><span title="2001-09-09 01:46:40Z">1m30s ago</span></td>` + "\n" + `<td data-label="Duration">1m30s `}, // the job's age
	} {
		code, body, _ := h.do("GET", p.path, "", "")
		if code != 200 || !strings.Contains(body, p.want) {
			t.Errorf("GET %s: %d, want a page showing %q:\n%s", p.path, code, p.want, body)
		}
	}
}

// Behind a proxy that ends TLS, the links to logs and artifacts say https
// on the dashboard as in the JSON API, whose base URL they share.
func TestLinksFollowTheForwardedScheme(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.api.CreateJob(ctx, protocol.CreateJob{ID: "proxied",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}}}); err != nil {
		t.Fatal(err)
	}
	st, _ := h.startNext()
	const log = "the log\n"
	h.failWithLog(st, log)

	host := strings.TrimPrefix(h.url, "http://")
	link := regexp.MustCompile(`https?://` + regexp.QuoteMeta(host) + protocol.PathOutputs)
	for _, p := range []string{"/job?job_id=proxied", "/api/v1/jobs/proxied/tasks", "/tasks?job_id=proxied"} {
		for _, scheme := range []string{"http", "https"} {
			code, body, _ := h.doWith(http.Header{"X-Forwarded-Proto": {scheme}}, "GET", p, "", "")
			links := link.FindAllString(body, -1)
			if code != 200 || len(links) == 0 {
				t.Fatalf("GET %s: %d, no link to the log:\n%s", p, code, body)
			}
			for _, l := range links {
				if !strings.HasPrefix(l, scheme+"://") {
					t.Errorf("GET %s with X-Forwarded-Proto %s: link %s", p, scheme, l)
				}
			}
		}
	}
}

// Attempts still to run carry the runtime expected of their description,
// which clients estimate the time left from; finished ones do not.
func TestTasksCarryExpectedRuntimes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.api.CreateJob(ctx, protocol.CreateJob{ID: "first",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}}}); err != nil {
		t.Fatal(err)
	}
	st, _ := h.startNext()
	if _, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{DurationMS: 42_000}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.api.CreateJob(ctx, protocol.CreateJob{ID: "second",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}, {IsolateHash: h.digest, Description: "new"}}}); err != nil {
		t.Fatal(err)
	}
	first, err := h.api.Tasks(ctx, "first", "")
	if err != nil || len(first) != 1 || first[0].ExpectedSeconds != 0 {
		t.Errorf("finished attempts = %+v, %v: want no expected runtime", first, err)
	}
	second, err := h.api.Tasks(ctx, "second", "")
	if err != nil || len(second) != 2 {
		t.Fatalf("tasks = %+v, %v", second, err)
	}
	// A description without history takes the median of the job's known
	// tasks with the same inputs (model.ExpectedRuntimes).
	if second[0].ExpectedSeconds != 42 || second[1].ExpectedSeconds != 42 {
		t.Errorf("expected runtimes %v and %v, want 42 and 42", second[0].ExpectedSeconds, second[1].ExpectedSeconds)
	}
}

// A log is served in ranges, so that the client reads only the end of a
// failed test's; a whole GET and HEAD answer as before.
func TestOutputRanges(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	if _, err := h.api.CreateJob(ctx, protocol.CreateJob{ID: "ranged",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}}}); err != nil {
		t.Fatal(err)
	}
	st, _ := h.startNext()
	h.failWithLog(st, "first line\nlast line\n")
	tasks, err := h.api.Tasks(ctx, "ranged", "")
	if err != nil || len(tasks) != 1 || tasks[0].StdoutLink == "" {
		t.Fatalf("tasks = %+v, %v", tasks, err)
	}
	tail, err := h.api.Tail(ctx, tasks[0].StdoutLink, 10)
	if err != nil || string(tail) != "last line\n" {
		t.Errorf("Tail = %q, %v", tail, err)
	}
	for _, c := range []struct {
		rng, want string
		status    int
	}{
		{"", "first line\nlast line\n", 200},
		{"bytes=-10", "last line\n", 206},
		{"bytes=0-4", "first", 206},
		{"bytes=100-", "", 416},
	} {
		req, _ := http.NewRequest("GET", tasks[0].StdoutLink, nil)
		if c.rng != "" {
			req.Header.Set("Range", c.rng)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || c.status != 416 && string(body) != c.want {
			t.Errorf("Range %q: %d %q, want %d %q", c.rng, resp.StatusCode, body, c.status, c.want)
		}
		if resp.Header.Get("Content-Disposition") == "" || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("Range %q: headers %v", c.rng, resp.Header)
		}
	}
}
