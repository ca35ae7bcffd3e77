package cli

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// The ETA shares the expected work left among the slots in use: two
// running tests expected to take 60 s that have run 20 s, and two queued
// ones of 30 s, are (40+40+30+30)/2 = 70 s of work on 2 slots.
func TestProgressETAFromExpectedRuntimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fm := newFakeMaster()
		c := counts(5, 1, 0, 0)
		c.RunningTasks = 4 // not finished: running or queued
		fm.jobs["j1"] = &fakeJob{polls: []model.Counts{c, counts(5, 5, 0, 0)}, tasks: []protocol.Attempt{
			{TaskID: "h.0", State: "passed"},
			{TaskID: "h.1", State: "running", ExpectedSeconds: 60, DurationSeconds: 20},
			{TaskID: "h.2", State: "running", ExpectedSeconds: 60, DurationSeconds: 20},
			{TaskID: "h.3", State: "queued", ExpectedSeconds: 30},
			{TaskID: "h.4", State: "queued", ExpectedSeconds: 30},
		}}
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
		h.run("watch", "j1")
		if first := strings.SplitN(h.stdout.String(), "\n", 2)[0]; first != " 0.0s\t 1/5 tests complete, 2 running, ETA 1m10s" {
			t.Errorf("first line %q", first)
		}
	})
}

// Without a terminal a line comes when the counts change and at least
// every 30 s, so that CI systems do not take the job for hung.
func TestProgressHeartbeatInLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fm := newFakeMaster()
		polls := make([]model.Counts, 0, 200)
		for range 190 { // 95 s of the same counts
			polls = append(polls, counts(2, 1, 0, 0))
		}
		fm.jobs["j1"] = &fakeJob{polls: append(polls, counts(2, 2, 0, 0))}
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
		if code := h.run("watch", "j1"); code != 0 {
			t.Fatalf("exit %d", code)
		}
		var stamps []string
		for _, l := range strings.Split(strings.TrimSpace(h.stdout.String()), "\n") {
			stamps = append(stamps, strings.Fields(l)[0])
		}
		if got := strings.Join(stamps, " "); got != "0.0s 30.0s 60.0s 90.0s 95.0s" {
			t.Errorf("lines at %s, want every 30 s and the end:\n%s", got, h.stdout.String())
		}
		// The running attempts are read again only when the counts change,
		// the queued ones every 10 s: not at each of the 190 polls.
		reads := map[string]int{}
		for _, r := range fm.requests {
			reads[r]++
		}
		if n := reads["GET /api/v1/jobs/j1/tasks?status=running"]; n != 1 {
			t.Errorf("running attempts read %d times, want once", n)
		}
		if n := reads["GET /api/v1/jobs/j1/tasks?status=queued"]; n != 10 {
			t.Errorf("queued attempts read %d times in 95 s, want 10", n)
		}
	})
}

// NO_COLOR keeps the bar and redrawing but drops colour; TERM=dumb drops
// both, as in a log.
func TestProgressNoColorAndDumbTerminal(t *testing.T) {
	for _, tt := range []struct {
		name, env, value string
		redraw           bool
	}{
		{"NO_COLOR", "NO_COLOR", "1", true},
		{"TERM=dumb", "TERM", "dumb", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fm := newFakeMaster()
				fm.jobs["j1"] = &fakeJob{polls: []model.Counts{counts(2, 0, 0, 0), counts(2, 2, 1, 0)}}
				h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
				h.tty = true
				h.vars[tt.env] = tt.value
				h.run("watch", "j1")
				out := h.stdout.String()
				if strings.Contains(out, "\x1b[3") {
					t.Errorf("colour in %q", out)
				}
				if strings.Contains(out, lineAbove) != tt.redraw || strings.Contains(out, "[===") != tt.redraw {
					t.Errorf("redraw and bar: %q, want %v", out, tt.redraw)
				}
			})
		})
	}
}

// A read-only command against an address where nothing listens fails at
// once, naming the master; --retry-for bounds how long a watch retries.
func TestDeadMaster(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	for _, args := range [][]string{{"status", "j"}, {"jobs"}, {"tasks", "j"}, {"fetch", "-l", "j"}} {
		h := newHarness(t, dead.URL, nil)
		start := time.Now()
		code := h.run(args...)
		if code != 1 || !strings.Contains(h.stderr.String(), "no master answers at "+dead.URL) {
			t.Errorf("%v: exit %d, stderr %q", args, code, h.stderr.String())
		}
		if strings.Contains(h.stderr.String(), "retrying") {
			t.Errorf("%v retried: %s (%s)", args, h.stderr.String(), time.Since(start))
		}
	}
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, dead.URL, nil)
		start := time.Now()
		code := h.run("watch", "--retry-for", "20s", "j")
		if code != 1 || !strings.Contains(h.stderr.String(), "gave up after") || time.Since(start) > 20*time.Second || time.Since(start) < 5*time.Second {
			t.Errorf("watch: exit %d after %s, stderr %q", code, time.Since(start), h.stderr.String())
		}
	})
	h := newHarness(t, dead.URL, nil)
	if code := h.run("watch", "--retry-for", "-1s", "j"); code != 1 || !strings.Contains(h.stderr.String(), "must not be negative") {
		t.Errorf("negative --retry-for: exit %d, %q", code, h.stderr.String())
	}
}

// Fields of a job file that nothing reads are warned about with the field
// meant, once per field however many tasks have it; the job goes on.
func TestSubmitWarnsOfUnknownFields(t *testing.T) {
	fm := newFakeMaster()
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	job := writeJobFile(t, `{"tasks": [
  {"isolate_hash": "`+hashA+`", "description": "a", "timout": 30},
  {"isolate_hash": "`+hashA+`", "description": "b", "timout": 30, "max_retires": 2, "colour": "red"}]}`)
	if code := h.run("submit", "--no-wait", job); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	want := "warning: " + job + `: 2 tasks, the first task 0: unknown field "timout" (did you mean "timeout"?) is ignored` + "\n" +
		"warning: " + job + `: task 1: unknown field "colour" is ignored` + "\n" +
		"warning: " + job + `: task 1: unknown field "max_retires" (did you mean "max_retries"?) is ignored` + "\n"
	if got := h.stderr.String(); !strings.HasPrefix(got, want) {
		t.Errorf("stderr:\n%s\nwant it to start with:\n%s", got, want)
	}
	if len(fm.created) != 1 {
		t.Errorf("%d jobs created, want 1", len(fm.created))
	}
}
