package cli

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/dist-test/dist_test/internal/protocol"
)

const (
	// summaryTests bounds the tests the summary details; the rest are
	// counted, and `dist_test tasks --status failed` lists them.
	summaryTests = 30
	// tailBytes is how much of the end of a stderr is read for its last
	// lines.
	tailBytes = 16 << 10
	lineRunes = 300
)

// testResult is one task (group of attempts) as the summary tells it.
type testResult struct {
	desc     string
	attempts []protocol.Attempt // in attempt order
}

func (t testResult) last() protocol.Attempt { return t.attempts[len(t.attempts)-1] }

func failedState(s string) bool {
	return s == "failed" || s == "timed_out" || s == "infra_failed" || s == "canceled"
}

// summary says what failed in a finished job that did not pass, and where
// to see more: each failed test with its outcome and attempts and the
// last lines of its stderr (or stdout when it wrote no stderr), then the
// flaky ones.
func (s *session) summary(ctx context.Context, j protocol.Job, o watchOptions) {
	if j.FailedGroups == 0 && !j.Canceled {
		return
	}
	w := s.env.Stdout
	atts, err := s.api.Tasks(ctx, j.ID, "")
	if err != nil {
		s.env.logf("warning: cannot list the job's tasks for a summary: %v", err)
		fmt.Fprintf(w, "Details: %s\n", s.dashboard(j.ID))
		return
	}
	var failed, flaky []testResult
	canceled := 0
	for _, t := range groupTests(atts) {
		last := t.last()
		switch {
		case last.State == "canceled" && !slices.ContainsFunc(t.attempts[:len(t.attempts)-1], func(a protocol.Attempt) bool { return failedState(a.State) }):
			canceled++ // never failed: stopped by the cancel
		case failedState(last.State):
			failed = append(failed, t)
		case last.State == "passed" && len(t.attempts) > 1:
			flaky = append(flaky, t)
		}
	}

	if j.Canceled {
		fmt.Fprintf(w, "Job %s was canceled: %d/%d tests complete, %d stopped or never run", j.ID, j.FinishedGroups-canceled, j.TotalGroups, canceled)
		if len(failed) > 0 {
			fmt.Fprintf(w, ", %d failed before", len(failed))
		}
		fmt.Fprintln(w)
	} else {
		fmt.Fprintf(w, "%d of %d tests failed", j.FailedGroups-j.CanceledGroups, j.TotalGroups)
		if j.FlakyGroups > 0 {
			fmt.Fprintf(w, ", %d flaky", j.FlakyGroups)
		}
		fmt.Fprintln(w, ":")
	}
	for i, t := range failed {
		if i == summaryTests {
			fmt.Fprintf(w, "... and %d more: dist_test tasks %s --status failed\n", len(failed)-i, j.ID)
			break
		}
		last := t.last()
		fmt.Fprintf(w, "%s %s: %s%s\n", s.red("FAIL"), printable(t.desc, lineRunes), outcome(last), attemptsNote(t))
		// A test that wrote no stderr may have said why on stdout, as Go
		// tests do.
		if log := cmp.Or(last.StderrLink, last.StdoutLink); o.tail > 0 && log != "" {
			s.printTail(ctx, log, o.tail)
		}
	}
	for i, t := range flaky {
		if i == summaryTests {
			fmt.Fprintf(w, "... and %d more flaky\n", len(flaky)-i)
			break
		}
		first := t.attempts[0]
		fmt.Fprintf(w, "%s %s: passed on attempt %d of %d after it %s\n", s.yellow("FLAKY"), printable(t.desc, lineRunes),
			len(t.attempts), len(t.attempts), outcome(first))
	}
	fmt.Fprintf(w, "Details: %s\n", s.dashboard(j.ID))
}

func (s *session) red(t string) string    { return s.colorize(red, t) }
func (s *session) yellow(t string) string { return s.colorize(yellow, t) }

func (s *session) colorize(esc, t string) string {
	e := s.env
	if e.terminal(e.Stdout) && e.getenv("TERM") != "dumb" && e.getenv("NO_COLOR") == "" {
		return esc + t + reset
	}
	return t
}

// groupTests gathers attempts by task, in task order.
func groupTests(atts []protocol.Attempt) []testResult {
	var out []testResult
	at := map[string]int{}
	for _, a := range atts {
		i, ok := at[a.TaskID]
		if !ok {
			i = len(out)
			at[a.TaskID] = i
			out = append(out, testResult{desc: a.Description})
		}
		out[i].attempts = append(out[i].attempts, a)
	}
	for _, t := range out {
		slices.SortFunc(t.attempts, func(a, b protocol.Attempt) int { return a.Attempt - b.Attempt })
	}
	return out
}

// outcome says how an attempt ended, in words.
func outcome(a protocol.Attempt) string {
	switch a.State {
	case "timed_out":
		return fmt.Sprintf("timed out after %.1f s", a.DurationSeconds)
	case "infra_failed":
		return "infra failure: " + printable(orNone(a.Error), lineRunes)
	case "canceled":
		return "canceled"
	case "failed":
		switch {
		case a.ExitCode != nil && *a.ExitCode < 0:
			return "killed by " + signalName(-*a.ExitCode)
		case a.ExitCode != nil:
			return fmt.Sprintf("failed with exit code %d", *a.ExitCode)
		case a.Error != "":
			return "failed: " + printable(a.Error, lineRunes)
		}
		return "failed"
	}
	return printable(a.State, 20)
}

func orNone(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// attemptsNote tells the attempts of a test that was tried more than once.
func attemptsNote(t testResult) string {
	if len(t.attempts) == 1 {
		return " (1 attempt)"
	}
	return fmt.Sprintf(" (%d attempts)", len(t.attempts))
}

// signalName names a signal by its Linux number, the slaves' platform.
func signalName(n int) string {
	names := map[int]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT", 7: "SIGBUS",
		8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM",
		24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"}
	if name, ok := names[n]; ok {
		return fmt.Sprintf("signal %s (%d)", name, n)
	}
	return fmt.Sprintf("signal %d", n)
}

// printTail prints the last n lines of a log, indented.
func (s *session) printTail(ctx context.Context, link string, n int) {
	data, err := s.api.Tail(ctx, link, tailBytes)
	if err != nil {
		fmt.Fprintf(s.env.Stdout, "    (cannot read its stderr: %v)\n", err)
		return
	}
	for _, l := range lastLines(data, n) {
		fmt.Fprintf(s.env.Stdout, "    %s\n", printable(l, lineRunes))
	}
}

// lastLines returns the last n lines of data, without their line ends. A
// first line that the tail cut in two is dropped, unless it is all there is.
func lastLines(data []byte, n int) []string {
	data = bytes.TrimRight(data, "\r\n")
	if len(data) == 0 {
		return nil
	}
	lines := strings.Split(string(data), "\n")
	if len(data) >= tailBytes && len(lines) > 1 {
		lines = lines[1:]
	}
	lines = lines[max(0, len(lines)-n):]
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines
}
