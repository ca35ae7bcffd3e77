package cli

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

func exit(n int) *int { return &n }

// failedJob is a finished job of seven tests: one passed, one failed with
// an exit code and a long stderr, one killed by a signal, one timed out
// after a retry, one that could not run, one that wrote only stdout, and
// one flaky.
func failedJob(fm *fakeMaster) {
	att := func(task, desc string, n int, state string, code *int, dur float64, stderr string) protocol.Attempt {
		a := protocol.Attempt{TaskID: task, Attempt: n, Description: desc, State: state, ExitCode: code, DurationSeconds: dur}
		if stderr != "" {
			name := task + "." + string(rune('0'+n))
			fm.files[name] = stderr
			a.StderrLink = "http://master/files/" + name
		}
		return a
	}
	var long strings.Builder
	for i := range 3000 {
		long.WriteString("line " + strings.Repeat("x", i%7) + "\n")
	}
	long.WriteString("assertion failed: want 42\n\x1b[2Jgot 41\tdone\n")
	tasks := []protocol.Attempt{
		att("h.0", "passes", 0, "passed", exit(0), 1, ""),
		att("h.1", "fails", 0, "failed", exit(3), 2, long.String()),
		att("h.2", "crashes", 0, "failed", exit(-11), 2, "segfault here\n"),
		att("h.3", "hangs", 0, "timed_out", exit(-9), 30.04, ""),
		att("h.3", "hangs", 1, "timed_out", exit(-9), 30.01, "still hanging\n"),
		att("h.4", "no inputs", 0, "infra_failed", nil, 0, ""),
		att("h.6", "go test", 0, "failed", exit(1), 1, ""),
		att("h.5", "flaky", 0, "failed", exit(1), 1, "first try\n"),
		att("h.5", "flaky", 1, "passed", exit(0), 1, ""),
	}
	tasks[5].Error = "inputs abc are not on the isolate server"
	fm.files["h.6.stdout"] = "=== RUN TestX\n    x_test.go:9: want 1, got 2\n--- FAIL: TestX\nFAIL\n"
	tasks[6].StdoutLink = "http://master/files/h.6.stdout"
	c := model.Counts{TotalGroups: 7, FinishedGroups: 7, FailedGroups: 5, SucceededGroups: 2, FlakyGroups: 1, RetriedTasks: 2}
	fm.jobs["j1"] = &fakeJob{polls: []model.Counts{c}, tasks: tasks}
}

// A job that ends with failures is summed up: each failed test, how it
// ended, its attempts and the last lines of its stderr, made safe for a
// terminal; then the flaky ones and the job's page.
func TestSummarySaysWhatFailed(t *testing.T) {
	fm := newFakeMaster()
	failedJob(fm)
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	if code := h.run("watch", "--tail", "2", "j1"); code != ExitFailed {
		t.Fatalf("exit %d, want 88; stderr %s", code, h.stderr.String())
	}
	_, summary, _ := strings.Cut(h.stdout.String(), "(2 retries)\n")
	want := `5 of 7 tests failed, 1 flaky:
FAIL fails: failed with exit code 3 (1 attempt)
    assertion failed: want 42
    ?[2Jgot 41    done
FAIL crashes: killed by signal SIGSEGV (11) (1 attempt)
    segfault here
FAIL hangs: timed out after 30.0 s (2 attempts)
    still hanging
FAIL no inputs: infra failure: inputs abc are not on the isolate server (1 attempt)
FAIL go test: failed with exit code 1 (1 attempt)
    --- FAIL: TestX
    FAIL
FLAKY flaky: passed on attempt 2 of 2 after it failed with exit code 1
Details: http://master/job?job_id=j1
`
	if summary != want {
		t.Errorf("summary:\n%s\nwant:\n%s", summary, want)
	}
	// Only the end of the long stderr was asked for.
	for _, r := range fm.requests {
		if strings.HasPrefix(r, "GET /files/") && !strings.Contains(r, "h.") {
			t.Errorf("unexpected request %s", r)
		}
	}

	// --tail 0 prints no stderr.
	if code := h.run("watch", "--tail", "0", "j1"); code != ExitFailed || strings.Contains(h.stdout.String(), "segfault") {
		t.Errorf("--tail 0: exit %d, stdout:\n%s", code, h.stdout.String())
	}
	if code := h.run("watch", "--tail", "-1", "j1"); code != 1 || !strings.Contains(h.stderr.String(), "--tail -1") {
		t.Errorf("--tail -1: exit %d, stderr %s", code, h.stderr.String())
	}
}

// A canceled job says so, rather than counting its stopped tests as
// failed; its real failures are still listed.
func TestSummaryOfACanceledJob(t *testing.T) {
	fm := newFakeMaster()
	c := model.Counts{TotalGroups: 3, FinishedGroups: 3, FailedGroups: 3, CanceledGroups: 2}
	fm.jobs["j1"] = &fakeJob{polls: []model.Counts{c}, canceled: true, tasks: []protocol.Attempt{
		{TaskID: "h.0", Description: "broken", State: "failed", ExitCode: exit(1)},
		{TaskID: "h.1", Description: "stopped", State: "canceled"},
		{TaskID: "h.2", Description: "never ran", State: "canceled"},
	}}
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	if code := h.run("watch", "j1"); code != ExitFailed {
		t.Fatalf("exit %d, want 88", code)
	}
	out := h.stdout.String()
	for _, want := range []string{
		" 3/3 tests complete (1 failed) (canceled)\n",
		"Job j1 was canceled: 1/3 tests complete, 2 stopped or never run, 1 failed before\nFAIL broken: failed with exit code 1 (1 attempt)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "3 failed") || strings.Contains(out, "FAIL stopped") {
		t.Errorf("canceled tests counted as failures:\n%s", out)
	}
}

func TestOutcome(t *testing.T) {
	for _, tt := range []struct {
		a    protocol.Attempt
		want string
	}{
		{protocol.Attempt{State: "failed", ExitCode: exit(2)}, "failed with exit code 2"},
		{protocol.Attempt{State: "failed", ExitCode: exit(-6)}, "killed by signal SIGABRT (6)"},
		{protocol.Attempt{State: "failed", ExitCode: exit(-40)}, "killed by signal 40"},
		{protocol.Attempt{State: "failed", Error: "lost"}, "failed: lost"},
		{protocol.Attempt{State: "timed_out", DurationSeconds: 3.04}, "timed out after 3.0 s"},
		{protocol.Attempt{State: "infra_failed"}, "infra failure: no reason given"},
		{protocol.Attempt{State: "infra_failed", Error: "disk\x1b[31m full\n"}, "infra failure: disk?[31m full?"},
		{protocol.Attempt{State: "canceled"}, "canceled"},
	} {
		if got := outcome(tt.a); got != tt.want {
			t.Errorf("outcome(%+v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}

func TestPrintable(t *testing.T) {
	for in, want := range map[string]string{
		"plain":            "plain",
		"\x1b]0;title\x07": "?]0;title?",
		"bad \xff utf8":    "bad \ufffd utf8",
		"tab\there":        "tab    here",
		"rtl \u202e trick": "rtl ? trick",
	} {
		if got := printable(in, 20); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
	if got := printable(strings.Repeat("a", 12), 10); got != "aaaaaaaaaa..." {
		t.Errorf("cut = %q", got)
	}
}

func TestTasksCommand(t *testing.T) {
	fm := newFakeMaster()
	failedJob(fm)
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	if code := h.run("tasks", "j1", "--status", "timed_out"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	want := "TASK  ATTEMPT  STATE      EXIT  RUNTIME  DESCRIPTION\n" +
		"h.3   0        timed_out  -9    30s      hangs\n" +
		"h.3   1        timed_out  -9    30s      hangs\n"
	if h.stdout.String() != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", h.stdout.String(), want)
	}
	if last := fm.requests[len(fm.requests)-1]; last != "GET /api/v1/jobs/j1/tasks?status=timed_out" {
		t.Errorf("asked %s", last)
	}
	os.WriteFile(h.lastJobPath(), []byte("j1"), 0o644)
	if code := h.run("tasks", "--json"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	var got protocol.AttemptList
	if err := json.Unmarshal(h.stdout.Bytes(), &got); err != nil || len(got.Tasks) != 9 || got.Tasks[1].Description != "fails" || *got.Tasks[1].ExitCode != 3 {
		t.Errorf("--json: %v %+v", err, got)
	}
	if code := h.run("jobs", "-o", "json"); code != 0 {
		t.Fatalf("jobs: exit %d: %s", code, h.stderr.String())
	}
	var jobs protocol.JobList
	if err := json.Unmarshal(h.stdout.Bytes(), &jobs); err != nil || len(jobs.Jobs) != 1 || jobs.Jobs[0].ID != "j1" || jobs.Jobs[0].FailedGroups != 5 {
		t.Errorf("jobs --json: %v %+v", err, jobs)
	}
}

// --fail-fast cancels the job once a test has failed for good, and no
// sooner; the job then ends canceled with exit 88.
func TestFailFastCancels(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fm := newFakeMaster()
		fm.jobs["j1"] = &fakeJob{polls: []model.Counts{counts(4, 0, 0, 0), counts(4, 1, 0, 1), counts(4, 2, 1, 1), counts(4, 2, 1, 1), counts(4, 4, 3, 1)}}
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
		if code := h.run("watch", "--fail-fast", "j1"); code != ExitFailed {
			t.Errorf("exit %d, want 88", code)
		}
		var polls []string
		for _, r := range fm.requests {
			if r == "GET /api/v1/jobs/j1" || r == "POST /api/v1/jobs/j1/cancel" {
				polls = append(polls, r)
			}
		}
		want := []string{"GET /api/v1/jobs/j1", "GET /api/v1/jobs/j1", "GET /api/v1/jobs/j1", "POST /api/v1/jobs/j1/cancel",
			"GET /api/v1/jobs/j1", "GET /api/v1/jobs/j1"}
		if strings.Join(polls, ",") != strings.Join(want, ",") {
			t.Errorf("requests:\n%s\nwant the cancel right after the first failure:\n%s", strings.Join(polls, "\n"), strings.Join(want, "\n"))
		}
		if !strings.Contains(h.stderr.String(), "--fail-fast: a test failed; canceling job j1") {
			t.Errorf("stderr = %q", h.stderr.String())
		}
	})
}

// Ctrl-C during submit cancels the job and watches it end (exit 130); a
// second Ctrl-C stops at once. Ctrl-C during watch only stops watching.
func TestInterrupt(t *testing.T) {
	running := counts(2, 0, 0, 0)
	for _, tt := range []struct {
		name        string
		args        []string
		second      bool
		wantCancel  bool
		wantStderr  string
		wantSummary bool
	}{
		{"submit", []string{"submit", "JOB"}, false, true, "Interrupted: canceling job", true},
		{"submit twice", []string{"submit", "JOB"}, true, true, "Stopped watching job", false},
		{"watch", []string{"watch", "j1"}, false, false, "Stopped watching; job j1 keeps running", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fm := newFakeMaster()
				fm.jobs["j1"] = &fakeJob{polls: []model.Counts{running}}
				h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
				ints := make(chan os.Signal, 1)
				h.env.Interrupts = ints
				ctx, cancel := context.WithCancelCause(t.Context())
				h.ctx = ctx
				done := make(chan struct{})
				defer func() { <-done }()
				go func() {
					defer close(done)
					time.Sleep(1200 * time.Millisecond)
					cancel(ErrInterrupted)
					if tt.second {
						time.Sleep(100 * time.Millisecond)
						ints <- os.Interrupt
						return
					}
					// The master ends the canceled job a second later.
					time.Sleep(time.Second)
					fm.locked(func() {
						for _, j := range fm.jobs {
							if j.canceled {
								j.polls = append(j.polls, model.Counts{TotalGroups: 2, FinishedGroups: 2, FailedGroups: 2, CanceledGroups: 2})
							}
						}
					})
				}()
				args := tt.args
				if args[len(args)-1] == "JOB" {
					args = append(args[:len(args)-1:len(args)-1], writeJobFile(t, goodJob))
				}
				if code := h.run(args...); code != ExitInterrupted {
					t.Errorf("exit %d, want 130; stderr %s", code, h.stderr.String())
				}
				canceled := false
				fm.locked(func() {
					for _, j := range fm.jobs {
						canceled = canceled || j.canceled
					}
				})
				if canceled != tt.wantCancel {
					t.Errorf("job canceled: %v, want %v", canceled, tt.wantCancel)
				}
				if !strings.Contains(h.stderr.String(), tt.wantStderr) {
					t.Errorf("stderr = %q, want %q", h.stderr.String(), tt.wantStderr)
				}
				if got := strings.Contains(h.stdout.String(), "was canceled"); got != tt.wantSummary {
					t.Errorf("stdout = %q; summary of the canceled job: %v, want %v", h.stdout.String(), got, tt.wantSummary)
				}
			})
		})
	}
}
