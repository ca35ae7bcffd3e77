package gotest

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Report is what a run found, per test.
type Report struct {
	JobID    string
	Started  time.Time
	Packages []*PackageResult
	Tasks    int
	// Wall is the job's time from submission to its end; Busy sums the
	// runtimes of its attempts, and Longest is the longest of them.
	Wall, Busy, Longest time.Duration
	events              []Event
}

// judge reads every task's attempts into results per package and test.
func (r *Report) judge(ctx context.Context, t2j string, pkgs []*Package, tasks []Task, atts []Attempt) error {
	byDesc := map[string][]Attempt{}
	for _, a := range atts {
		byDesc[a.Description] = append(byDesc[a.Description], a)
	}
	results := map[*Package]*PackageResult{}
	for _, p := range pkgs {
		pr := &PackageResult{Pkg: p}
		results[p] = pr
		r.Packages = append(r.Packages, pr)
		r.events = append(r.events, Event{Action: "start", Package: p.ImportPath})
		switch {
		case p.BuildError != "":
			pr.Problems = append(pr.Problems, "build failed:\n"+p.BuildError)
			r.events = append(r.events, Event{Action: "output", Package: p.ImportPath, Output: p.BuildError + "\n"})
		case p.ListError != "":
			pr.Problems = append(pr.Problems, p.ListError)
			r.events = append(r.events, Event{Action: "output", Package: p.ImportPath, Output: p.ListError + "\n"})
		}
	}
	for _, t := range tasks {
		a := byDesc[t.Description]
		slices.SortFunc(a, func(x, y Attempt) int { return x.Number - y.Number })
		out, err := judge(ctx, t2j, t, a)
		if err != nil {
			return err
		}
		pr := results[t.Pkg]
		pr.Tasks++
		pr.Problems = append(pr.Problems, out.problems...)
		for _, name := range out.order {
			pr.Tests = append(pr.Tests, out.tests[name])
		}
		for _, e := range out.events {
			// Each task ends its package; the package's one end is written
			// once all its tasks are read.
			if e.Test == "" && e.Action != "output" {
				continue
			}
			r.events = append(r.events, e)
		}
	}
	for _, pr := range r.Packages {
		action := "pass"
		if pr.Failed() {
			action = "fail"
		}
		e := Event{Action: action, Package: pr.Pkg.ImportPath}
		if pr.Pkg.BuildError != "" {
			e.FailedBuild = pr.Pkg.ImportPath
		}
		r.events = append(r.events, e)
	}
	// Events of a package together, in the packages' order.
	pos := map[string]int{}
	for i, pr := range r.Packages {
		pos[pr.Pkg.ImportPath] = i
	}
	slices.SortStableFunc(r.events, func(a, b Event) int { return pos[a.Package] - pos[b.Package] })
	return nil
}

// record keeps the runtime of each top-level test that ended.
func (r *Report) record(h History) {
	for _, pr := range r.Packages {
		for _, t := range pr.Tests {
			if !strings.Contains(t.Name, "/") && t.Status != Skipped {
				h.set(pr.Pkg.ImportPath, t.Name, t.Elapsed)
			}
		}
	}
}

// Count counts the tests of a status.
func (r *Report) Count(status string) int {
	n := 0
	for _, pr := range r.Packages {
		for _, t := range pr.Tests {
			if t.Status == status {
				n++
			}
		}
	}
	return n
}

// Failed tells whether the run failed: a test failed, or a package
// failed otherwise.
func (r *Report) Failed() bool {
	return slices.ContainsFunc(r.Packages, (*PackageResult).Failed)
}

// Tests are all the tests of the run, by package and then name order.
func (r *Report) Tests() []*TestResult {
	var all []*TestResult
	for _, pr := range r.Packages {
		all = append(all, pr.Tests...)
	}
	return all
}

// WriteSummary says, for people, what failed and why: each failing test
// with its package and the last tail lines of its output, each flaky
// test, and each other reason a package failed; then the counts.
func (r *Report) WriteSummary(w io.Writer, tail int) {
	for _, pr := range r.Packages {
		tests := slices.Clone(pr.Tests)
		slices.SortStableFunc(tests, func(a, b *TestResult) int { return cmp.Compare(a.Name, b.Name) })
		for _, t := range tests {
			switch t.Status {
			case Failed:
				fmt.Fprintf(w, "FAIL %s %s (%.2fs)\n", pr.Pkg.ImportPath, t.Name, t.Elapsed)
				writeTail(w, t.Output, tail)
			case Flaky:
				fmt.Fprintf(w, "FLAKY %s %s: failed %d of %d runs, then passed\n", pr.Pkg.ImportPath, t.Name, len(t.Failures), t.Attempts)
			}
		}
		for _, p := range pr.Problems {
			first, rest, _ := strings.Cut(p, "\n")
			fmt.Fprintf(w, "FAIL %s: %s\n", pr.Pkg.ImportPath, first)
			writeTail(w, rest, tail)
		}
	}
	failedPkgs := 0
	for _, pr := range r.Packages {
		if pr.Failed() {
			failedPkgs++
		}
	}
	fmt.Fprintf(w, "%d tests: %d passed, %d failed, %d flaky, %d skipped; %d of %d packages failed; %d tasks",
		len(r.Tests()), r.Count(Passed), r.Count(Failed), r.Count(Flaky), r.Count(Skipped), failedPkgs, len(r.Packages), r.Tasks)
	if r.JobID != "" {
		fmt.Fprintf(w, " (job %s: %s from submission to end, %s of task runtime, the longest task %s)",
			r.JobID, r.Wall.Round(10*time.Millisecond), r.Busy.Round(10*time.Millisecond), r.Longest.Round(10*time.Millisecond))
	}
	fmt.Fprintln(w)
}

// writeTail writes the last n lines of text, indented, without the
// framing lines test2json keeps in a test's output.
func writeTail(w io.Writer, text string, n int) {
	var lines []string
	for l := range strings.SplitSeq(strings.TrimRight(text, "\n"), "\n") {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== RUN") || strings.HasPrefix(t, "=== PAUSE") || strings.HasPrefix(t, "=== CONT") {
			continue
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for _, l := range lines {
		fmt.Fprintf(w, "    %s\n", strings.TrimLeft(l, " "))
	}
}
