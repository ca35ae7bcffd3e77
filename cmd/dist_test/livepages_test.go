package main

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dist-test/dist_test/internal/browsertest"
	"github.com/dist-test/dist_test/internal/protocol"
)

// followScript prints a few lines, then one every half second until the
// test lets it end by making the file $MARK/$1 (or a minute passes), so
// that its pages are seen following it.
const followScript = `for i in 1 2 3; do echo "line $i <b>tag</b>"; done
n=0
while [ ! -e "$MARK/$1" ] && [ $n -lt 120 ]; do n=$((n+1)); echo "tick $n"; sleep 0.5; done
echo "the end"
`

// The log, trace and slaves pages in a real browser on a real `dist_test
// local`: a running task's log is followed until the task ends, then its
// stored log (kept, though it passed, by keep_passed_logs) replaces it;
// hostile output and descriptions show as text; the trace's bars open the
// logs; and no request leaves the machine.
func TestLivePagesInBrowser(t *testing.T) {
	mark := sharedDir(t)
	c := newClusterWith(t, clusterOptions{slots: 2, env: []string{"MARK=" + mark}, config: "keep_passed_logs = true\n"})
	checkLivePages(t, c, mark, "")
}

// The same on the production stack (MySQL, beanstalkd, S3, a slave
// process that heartbeats over HTTP): the tails travel as JSON.
func TestLivePagesInBrowserProduction(t *testing.T) {
	mark := sharedDir(t)
	s := newStackWith(t, stackOptions{slaves: 1, slots: 2, config: "keep_passed_logs = true\n", slaveEnv: []string{"MARK=" + mark}})
	checkLivePages(t, s.cluster, mark, "production-")
}

// checkLivePages runs a job of three tasks on c, whose two slots run them
// (tasks find mark through $MARK), and checks its pages in a browser; the
// screenshots' names start with shots.
func checkLivePages(t *testing.T, c *cluster, mark, shots string) {
	b := browsertest.New(t, 3*time.Minute)
	c.writeInputs(map[string]string{
		"follow": followScript,
		"evil":   `echo "<script>document.title='pwned'</script><img src=x onerror=\"document.title='pwned'\">" >&2; exit 2`,
	})
	const hostile = `evil <img src=x onerror="document.title='pwned'">`
	tasks := []jobTask{
		{IsolateHash: c.archive("follow", "ARG=finish1"), Description: "follow <b>me</b>"},
		{IsolateHash: c.archive("evil", "ARG="), Description: hostile},
		{IsolateHash: c.archive("follow", "ARG=finish2"), Description: "second"},
	}
	if code, _, stderr := c.run("submit", "--no-wait", c.writeJob("live.json", tasks)); code != 0 {
		t.Fatalf("submit: %d %s", code, stderr)
	}
	job := lastJob(t, c)
	attempt := func(desc string) protocol.Attempt {
		var l protocol.AttemptList
		c.get("/api/v1/jobs/"+url.PathEscape(job)+"/tasks", &l)
		for _, a := range l.Tasks {
			if a.Description == desc {
				return a
			}
		}
		return protocol.Attempt{}
	}
	waitFor(t, time.Minute, "the evil task to fail and the other two to run", func() bool {
		return attempt(hostile).State == "failed" && attempt("follow <b>me</b>").State == "running" && attempt("second").State == "running"
	})
	follow := attempt("follow <b>me</b>")
	logURL := func(a protocol.Attempt, log string) string {
		return c.url + "/view_log?" + url.Values{"job_id": {job}, "task_id": {a.TaskID}, "attempt": {fmt.Sprint(a.Attempt)}, "log": {log}}.Encode()
	}
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

	// The trace of the running job.
	b.Do(chromedp.Navigate(c.url+"/trace?job_id="+url.QueryEscape(job)), chromedp.WaitVisible(chromedp.CSS(".bar.task-running")))
	if n := count(".trace-row:not(.axis)"); n != 2 {
		t.Errorf("%d lanes, want one per slot that ran a task (2)", n)
	}
	if n, ticks := count(".boundline"), count(".tick"); n != 2 || ticks < 2 || !strings.Contains(b.Text("#trace-summary"), "lower bound") {
		t.Errorf("trace: %d bound lines (one per lane), %d ticks: %q", n, ticks, b.Text("#trace-summary"))
	}
	if title := eval(`document.querySelector(".bar.task-failed").title`); !strings.Contains(title, hostile) || !strings.Contains(title, "exit 2") {
		t.Errorf("failed bar's title = %q", title)
	}
	b.Screenshot(shots + "trace-running")
	b.Do(chromedp.Click(chromedp.CSS("#trace-wide")), chromedp.WaitVisible(chromedp.CSS(".trace.wide")))
	b.Screenshot(shots + "trace-wide")

	// The slaves page: both slots, one running the follower.
	b.Do(chromedp.Navigate(c.url+"/slaves"), chromedp.WaitVisible(chromedp.CSS("#fleet")))
	fleet := b.Text("#fleet")
	for _, want := range []string{"alive", "follow <b>me</b>", "second", "2 of 2 slots busy"} {
		if !strings.Contains(fleet, want) {
			t.Errorf("slaves page lacks %q:\n%s", want, fleet)
		}
	}
	if q := b.Text("#queue"); !strings.Contains(q, "ready") || !strings.Contains(q, "oldest waiting") {
		t.Errorf("queue figures: %q", q)
	}
	// The page refreshes itself: a heartbeat after the tasks fetched their
	// inputs tells how many were in the cache.
	waitFor(t, time.Minute, "the slaves page to show the cache's hit rate", func() bool {
		return strings.Contains(b.Text("#fleet"), "% of input items found in it")
	})
	b.Screenshot(shots + "slaves")

	// The follower's log, live: lines arrive without a reload.
	b.Do(chromedp.Navigate(logURL(follow, "stdout")), chromedp.WaitVisible(chromedp.CSS("#log-live")))
	eval(`window.stillHere = "yes"`)
	first, runtime := count("#log span[data-n]"), b.Text("#log-runtime")
	waitFor(t, time.Minute, "new lines on the followed log", func() bool { return count("#log span[data-n]") >= first+3 })
	if eval(`window.stillHere`) != "yes" {
		t.Error("the page reloaded to show new lines")
	}
	if now := b.Text("#log-runtime"); now == runtime {
		t.Errorf("the runtime stays %s while the task runs", now)
	}
	if got := strings.TrimSpace(b.Text("#L1")); got != "line 1 <b>tag</b>" {
		t.Errorf("line 1 = %q", got)
	}
	if n := count("#log b"); n != 0 {
		t.Errorf("%d <b> elements made from the task's output", n)
	}
	b.Screenshot(shots + "log-following")
	if err := os.WriteFile(filepath.Join(mark, "finish1"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The run ends: the page shows the stored log (kept though it passed).
	waitFor(t, time.Minute, "the stored log to replace the live one", func() bool {
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`document.querySelectorAll("#log-raw").length == 1 && document.readyState == "complete"`))
		return err == nil && ok
	})
	if st := b.Text("#log-state"); st != "passed" {
		t.Errorf("state after the end = %q", st)
	}
	if all := b.Text("#log"); !strings.Contains(all, "the end") || !strings.HasPrefix(all, "line 1 <b>tag</b>") {
		t.Errorf("stored log:\n%s", all)
	}
	b.Screenshot(shots + "log-stored")

	// The evil task's stderr and name are text, and run nothing.
	b.Do(chromedp.Navigate(logURL(attempt(hostile), "stderr")), chromedp.WaitVisible(chromedp.CSS("#L1")))
	if got := b.Text("#L1"); !strings.HasPrefix(got, "<script>document.title='pwned'</script>") {
		t.Errorf("evil stderr shows %q", got)
	}
	if h1 := b.Text("h1"); h1 != hostile {
		t.Errorf("heading = %q", h1)
	}
	if title := eval("document.title"); title == "pwned" || count("#log img, h1 img, script:not([src])") != 0 {
		t.Errorf("hostile text ran or made elements: title %q", title)
	}
	b.Screenshot(shots + "log-escaped")

	// The trace of the job, still running its second task, follows it to
	// its end without a reload, and then stops polling.
	b.Do(chromedp.Navigate(c.url+"/trace?job_id="+url.QueryEscape(job)), chromedp.WaitVisible(chromedp.CSS(".bar.task-running")))
	eval(`window.stillHere = "yes"`)
	if count("main[data-live-job]") != 1 {
		t.Error("the trace of a running job does not poll")
	}
	if err := os.WriteFile(filepath.Join(mark, "finish2"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the trace to show the job's end", func() bool {
		return count(".bar.task-running") == 0 && count("main[data-live-job]") == 0
	})
	if eval(`window.stillHere`) != "yes" || count(".bar.task-passed") != 2 {
		t.Errorf("the trace reloaded, or shows %d passed bars", count(".bar.task-passed"))
	}
	b.Screenshot(shots + "trace-finished")

	// A bar opens its attempt's log.
	// (The failed run is a sliver that the next run on its slot covers:
	// the follower's bar, alone on its lane, is the one clicked.)
	b.Do(chromedp.Click(chromedp.CSS(`.bar[title^="follow <b>me"]`)))
	// A click does not wait for the page it opens to load.
	waitFor(t, time.Minute, "the log page to load", func() bool {
		ok, err := chromedp.Run(b.Ctx, chromedp.Evaluate[bool](`location.pathname == "/view_log" && document.readyState == "complete"`))
		return err == nil && ok
	})
	if loc, _ := chromedp.Run(b.Ctx, chromedp.Location()); !strings.Contains(loc, "task_id="+url.QueryEscape(follow.TaskID)) || !strings.Contains(b.Text("#log"), "the end") {
		t.Errorf("the follower's bar led to %s, which shows %q", loc, b.Text("#log"))
	}
	b.AssertLocalOnly()
}
