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

// hostile is a description a user could give a task to break a page.
const hostile = `<script>alert(1)</script>"><img src=x onerror=alert(2)>`

var browser = http.Header{"Accept": {"text/html,application/xhtml+xml"}}

// TestLogPageFollowsARun runs one attempt by hand as a slave would: its
// log page follows the tails the heartbeats carry, escapes the task's
// output and description, and shows the stored log once it ends; the
// original's /view_log answer is unchanged for clients that are not
// browsers.
func TestLogPageFollowsARun(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	doc := `{"tasks": [{"isolate_hash": "` + h.digest + `", "description": ` + jsonString(hostile) + `}]}`
	if code, body := h.form("/submit_job", url.Values{"job_id": {"live.1"}, "job_json": {doc}}); code != 200 {
		t.Fatalf("submit_job: %d %s", code, body)
	}
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "host<b>1", Slots: 2, Version: "v9"})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := h.q.NewConsumer(ctx)
	defer c.Close()
	res, e := h.reserve(c)
	st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, Slot: 1, EntryID: res.ID, Entry: e})
	if err != nil {
		t.Fatal(err)
	}
	q := url.Values{"job_id": {"live.1"}, "task_id": {st.Spec.TaskID}, "attempt": {"0"}, "log": {"stdout"}}
	page := func() string {
		t.Helper()
		code, body, _ := h.doWith(browser, "GET", "/view_log?"+q.Encode(), "", "")
		if code != 200 {
			t.Fatalf("log page: %d %s", code, body)
		}
		return body
	}
	tail := func(from int) (ans struct {
		State   string
		Running bool
		Offset  int64
		Size    int64
		Text    string
	}) {
		t.Helper()
		code, body, _ := h.do("GET", "/view_log/tail?"+q.Encode()+"&from="+itoa(from), "", "")
		if code != 200 || json.Unmarshal([]byte(body), &ans) != nil {
			t.Fatalf("tail: %d %s", code, body)
		}
		return ans
	}
	beat := func(tails ...protocol.Tail) {
		t.Helper()
		if _, err := h.slave.Heartbeat(ctx, reg.SlaveID, protocol.Heartbeat{Running: []string{st.Lease}, Tails: tails}); err != nil {
			t.Fatal(err)
		}
	}

	body := page()
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;&#34;&gt;&lt;img src=x onerror=alert(2)&gt;", `id="log-state" class="state task-running">running`,
		`data-tail="/view_log/tail?`, "live-log.js", `href="/job?job_id=live.1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("running log page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Errorf("the description is not escaped:\n%s", body)
	}

	// The slave sends the run's output; a tail of a forged lease is dropped.
	beat(protocol.Tail{Lease: st.Lease, Stdout: protocol.TailChunk{Data: []byte("one <script>x()</script>\ntw")}},
		protocol.Tail{Lease: "forged-lease", Stdout: protocol.TailChunk{Data: []byte("evil\n")}})
	if a := tail(0); !a.Running || a.Text != "one <script>x()</script>\ntw" || a.Size != 27 {
		t.Errorf("tail from 0: %+v", a)
	}
	body = page()
	if !strings.Contains(body, `<span id="L1" data-n="1">one &lt;script&gt;x()&lt;/script&gt;`+"\n</span>") ||
		!strings.Contains(body, `<span id="L2" data-n="2">tw</span>`) || strings.Contains(body, "evil") {
		t.Errorf("log page while running:\n%s", body)
	}
	beat(protocol.Tail{Lease: st.Lease, Stdout: protocol.TailChunk{Offset: 27, Data: []byte("o\n")}})
	if a := tail(27); a.Text != "o\n" || a.Offset != 27 || a.Size != 29 {
		t.Errorf("tail from 27: %+v", a)
	}

	// A slave that sends far more than the bound: the master keeps the end.
	huge := strings.Repeat("y", 1<<20) + "\nlast\n"
	beat(protocol.Tail{Lease: st.Lease, Stdout: protocol.TailChunk{Offset: 29, Data: []byte(huge)}})
	if a := tail(0); len(a.Text) != protocol.TailBytes || !strings.HasSuffix(a.Text, "\nlast\n") || a.Size != int64(29+len(huge)) {
		t.Errorf("huge tail: %d bytes from %d of %d", len(a.Text), a.Offset, a.Size)
	}

	// The slaves page shows the slot's run, escaped, and the cache the
	// slave describes.
	if _, err := h.slave.Heartbeat(ctx, reg.SlaveID, protocol.Heartbeat{Running: []string{st.Lease},
		Cache: &protocol.CacheStats{Items: 3, Bytes: 2048, HotItems: 3, ColdItems: 1}}); err != nil {
		t.Fatal(err)
	}
	code, body, _ := h.doWith(browser, "GET", "/slaves", "", "")
	for _, want := range []string{"host&lt;b&gt;1", "v9", "1/2", "&lt;script&gt;alert(1)", `<td id="q-reserved">`,
		`<td class="cache">2.0 KiB in 3 items; 75% of input items found in it</td>`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("slaves page (%d) lacks %q", code, want)
		}
	}
	if strings.Contains(body, "<script>alert") {
		t.Error("slaves page: description not escaped")
	}

	// The run ends with its log stored: the page shows it, numbered.
	log := "first\n<script>stored()</script>\n"
	if err := h.slave.Upload(ctx, st.Lease, "stdout", strings.NewReader(log), int64(len(log))); err != nil {
		t.Fatal(err)
	}
	if _, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{ExitCode: 3, Outputs: []string{"stdout"}}); err != nil {
		t.Fatal(err)
	}
	if a := tail(0); a.Running || a.State != "failed" || a.Text != "" {
		t.Errorf("tail after the end: %+v", a)
	}
	body = page()
	for _, want := range []string{`<span id="L2" data-n="2">&lt;script&gt;stored()&lt;/script&gt;`, "(exit 3)", `id="log-raw" href="http://`, "failed"} {
		if !strings.Contains(body, want) {
			t.Errorf("finished log page lacks %q:\n%s", want, body)
		}
	}
	if strings.Contains(body, "live-log.js") || strings.Contains(body, "<script>stored") {
		t.Errorf("finished log page follows, or is not escaped:\n%s", body)
	}
	// Without Accept: text/html, /view_log answers as the original did.
	if code, body, hdr := h.do("GET", "/view_log?"+q.Encode(), "", ""); code != 200 || body != "<pre>first\n&lt;script&gt;stored()&lt;/script&gt;\n</pre>" ||
		!strings.Contains(hdr.Get("Vary"), "Accept") {
		t.Errorf("legacy view_log: %d %q", code, body)
	}

	// The trace draws the run and the bound, and escapes its name.
	code, body, _ = h.doWith(browser, "GET", "/trace?job_id=live.1", "", "")
	for _, want := range []string{`class="bar task-failed"`, "boundline", "lower bound", "host&lt;b&gt;1/1", `href="/view_log?attempt=0&amp;job_id=live.1`} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("trace (%d) lacks %q", code, want)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Error("trace: description not escaped")
	}
}

// TestLivePagesRefuseBadInput answers forged and missing ids, attempts and
// logs with the error they are, escaped, never a fault.
func TestLivePagesRefuseBadInput(t *testing.T) {
	h := newHarness(t)
	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{"/view_log?job_id=j&task_id=t&attempt=x&log=stdout", 400, "attempt must be a number"},
		{"/view_log?job_id=j&task_id=t&attempt=-1&log=stdout", 400, "attempt must be a number"},
		{"/view_log?job_id=j&task_id=t&attempt=99999999999999999999&log=stdout", 400, "attempt must be a number"},
		{"/view_log?job_id=%3Cscript%3E&task_id=t&attempt=0&log=stdout", 404, "not found"},
		{"/view_log?task_id=t&attempt=0", 404, "not found"},
		{"/view_log/tail?job_id=j&task_id=t&attempt=0&log=stdout&from=0", 404, "not found"},
		{"/view_log/tail?job_id=j&task_id=t&attempt=0&log=stdout&from=-5", 404, "not found"},
		{"/trace?job_id=%3Cscript%3Ealert(1)%3C/script%3E", 404, "not found"},
		{"/trace", 404, "not found"},
		{"/static/live-nothing.js", 404, ""},
		{"/static/../web.go", 404, ""},
		{"/static/", 404, ""},
	} {
		code, body, _ := h.doWith(browser, "GET", tc.path, "", "")
		if code != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("GET %s: %d %s; want %d saying %q", tc.path, code, clipTo(body, 300), tc.status, tc.says)
		}
		if strings.Contains(body, "<script>") {
			t.Errorf("GET %s: unescaped input in %s", tc.path, body)
		}
	}
	// An attempt that exists: a bad log name and a bad offset are refused.
	if code, body := h.form("/submit_job", url.Values{"job_id": {"bad.1"}, "job_json": {h.jobJSON(1, "")}}); code != 200 {
		t.Fatalf("submit_job: %d %s", code, body)
	}
	_, body, _ := h.do("GET", "/api/v1/jobs/bad.1/tasks", "", "")
	var list protocol.AttemptList
	if err := json.Unmarshal([]byte(body), &list); err != nil || len(list.Tasks) != 1 {
		t.Fatalf("tasks: %s", body)
	}
	base := "job_id=bad.1&task_id=" + url.QueryEscape(list.Tasks[0].TaskID)
	// Once in the queue, it is the attempt waiting longest.
	if _, err := h.m.FeedOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, body, _ := h.doWith(browser, "GET", "/slaves", "", ""); !strings.Contains(body, `<td id="q-ready">1</td>`) ||
		!strings.Contains(body, `<a href="/job?job_id=bad.1">bad.1</a> ta (attempt 0)`) || !strings.Contains(body, "No slave has registered.") {
		t.Errorf("slaves page with one attempt queued:\n%s", body)
	}
	for _, tc := range []struct {
		path   string
		status int
		says   string
	}{
		{"/view_log?" + base + "&attempt=0&log=%3Cb%3E", 400, "log must be stdout or stderr"},
		{"/view_log?" + base + "&attempt=0&log=stdout", 200, "has not started yet"},
		{"/view_log?" + base + "&attempt=1&log=stdout", 404, "not found"},
		{"/view_log/tail?" + base + "&attempt=0&log=stdout&from=-5", 400, "from must be a byte offset"},
		{"/view_log/tail?" + base + "&attempt=0&log=stdout&from=abc", 400, "from must be a byte offset"},
		{"/view_log/tail?" + base + "&attempt=0&log=x&from=0", 400, "log must be stdout or stderr"},
		{"/view_log/tail?" + base + "&attempt=0&log=stdout&from=0", 200, `"state":"queued","running":false`},
		{"/static/live-refresh.js", 200, "data-live-job"},
	} {
		code, body, _ := h.doWith(browser, "GET", tc.path, "", "")
		if code != tc.status || !strings.Contains(body, tc.says) {
			t.Errorf("GET %s: %d %s; want %d saying %q", tc.path, code, clipTo(body, 300), tc.status, tc.says)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func clipTo(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// TestLogPageShowsTheEndOfALongLog: past 4 MiB the page shows the log's
// end, numbered as the lines of the whole log, and says what it left out;
// a run of bytes that are not UTF-8 shows as one U+FFFD.
func TestLogPageShowsTheEndOfALongLog(t *testing.T) {
	h := newHarness(t)
	if code, body := h.form("/submit_job", url.Values{"job_id": {"long.1"}, "job_json": {h.jobJSON(1, "")}}); code != 200 {
		t.Fatalf("submit_job: %d %s", code, body)
	}
	st, _ := h.startNext()
	var b strings.Builder
	const lines = 50000 // of 100 bytes: 5,000,000 bytes
	for i := 1; i <= lines; i++ {
		fmt.Fprintf(&b, "%-99d\n", i)
	}
	b.WriteString("bad \xff\xfe bytes\n")
	h.failWithLog(st, b.String())
	q := url.Values{"job_id": {"long.1"}, "task_id": {st.Spec.TaskID}, "attempt": {"0"}, "log": {"stdout"}}
	code, body, _ := h.doWith(browser, "GET", "/view_log?"+q.Encode(), "", "")
	if code != 200 {
		t.Fatalf("log page: %d", code)
	}
	shown := strings.Count(body, `<span id="L`)
	// The last 4 MiB start inside line 8058: the page starts at 8059,
	// after 8058 lines of 100 bytes (786.9 KiB).
	if !strings.Contains(body, fmt.Sprintf(`data-n="%d">bad `+"\uFFFD"+` bytes`, lines+1)) ||
		!strings.Contains(body, `<pre id="log" class="log"><span id="L8059" data-n="8059">8059 `) ||
		!strings.Contains(body, "The first 786.9 KiB are not shown here: the raw link has the whole log.") {
		t.Errorf("%d lines shown; page starts:\n%s", shown, clipTo(body[strings.Index(body, "<pre"):], 600))
	}
	if shown < 41000 || shown > 42000 {
		t.Errorf("%d lines shown, want the last 4 MiB's (about 41,900)", shown)
	}
}
