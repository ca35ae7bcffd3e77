package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// run is how one attempt of a scripted task ends; nil leaves it running.
type run *protocol.Finish

// crashLog is the stderr of the crashing test: 40 numbered lines, of
// which the job page shows the last 30.
var crashLog = func() string {
	var b strings.Builder
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "crash line %d\n", i)
	}
	return b.String()
}()

// scriptedJob submits a job of six tests (max_retries 1, timeout 600 s)
// and plays their runs as a slave would: "pass" passes; "flaky" fails,
// then passes; "crash" dies of SIGSEGV twice, with a log; "slow" times out
// twice; "run" is left running; "wait" is never started. It returns the
// job's id.
func (h *harness) scriptedJob() string {
	h.t.Helper()
	ctx := context.Background()
	script := map[string][]run{
		"pass":  {{ExitCode: 0}},
		"flaky": {{ExitCode: 1}, {ExitCode: 0}},
		"crash": {{ExitCode: -11}, {ExitCode: -11}},
		"slow":  {{TimedOut: true, ExitCode: -9}, {TimedOut: true, ExitCode: -9}},
		"run":   {nil},
	}
	var tasks []protocol.Task
	for _, d := range []string{"pass", "flaky", "crash", "slow", "run", "wait"} {
		tasks = append(tasks, protocol.Task{IsolateHash: h.digest, Description: d, MaxRetries: 1, Timeout: 600})
	}
	job, err := h.api.CreateJob(ctx, protocol.CreateJob{Name: "scripted", Tasks: tasks})
	if err != nil {
		h.t.Fatal(err)
	}
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "host-7", Slots: 4})
	if err != nil {
		h.t.Fatal(err)
	}
	c, err := h.q.NewConsumer(ctx)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { c.Close() })
	for left := 8; left > 0; {
		res, e := h.reserve(c)
		st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, Slot: 3, EntryID: res.ID, Entry: e})
		if err != nil {
			h.t.Fatal(err)
		}
		d := st.Spec.Description
		if d == "wait" {
			// Given back unstarted: it waits in the queue again.
			if err := h.slave.Abort(ctx, st.Lease, "not yet"); err != nil {
				h.t.Fatal(err)
			}
			_ = c.Release(ctx, res.ID, 0, time.Hour)
			continue
		}
		left--
		f := script[d][st.Spec.Attempt]
		if f == nil {
			continue
		}
		fin := *f
		if d == "crash" {
			if err := h.slave.Upload(ctx, st.Lease, "stderr", strings.NewReader(crashLog), int64(len(crashLog))); err != nil {
				h.t.Fatal(err)
			}
			fin.Outputs = []string{"stderr"}
		}
		if _, err := h.slave.Finish(ctx, st.Lease, fin); err != nil {
			h.t.Fatal(err)
		}
		_ = c.Delete(ctx, res.ID)
	}
	return job.ID
}

// get fetches a page and fails the test unless it answers 200.
func (h *harness) page(path string) string {
	h.t.Helper()
	code, body, _ := h.do("GET", path, "", "")
	if code != 200 {
		h.t.Fatalf("GET %s: %d\n%s", path, code, body)
	}
	return body
}

// rows returns the descriptions of the task rows of a job page, in order.
func rows(body string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`<td data-label="Test" class="desc">([^<]*) <small>`).FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

func TestJobPage(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		id := h.scriptedJob()
		body := h.page("/job?job_id=" + id)
		for _, want := range []string{
			">all (6)<", ">running (1)<", ">queued (1)<", ">failed (1)<", ">timed out (1)<", ">flaky (1)<", ">passed (2)<", ">canceled (0)<",
			`<td data-label="Outcome" class="outcome">killed by SIGSEGV</td>`,
			`<td data-label="Outcome" class="outcome">timed out after 600 s</td>`,
			`<td data-label="Outcome" class="outcome">passed <span class="badge flaky">flaky</span></td>`,
			`<td data-label="Outcome" class="outcome">running</td>`,
			`title="attempt 0: exit 1">#0 failed</span> <span class="badge passed" title="attempt 1: passed">#1 passed</span>`,
			`<td data-label="Host">host-7/3</td>`,
			`<a href="/test?description=flaky" title="this test's history">history</a>`,
			`<form method="post" action="/job/cancel">`, `<form method="post" action="/job/retry">`,
			"<summary>Last lines of stderr</summary>",
			"crash line 11\ncrash line 12", "crash line 40</pre>",
			"Submitted by <strong>",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the job page lacks %q:\n%s", want, body)
			}
		}
		if strings.Contains(body, "crash line 10\n") {
			t.Errorf("the tail shows more than 30 lines")
		}
		if got := fmt.Sprint(rows(body)); got != "[pass flaky crash slow run wait]" {
			t.Errorf("rows in task order: %s", got)
		}
		// A failed task's tail is in a <details>, closed: it opens without JavaScript.
		if n := strings.Count(body, `<details class="tail">`); n != 1 {
			t.Errorf("%d tails; want the crash's (the timeout left no log)", n)
		}

		for _, tc := range []struct{ query, want string }{
			{"&status=failed", "[crash]"},
			{"&status=timed_out", "[slow]"},
			{"&status=flaky", "[flaky]"},
			{"&status=passed", "[pass flaky]"},
			{"&status=queued", "[wait]"},
			{"&status=running", "[run]"},
			{"&status=canceled", "[]"},
			{"&sort=name", "[crash flaky pass run slow wait]"},
			{"&sort=state", "[crash slow run wait pass flaky]"},
			{"&sort=name&limit=2", "[crash flaky]"},
			{"&sort=name&limit=2&page=3", "[slow wait]"},
		} {
			if got := fmt.Sprint(rows(h.page("/job?job_id=" + id + tc.query))); got != tc.want {
				t.Errorf("%s: rows %s, want %s", tc.query, got, tc.want)
			}
		}
		paged := h.page("/job?job_id=" + id + "&sort=name&limit=2&page=2")
		for _, want := range []string{
			`<a href="/job?job_id=` + id + `&amp;limit=2&amp;page=3&amp;sort=name">Next page</a>`,
			`<a href="/job?job_id=` + id + `&amp;limit=2&amp;sort=name">Previous page</a>`,
			"Tasks 3–4 of 6",
		} {
			if !strings.Contains(paged, want) {
				t.Errorf("page 2 lacks %q:\n%s", want, paged)
			}
		}
		for _, q := range []string{"&sort=bogus", "&page=0", "&page=x", "&limit=0", "&status=bogus"} {
			if code, _, _ := h.do("GET", "/job?job_id="+id+q, "", ""); code != 400 {
				t.Errorf("%s: %d, want 400", q, code)
			}
		}
	})
}

// The buttons are forms that post and come back to the page; another
// site's post is refused.
func TestJobPageButtons(t *testing.T) {
	h := newHarness(t)
	id := h.scriptedJob()
	post := func(path string, hdr http.Header) (int, string) {
		req, _ := http.NewRequest("POST", h.url+path, strings.NewReader(url.Values{"job_id": {id}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header[k] = v
		}
		resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	if code, _ := post("/job/cancel", http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"http://evil.example"}}); code != 403 {
		t.Errorf("a cross-site cancel: %d, want 403", code)
	}
	if j, _ := h.m.Job(context.Background(), id); j.Canceled {
		t.Fatal("a cross-site post canceled the job")
	}
	if code, loc := post("/job/retry", nil); code != 303 || loc != "/job?job_id="+id {
		t.Errorf("retry: %d to %q", code, loc)
	}
	body := h.page("/job?job_id=" + id)
	if !strings.Contains(body, ">queued (3)<") {
		t.Errorf("after retry the crash and the timeout are queued again:\n%s", body)
	}
	if code, loc := post("/job/cancel", nil); code != 303 || loc != "/job?job_id="+id {
		t.Errorf("cancel: %d to %q", code, loc)
	}
	body = h.page("/job?job_id=" + id)
	if !strings.Contains(body, ">canceled (4)<") || strings.Contains(body, `action="/job/cancel"`) {
		t.Errorf("after cancel four tasks are canceled and the button is gone:\n%s", body)
	}
	if code, _, _ := h.do("POST", "/job/cancel", "application/x-www-form-urlencoded", "job_id=nope"); code != 404 {
		t.Errorf("cancel of an unknown job: %d", code)
	}
}

func TestJobsPage(t *testing.T) {
	h := newHarness(t)
	id := h.scriptedJob()
	ctx := context.Background()
	now := h.m.Now()
	for _, j := range []model.NewJob{{ID: "alice.1", User: "alice"}, {ID: "bob.1", User: "bob"}} {
		j.Tasks = []model.NewTask{{TaskID: h.digest + ".0", Spec: model.TaskSpec{IsolateHash: h.digest, Description: "x"}}}
		if err := h.st.CreateJob(ctx, j, now); err != nil {
			t.Fatal(err)
		}
	}
	body := h.page("/")
	st, err := h.m.QueueStats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The original's autoscaler reads these two figures so.
	m := regexp.MustCompile(`Queue length: (\d+)`).FindStringSubmatch(body)
	r := regexp.MustCompile(`Running: (\d+)`).FindStringSubmatch(body)
	if m == nil || r == nil || m[1] != fmt.Sprint(st.Ready) || r[1] != fmt.Sprint(st.Reserved) {
		t.Errorf("queue figures %v %v; want %d and %d:\n%s", m, r, st.Ready, st.Reserved, body)
	}
	for _, want := range []string{
		`<a href="/job?job_id=` + id + `">` + id + `</a><br><small>scripted</small>`,
		`<a href="/?user=alice">alice</a>`, `<a href="/?state=failed">failed</a>`,
		// the scripted job: 2 passed, 2 failed, 1 running, 1 queued of 6
		`aria-label="2 passed, 2 failed, 1 running, 1 queued of 6"`,
		`<td data-label="Failed" class="num"><a href="/job?job_id=` + id + `&amp;status=failed">2</a></td>`,
		`<td data-label="Flaky" class="num"><a href="/job?job_id=` + id + `&amp;status=flaky">1</a></td>`,
		`<td class="desc"><a href="/test?description=flaky">flaky</a></td><td class="num">1</td>`,
		`<meta name="viewport" content="width=device-width, initial-scale=1">`,
		`<a href="/slaves">Slaves</a>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the jobs page lacks %q:\n%s", want, body)
		}
	}
	jobs := func(path string) string {
		var ids []string
		for _, m := range regexp.MustCompile(`<td data-label="Job"><a href="[^"]*">([^<]*)</a>`).FindAllStringSubmatch(h.page(path), -1) {
			ids = append(ids, m[1])
		}
		return fmt.Sprint(ids)
	}
	for path, want := range map[string]string{
		"/":                        "[bob.1 alice.1 " + id + "]",
		"/?user=alice":             "[alice.1]",
		"/?user=carol":             "[]",
		"/?state=running":          "[bob.1 alice.1 " + id + "]",
		"/?state=failed":           "[" + id + "]",
		"/?state=passed":           "[]",
		"/?q=ali":                  "[alice.1]",
		"/?q=b&user=alice":         "[]",
		"/?state=running&user=bob": "[bob.1]",
	} {
		if got := jobs(path); got != want {
			t.Errorf("%s lists %s, want %s", path, got, want)
		}
	}
	if code, _, hdr := h.doWith(nil, "GET", "/?q=bob.1", "", ""); code != 200 {
		t.Errorf("search of a whole id: %d %v", code, hdr)
	}
	req, _ := http.NewRequest("GET", h.url+"/?q=bob.1", nil)
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/job?job_id=bob.1" {
		t.Errorf("search of a whole id: %d to %q; want the job's page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _, _ := h.do("GET", "/?state=bogus", "", ""); code != 400 {
		t.Errorf("an unknown state: %d", code)
	}
}

func TestTestHistoryPage(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		id := h.scriptedJob()
		body := h.page("/test?description=flaky")
		for _, want := range []string{
			"<code>flaky</code>",
			"Latest runs: 2 <small>(at most 100)</small>: 1 passed, 1 failed",
			`<span id="flake-rate">Flaky in 1 of 1 jobs (100.00%): failed, then passed on retry</span>`,
			`<td data-label="Job"><a href="/job?job_id=` + id + `">` + id + `</a></td>`,
			`<td data-label="Outcome" class="outcome">exit 1</td>`,
			`<svg class="trend"`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("the test page lacks %q:\n%s", want, body)
			}
		}
		if n := strings.Count(body, "<circle "); n != 2 {
			t.Errorf("%d dots on the trend, want 2", n)
		}
		if b := h.page("/test?description=pass"); !strings.Contains(b, "Flaky in 0 of 1 jobs (0%)") {
			t.Errorf("a steady test:\n%s", b)
		}
		if b := h.page("/test?description=nothing"); !strings.Contains(b, "No run of this test is recorded") {
			t.Errorf("an unknown test:\n%s", b)
		}
		if code, _, _ := h.do("GET", "/test?description=", "", ""); code != 400 {
			t.Errorf("no description: %d", code)
		}
		if code, _, _ := h.do("GET", "/test?description="+strings.Repeat("x", 5000), "", ""); code != 400 {
			t.Errorf("an oversized description: %d", code)
		}
	})
}

// Every user-controlled string is text on the pages, never markup.
func TestPagesEscapeHostileText(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	const script, img = `<script>alert(1)</script>`, `"><img src=x onerror=alert(2)>`
	hostile := script + img
	for _, id := range []string{"hostile.1", hostile} {
		j := model.NewJob{ID: id, User: hostile, Name: hostile}
		for i := range 2 {
			j.Tasks = append(j.Tasks, model.NewTask{TaskID: fmt.Sprintf("%s.%d", h.digest, i), Index: i,
				Spec: model.TaskSpec{IsolateHash: h.digest, Description: fmt.Sprintf("%s %d", hostile, i)}})
		}
		if err := h.st.CreateJob(ctx, j, h.m.Now()); err != nil {
			t.Fatal(err)
		}
	}
	q := url.QueryEscape(hostile)
	for _, path := range []string{
		"/", "/?user=" + q, "/?q=" + q, "/?q=" + q + "x",
		"/job?job_id=hostile.1", "/job?job_id=hostile.1&sort=name",
		"/job?job_id=" + q, "/test?description=" + url.QueryEscape(hostile+" 0"), "/test?description=" + q,
	} {
		_, body, _ := h.do("GET", path, "", "")
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img") || strings.Contains(body, `"><img`) {
			t.Errorf("GET %s renders markup from user text:\n%s", path, body)
		}
		if strings.Count(body, "&lt;script&gt;") == 0 && !strings.HasPrefix(path, "/?q=") {
			t.Errorf("GET %s does not show the text escaped:\n%s", path, body)
		}
	}
}

// A task that runs in a container shows its image on its row; a task on
// the host shows none.
func TestJobPageShowsTheImage(t *testing.T) {
	onEachStore(t, func(t *testing.T, h *harness) {
		job, err := h.api.CreateJob(context.Background(), protocol.CreateJob{Name: "images", Tasks: []protocol.Task{
			{IsolateHash: h.digest, Description: "in-box", DockerImage: "registry.example/team/build:1.2"},
			{IsolateHash: h.digest, Description: "on-host"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		body := h.page("/job?job_id=" + job.ID)
		if n := strings.Count(body, `<span class="image" title="runs in a container of this image">`); n != 1 ||
			!strings.Contains(body, `>registry.example/team/build:1.2</span>`) {
			t.Errorf("the job page shows %d images; want the one task's registry.example/team/build:1.2", n)
		}
	})
}
