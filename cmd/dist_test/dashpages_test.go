package main

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dist-test/dist_test/internal/browsertest"
	"github.com/dist-test/dist_test/internal/protocol"
)

// The jobs, job and test pages in a real browser on a real `dist_test
// local`: the jobs page filtered by a click, the job page's failed tab, a
// failed task's tail opened, a hostile description shown as text, the page
// on a phone's width, a test's history, and the job canceled from its page;
// no request leaves the machine.
func TestDashboardPagesInBrowser(t *testing.T) {
	mark := sharedDir(t)
	c := newClusterWith(t, clusterOptions{slots: 2, env: []string{"MARK=" + mark}})
	b := browsertest.New(t, 3*time.Minute)
	c.writeInputs(map[string]string{
		"ok":    "exit 0\n",
		"bad":   "for i in $(seq 1 40); do echo \"bad line $i <i>x</i>\" >&2; done\nexit 1\n",
		"flaky": "if [ ! -e \"$MARK/failed-once\" ]; then touch \"$MARK/failed-once\"; echo 'first run fails' >&2; exit 1; fi\n",
		"hang":  "n=0\nwhile [ ! -e \"$MARK/never\" ] && [ $n -lt 240 ]; do n=$((n+1)); sleep 0.5; done\n",
	})
	const hostile = `bad <script>document.title='pwned'</script>`
	tasks := []jobTask{
		{IsolateHash: c.archive("ok", "ARG="), Description: "ok one"},
		{IsolateHash: c.archive("ok", "ARG=2"), Description: "ok two"},
		{IsolateHash: c.archive("bad", "ARG="), Description: hostile},
		{IsolateHash: c.archive("hang", "ARG="), Description: "hang"},
		{IsolateHash: c.archive("flaky", "ARG="), Description: "flaky", MaxRetries: 1},
	}
	if code, _, stderr := c.run("submit", "--no-wait", c.writeJob("dash.json", tasks)); code != 0 {
		t.Fatalf("submit: %d %s", code, stderr)
	}
	job := lastJob(t, c)
	states := func() map[string]string {
		var l protocol.AttemptList
		c.get("/api/v1/jobs/"+url.PathEscape(job)+"/tasks", &l)
		out := map[string]string{}
		for _, a := range l.Tasks {
			out[a.Description] = a.State
		}
		return out
	}
	waitFor(t, time.Minute, "the bad task to fail, the ok and flaky ones to pass and the hang to run", func() bool {
		s := states()
		return s[hostile] == "failed" && s["ok one"] == "passed" && s["ok two"] == "passed" && s["hang"] == "running" && s["flaky"] == "passed"
	})
	count := func(css string) int {
		n, err := chromedp.Run(b.Ctx, chromedp.Evaluate[int](fmt.Sprintf("document.querySelectorAll(%q).length", css)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	eval := func(js string) string {
		s, err := chromedp.Run(b.Ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return s
	}
	jobLink := `a[href="/job?job_id=` + url.QueryEscape(job) + `"]`

	// The jobs page: the autoscaler's figures, and a filter by a click.
	b.Do(chromedp.Navigate(c.url+"/"), chromedp.WaitVisible(chromedp.CSS("#fleet")))
	if f := b.Text("#fleet"); !regexp.MustCompile(`Queue length: \d+`).MatchString(f) || !regexp.MustCompile(`Running: \d+`).MatchString(f) {
		t.Errorf("fleet line: %q", f)
	}
	b.Do(chromedp.Click(chromedp.CSS(`ul[aria-label="State"] a[href="/?state=failed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ul[aria-label="State"] a[aria-current][href="/?state=failed"]`)))
	if n := count("#jobs " + jobLink); n != 1 {
		t.Errorf("the failed jobs list the job %d times", n)
	}
	if f := b.Text("#flaky"); !strings.Contains(f, "flaky") {
		t.Errorf("flakiest tests: %q", f)
	}
	b.Screenshot("jobs")

	// The job page: the failed tab, then the failure's tail.
	b.Do(chromedp.Click(chromedp.CSS("#jobs "+jobLink)), chromedp.WaitVisible(chromedp.CSS("#tasks")))
	tabs := b.Text(`ul[aria-label="Tasks by state"]`)
	for _, want := range []string{"all (5)", "running (1)", "failed (1)", "flaky (1)", "passed (3)", "queued (0)"} {
		if !strings.Contains(tabs, want) {
			t.Errorf("tabs %q lack %q", tabs, want)
		}
	}
	b.Screenshot("job")
	b.Do(chromedp.Click(chromedp.CSS(`ul[aria-label="Tasks by state"] a[href*="status=failed"]`)),
		chromedp.WaitVisible(chromedp.CSS(`ul[aria-label="Tasks by state"] a[aria-current][href*="status=failed"]`)))
	if n := count(`#tasks tr[class^="task-"]`); n != 1 {
		t.Errorf("the failed tab shows %d tasks, want 1", n)
	}
	if eval(`String(document.querySelector("details.tail").open)`) != "false" {
		t.Error("the tail is open before a click")
	}
	b.Do(chromedp.Click(chromedp.CSS("details.tail summary")), chromedp.WaitVisible(chromedp.CSS("pre.tail")))
	tail := b.Text("pre.tail")
	if !strings.HasPrefix(tail, "bad line 11 <i>x</i>") || !strings.HasSuffix(strings.TrimSpace(tail), "bad line 40 <i>x</i>") {
		t.Errorf("tail of the failure:\n%s", tail)
	}
	if out := b.Text("#tasks td.outcome"); out != "exit 1" {
		t.Errorf("outcome %q", out)
	}
	if d := b.Text("#tasks td.desc"); !strings.HasPrefix(d, hostile) || eval("document.title") == "pwned" || count("#tasks script, pre.tail i") != 0 {
		t.Errorf("the hostile description or log made elements: %q, title %q", d, eval("document.title"))
	}
	b.Screenshot("job-failure-open")

	// On a phone's width the page fits without scrolling sideways.
	b.Do(chromedp.EmulateViewport(390, 844), chromedp.Navigate(c.url+"/job?job_id="+url.QueryEscape(job)), chromedp.WaitVisible(chromedp.CSS("#tasks")))
	if w := eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); w != "true" {
		t.Errorf("the job page is wider than a phone: %s > %s", eval(`String(document.documentElement.scrollWidth)`), eval(`String(window.innerWidth)`))
	}
	b.Screenshot("job-phone")
	b.Do(chromedp.Navigate(c.url+"/"), chromedp.WaitVisible(chromedp.CSS("#jobs")))
	if w := eval(`String(document.documentElement.scrollWidth <= window.innerWidth)`); w != "true" {
		t.Errorf("the jobs page is wider than a phone: %s > %s", eval(`String(document.documentElement.scrollWidth)`), eval(`String(window.innerWidth)`))
	}
	b.Screenshot("jobs-phone")
	b.Do(chromedp.EmulateViewport(1280, 900))

	// The failure's history.
	b.Do(chromedp.Navigate(c.url+"/job?job_id="+url.QueryEscape(job)+"&status=failed"), chromedp.WaitVisible(chromedp.CSS("#tasks")),
		chromedp.Click(chromedp.CSS(`#tasks td.desc a[href^="/test?"]`)), chromedp.WaitVisible(chromedp.CSS("#flake-rate")))
	if r := b.Text("#flake-rate"); !strings.HasPrefix(r, "Flaky in 0 of 1 jobs") {
		t.Errorf("flake rate %q", r)
	}
	if d := b.Text("p.desc code"); d != hostile {
		t.Errorf("history of %q", d)
	}
	b.Screenshot("test-history")

	// The flaky test: its row shows both attempts, its history the flake.
	b.Do(chromedp.Navigate(c.url+"/job?job_id="+url.QueryEscape(job)+"&status=flaky"), chromedp.WaitVisible(chromedp.CSS("#tasks")))
	if a := b.Text(`#tasks td[data-label="Attempts"]`); a != "#0 failed #1 passed" {
		t.Errorf("the flaky task's attempts: %q", a)
	}
	b.Do(chromedp.Click(chromedp.CSS(`#tasks td.desc a[href^="/test?"]`)), chromedp.WaitVisible(chromedp.CSS("#flake-rate")))
	if r := b.Text("#flake-rate"); !strings.HasPrefix(r, "Flaky in 1 of 1 jobs (100.00%)") || count("svg.trend circle") != 2 {
		t.Errorf("flaky history: %q, %d dots", r, count("svg.trend circle"))
	}
	b.Screenshot("test-history-flaky")

	// Cancel from the page: the button posts, the page comes back canceled.
	b.Do(chromedp.Navigate(c.url+"/job?job_id="+url.QueryEscape(job)), chromedp.WaitVisible(chromedp.CSS(`form[action="/job/cancel"] button`)),
		chromedp.Click(chromedp.CSS(`form[action="/job/cancel"] button`)),
		chromedp.WaitNotPresent(chromedp.CSS(`form[action="/job/cancel"]`)))
	if badge := b.Text("h1 .badge"); badge != "canceled" {
		t.Errorf("after cancel the job is %q", badge)
	}
	if tabs := b.Text(`ul[aria-label="Tasks by state"]`); !strings.Contains(tabs, "canceled (1)") || !strings.Contains(tabs, "running (0)") {
		t.Errorf("tabs after cancel: %q", tabs)
	}
	if s := states()["hang"]; s != "canceled" {
		t.Errorf("the hanging task is %s", s)
	}
	b.Screenshot("job-canceled")
	b.AssertLocalOnly()
}
