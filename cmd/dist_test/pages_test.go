package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/protocol"
)

// A big job's task list and page come in bounded pages; the legacy /tasks
// stays whole for the original client; our client reads every page.
func TestBigJobIsPaged(t *testing.T) {
	const n = 2300
	c := newCluster(t, 1)
	c.writeInputs(map[string]string{"noop": "exit 0\n"})
	hash := c.archive("noop", "ARG=")
	tasks := make([]jobTask, n)
	for i := range tasks {
		tasks[i] = jobTask{IsolateHash: hash, Description: fmt.Sprintf("t-%d", i)}
	}
	if code, _, stderr := c.run("submit", "--no-wait", c.writeJob("big.json", tasks)); code != 0 {
		t.Fatalf("submit: %d %s", code, stderr)
	}
	job := lastJob(t, c)
	defer c.run("cancel", job)

	seen := map[string]bool{}
	pages, after := 0, ""
	for {
		var l protocol.AttemptList
		c.get("/api/v1/jobs/"+job+"/tasks?after="+after, &l)
		pages++
		if len(l.Tasks) > protocol.DefaultPage {
			t.Fatalf("a page of %d tasks; want at most %d", len(l.Tasks), protocol.DefaultPage)
		}
		for _, a := range l.Tasks {
			k := fmt.Sprintf("%s/%d", a.TaskID, a.Attempt)
			if seen[k] {
				t.Fatalf("%s on two pages", k)
			}
			seen[k] = true
		}
		if l.Next == "" {
			break
		}
		after = l.Next
	}
	if len(seen) != n || pages != 3 {
		t.Fatalf("%d tasks in %d pages; want %d in 3", len(seen), pages, n)
	}
	for _, q := range []string{"limit=0", "limit=10001", "after=x", "after=-1.0"} {
		resp, err := http.Get(c.url + "/api/v1/jobs/" + job + "/tasks?" + q)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("tasks?%s: %d, want 400", q, resp.StatusCode)
		}
	}

	// The legacy list is whole.
	var legacy []map[string]any
	c.get("/tasks?job_id="+job, &legacy)
	if len(legacy) != n {
		t.Errorf("legacy /tasks: %d records, want %d", len(legacy), n)
	}

	// The job page shows one page, and links to the next.
	resp, err := http.Get(c.url + "/job?job_id=" + job)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rows := strings.Count(string(page), `<tr class="task-`)
	if rows != 500 || !strings.Contains(string(page), "Next page") {
		t.Errorf("the job page shows %d tasks (%d bytes), next link %v; want 500 and a link", rows, len(page), strings.Contains(string(page), "Next page"))
	}

	// Our client reads all pages: fetch lists every finished task.
	if code, _, stderr := c.run("cancel", job); code != 0 {
		t.Fatalf("cancel: %d %s", code, stderr)
	}
	code, _, stderr := c.run("fetch", "-l", "-d", t.TempDir(), job)
	var noOut, noErr int
	if _, err := fmt.Sscanf(stderr[strings.Index(stderr, "No stdout"):], "No stdout for %d tasks, no stderr for %d", &noOut, &noErr); err != nil || code != 0 {
		t.Fatalf("fetch: %d %v\n%s", code, err, stderr)
	}
	var logs int
	fmt.Sscanf(stderr[strings.Index(stderr, "Fetching"):], "Fetching %d logs", &logs)
	if noOut+noErr+logs != 2*n {
		t.Errorf("fetch saw %d tasks without stdout, %d without stderr and %d logs; want %d in all:\n%s", noOut, noErr, logs, 2*n, stderr)
	}
}
