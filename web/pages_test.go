package web

import (
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

func TestOutcomeInWords(t *testing.T) {
	code := func(n int) *int { return &n }
	for _, tc := range []struct {
		a    model.Attempt
		want string
	}{
		{model.Attempt{State: model.Failed, ExitCode: code(1)}, "exit 1"},
		{model.Attempt{State: model.Failed, ExitCode: code(-11)}, "killed by SIGSEGV"},
		{model.Attempt{State: model.Failed, ExitCode: code(-6)}, "killed by SIGABRT"},
		{model.Attempt{State: model.Failed, ExitCode: code(-40)}, "killed by signal 40"},
		{model.Attempt{State: model.TimedOut, ExitCode: code(-9), Timeout: 600 * time.Second}, "timed out after 600 s"},
		{model.Attempt{State: model.TimedOut, Timeout: 1500 * time.Millisecond}, "timed out after 1.5 s"},
		{model.Attempt{State: model.InfraFailed, Error: "inputs missing: abc"}, "infra failure: inputs missing: abc"},
		{model.Attempt{State: model.Canceled}, "canceled"},
		{model.Attempt{State: model.Passed, ExitCode: code(0)}, "passed"},
		{model.Attempt{State: model.Queued, Runs: 1}, "queued again after a lost run"},
		{model.Attempt{State: model.Running}, "running"},
	} {
		if got := outcome(tc.a); got != tc.want {
			t.Errorf("outcome(%+v) = %q, want %q", tc.a, got, tc.want)
		}
	}
}

func TestRoughDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 850 * time.Millisecond: "850ms", 12345 * time.Millisecond: "12.3s",
		245 * time.Second: "4m05s", 130 * time.Minute: "2h10m",
	} {
		if got := roughDuration(d); got != want {
			t.Errorf("roughDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestLastLines(t *testing.T) {
	var b strings.Builder
	for i := range 50 {
		b.WriteString("line ")
		b.WriteString(strings.Repeat("x", i))
		b.WriteString("\n")
	}
	got, n := lastLines([]byte(b.String()), 30, false)
	if n != 30 || !strings.HasPrefix(got, "line "+strings.Repeat("x", 20)+"\n") || strings.HasSuffix(got, "\n") {
		t.Errorf("last 30 of 50: %d lines %q", n, got)
	}
	if got, n := lastLines([]byte("half a line\nwhole\n"), 30, true); n != 1 || got != "whole" {
		t.Errorf("a cut start: %d %q", n, got)
	}
	if got, n := lastLines([]byte("a\xffb\n"), 30, false); n != 1 || got != "a\uFFFDb" {
		t.Errorf("invalid UTF-8: %q", got)
	}
	if _, n := lastLines([]byte("\n\n"), 30, false); n != 0 {
		t.Errorf("an empty log has %d lines", n)
	}
}

func TestFlakeRateAndTrend(t *testing.T) {
	at := time.Unix(1_700_000_000, 0)
	run := func(row int64, s model.State, secs int) model.Attempt {
		return model.Attempt{TaskRow: row, State: s, StartedAt: at, FinishedAt: at.Add(time.Duration(secs) * time.Second)}
	}
	// Newest first: task 2 failed then passed; task 1 passed; task 3 failed for good.
	h := summarize([]model.Attempt{run(3, model.Failed, 1), run(2, model.Passed, 4), run(2, model.Failed, 2), run(1, model.Passed, 8)})
	if h.Tasks != 3 || h.Flaky != 1 || h.Passed != 2 || h.Failed != 2 || h.Median != 4*time.Second || h.P90 != 8*time.Second {
		t.Errorf("summary %+v", h)
	}
	if len(h.Trend.Dots) != 4 || h.Trend.Dots[0].Y != 4 || h.Trend.Dots[0].Class != "dot-passed" || h.Trend.Max != 8*time.Second {
		t.Errorf("trend %+v: the oldest run, the longest, first and at the top", h.Trend)
	}
}
