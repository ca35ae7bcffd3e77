package gotest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Attempt is one run of a task on the cluster, with its logs.
type Attempt struct {
	Description string // the task's
	Number      int    // 0 for the first
	State       string // passed, failed, timed_out, infra_failed, canceled
	ExitCode    *int
	Error       string // why the slave could not run it, if it says
	Duration    time.Duration
	Stdout      []byte // the binary's test2json output (the Output artifact)
	Stderr      []byte
}

// Status of a test after all its task's attempts.
const (
	Passed  = "passed"
	Failed  = "failed"
	Flaky   = "flaky" // failed, then passed on a retry of its task
	Skipped = "skipped"
)

// TestResult is one test (or subtest) of the run.
type TestResult struct {
	Package  string
	Name     string
	Status   string
	Elapsed  float64 // seconds, of its last run
	Output   string  // of its last run
	Failures []string
	// Failures holds the output of each failed run: the last run's for a
	// failed test, the earlier ones' for a flaky one.
	Attempts int // runs of the test
}

// PackageResult is what became of one package.
type PackageResult struct {
	Pkg      *Package
	Tests    []*TestResult
	Problems []string // reasons it failed other than failed tests
	Tasks    int
}

// Failed tells whether the package fails the run.
func (p *PackageResult) Failed() bool {
	return len(p.Problems) > 0 || slices.ContainsFunc(p.Tests, func(t *TestResult) bool { return t.Status == Failed })
}

// testRun is one test in one attempt.
type testRun struct {
	action  string // pass, fail or skip; "" when it started and never ended
	elapsed float64
	output  strings.Builder
}

// attemptRuns reads an attempt's events into the runs of its tests, in
// the order they started.
func attemptRuns(events []Event) (map[string]*testRun, []string) {
	runs := map[string]*testRun{}
	var order []string
	for _, e := range events {
		if e.Test == "" {
			continue
		}
		r := runs[e.Test]
		if r == nil {
			r = &testRun{}
			runs[e.Test] = r
			order = append(order, e.Test)
		}
		switch e.Action {
		case "pass", "fail", "skip":
			r.action, r.elapsed = e.Action, e.Elapsed
		case "output":
			r.output.WriteString(e.Output)
		}
	}
	return runs, order
}

// taskOutcome is what the attempts of one task say.
type taskOutcome struct {
	tests    map[string]*TestResult
	order    []string
	problems []string
	events   []Event
}

// judge reads the attempts of a task (in attempt order) into results per
// test, and the reasons beyond failed tests that the task fails.
func judge(ctx context.Context, t2j string, t Task, atts []Attempt) (taskOutcome, error) {
	out := taskOutcome{tests: map[string]*TestResult{}}
	pkg := t.Pkg.ImportPath
	if len(atts) == 0 {
		out.problems = append(out.problems, t.Description+": never ran")
		return out, nil
	}
	var lastRuns map[string]*testRun
	for i, a := range atts {
		events, err := toEvents(ctx, t2j, pkg, a.Stdout)
		if err != nil {
			return out, err
		}
		out.events = append(out.events, events...)
		runs, order := attemptRuns(events)
		crash := crashNote(a)
		for _, name := range order {
			r := runs[name]
			tr := out.tests[name]
			if tr == nil {
				tr = &TestResult{Package: pkg, Name: name}
				out.tests[name] = tr
				out.order = append(out.order, name)
			}
			tr.Attempts++
			text := r.output.String()
			tr.Elapsed = r.elapsed
			switch r.action {
			case "pass":
				if tr.Status == Failed || tr.Status == Flaky {
					tr.Status = Flaky
				} else {
					tr.Status = Passed
				}
			case "skip":
				tr.Status = Skipped
			default: // failed, or never ended: the binary died in it
				if r.action == "" || panicLine(a.Stderr) != "" {
					text += crash
				}
				if r.action == "" {
					// go test -json ends such a test with a fail event too.
					out.events = append(out.events, Event{Action: "fail", Package: pkg, Test: name})
				}
				tr.Status = Failed
				tr.Failures = append(tr.Failures, text)
			}
			tr.Output = text
		}
		if i == len(atts)-1 {
			lastRuns = runs
		}
	}
	last := atts[len(atts)-1]
	failing := false
	for _, r := range lastRuns {
		failing = failing || r.action != "pass" && r.action != "skip"
	}
	if last.State != "passed" && !failing {
		out.problems = append(out.problems, fmt.Sprintf("%s: %s with no failing test%s", t.Description, ended(last), oneLine(crashNote(last))))
	} else if p := panicLine(last.Stderr); p != "" {
		out.problems = append(out.problems, fmt.Sprintf("%s: %s", t.Description, p))
	}
	for _, name := range t.Tests {
		if lastRuns[name] == nil {
			out.problems = append(out.problems, fmt.Sprintf("%s: %s was listed but did not run", t.Description, name))
		}
	}
	return out, nil
}

// ended says how an attempt ended, in words.
func ended(a Attempt) string {
	switch {
	case a.State == "timed_out":
		return fmt.Sprintf("timed out after %s", a.Duration.Round(time.Second))
	case a.State == "infra_failed":
		return "could not run (" + a.Error + ")"
	case a.State == "canceled":
		return "was canceled"
	case a.ExitCode != nil:
		return fmt.Sprintf("exited with code %d", *a.ExitCode)
	case a.Error != "":
		return "failed: " + a.Error
	}
	return a.State
}

// crashNote is the end of an attempt's stderr, where a panic or a fatal
// error is written, to show with the test that was running.
func crashNote(a Attempt) string {
	if len(a.Stderr) == 0 {
		return ""
	}
	return "\n[stderr]\n" + lastLines(string(a.Stderr), 20)
}

// panicLine is the first line of a panic or fatal error in stderr.
func panicLine(stderr []byte) string {
	for line := range strings.SplitSeq(string(stderr), "\n") {
		if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
			return line
		}
	}
	return ""
}

// oneLine shortens a note to its first line that says something.
func oneLine(note string) string {
	if p := panicLine([]byte(note)); p != "" {
		return ": " + p
	}
	for line := range strings.SplitSeq(note, "\n") {
		if line = strings.TrimSpace(line); line != "" && line != "[stderr]" {
			return ": " + line
		}
	}
	return ""
}
