package gotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/isolate/archive"
)

// localCluster runs tasks here, one after the other, as a slave would:
// in the package's folder, with DIST_TEST_ATTEMPT set, retrying a failed
// task up to its MaxRetries. The end-to-end tests of cmd/dist_test run
// the same fixture on a real cluster.
type localCluster struct {
	trees map[string]archive.Tree
	runs  int // jobs run
	tasks []Spec
}

func (c *localCluster) Archive(_ context.Context, trees []archive.Tree) ([]string, error) {
	if c.trees == nil {
		c.trees = map[string]archive.Tree{}
	}
	digests := make([]string, len(trees))
	for i, t := range trees {
		digests[i] = fmt.Sprintf("tree-%d-%d", c.runs, i)
		c.trees[digests[i]] = t
	}
	return digests, nil
}

func (c *localCluster) Run(ctx context.Context, specs []Spec) (JobRun, error) {
	c.runs++
	c.tasks = specs
	run := JobRun{ID: "local-" + strconv.Itoa(c.runs)}
	for _, s := range specs {
		tree := c.trees[s.IsolateHash]
		if len(tree.Extra) != 1 {
			return run, fmt.Errorf("tree %s: want the binary alone outside the module, got %v", s.Description, tree.Extra)
		}
		var bin string
		for _, src := range tree.Extra {
			bin = src
		}
		for n := 0; n <= s.MaxRetries; n++ {
			ctx, cancel := context.WithTimeout(ctx, s.Timeout)
			// sh -c SCRIPT BINARY ARGS...: the binary with its output
			// captured here rather than in the module's folder.
			cmd := exec.CommandContext(ctx, bin, tree.Command[4:]...)
			cmd.Dir = filepath.Join(tree.Root, filepath.FromSlash(tree.RelativeCwd))
			cmd.Env = append(os.Environ(), "DIST_TEST_ATTEMPT="+strconv.Itoa(n))
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			start := time.Now()
			err := cmd.Run()
			cancel()
			a := Attempt{Description: s.Description, Number: n, State: "passed", Duration: time.Since(start),
				Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
			code := 0
			var exit *exec.ExitError
			switch {
			case errors.As(err, &exit):
				code = exit.ExitCode()
				a.State = "failed"
			case err != nil:
				return run, err
			}
			a.ExitCode = &code
			run.Attempts = append(run.Attempts, a)
			if code == 0 {
				break
			}
		}
	}
	return run, nil
}

// goTestJSON runs go test -json on the fixture and returns the last
// action of each test: pass, fail or skip.
func goTestJSON(t *testing.T, dir string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", "test", "-json", "./...")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DIST_TEST_ATTEMPT=")
	out, err := cmd.Output()
	if err == nil {
		t.Fatal("go test passed the fixture, which has failing tests")
	}
	return lastActions(t, out)
}

func lastActions(t *testing.T, jsonl []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		if e.Test != "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
			got[e.Package+" "+e.Test] = e.Action
		}
	}
	return got
}

const fixturePkg = "example.com/fixture/"

func TestFixtureMatchesGoTest(t *testing.T) {
	dir, err := filepath.Abs("testdata/fixture")
	if err != nil {
		t.Fatal(err)
	}
	want := goTestJSON(t, dir)
	history := filepath.Join(t.TempDir(), "history.json")
	c := &localCluster{}
	o := Options{Dir: dir, TargetSeconds: 1.5, Retries: 1, Timeout: time.Minute, History: history}
	rep, err := Run(context.Background(), o, c)
	if err != nil {
		t.Fatal(err)
	}
	var summary bytes.Buffer
	rep.WriteSummary(&summary, 5)
	t.Logf("summary:\n%s", summary.String())

	// The same tests pass, fail and skip as under go test, but that the
	// flaky one, which fails there, passed on its retry here.
	got := map[string]string{}
	for _, tr := range rep.Tests() {
		got[tr.Package+" "+tr.Name] = tr.Status
	}
	flaky := fixturePkg + "flaky TestFlaky"
	for k, action := range want {
		status := map[string]string{"pass": Passed, "fail": Failed, "skip": Skipped}[action]
		if k == flaky {
			status = Flaky
		}
		if got[k] != status {
			t.Errorf("%s: go-test says %q, go test -json %q", k, got[k], action)
		}
	}
	for k, s := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: go-test says %q, go test -json says nothing", k, s)
		}
	}
	if !rep.Failed() {
		t.Error("the run passed")
	}

	problems := map[string]string{}
	for _, pr := range rep.Packages {
		problems[strings.TrimPrefix(pr.Pkg.ImportPath, fixturePkg)] = strings.Join(pr.Problems, "\n")
	}
	for pkg, want := range map[string][]string{
		"broken":   {"build failed", "undefined: undefinedName"},
		"mainfail": {"exited with code 1 with no failing test", "TestNeedsSetup was listed but did not run"},
		"panics":   {"panic: assignment to entry in nil map"},
	} {
		for _, w := range want {
			if !strings.Contains(problems[pkg], w) {
				t.Errorf("package %s: problems %q lack %q", pkg, problems[pkg], w)
			}
		}
	}
	for _, pkg := range []string{"pass", "fail", "flaky", "slow", "subtests"} {
		if problems[pkg] != "" {
			t.Errorf("package %s: unexpected problems %q", pkg, problems[pkg])
		}
	}
	if _, ok := problems["notests"]; ok {
		t.Error("a package without tests was run")
	}

	for _, w := range []string{
		"FAIL example.com/fixture/fail TestBad",
		"answer: got 41, want 42 <&>",
		"FLAKY example.com/fixture/flaky TestFlaky: failed 1 of 2 runs, then passed",
		"FAIL example.com/fixture/subtests TestNested/outer/wrong",
		"deep failure",
		"FAIL example.com/fixture/panics TestPanic",
		"FAIL example.com/fixture/broken: build failed",
	} {
		if !strings.Contains(summary.String(), w) {
			t.Errorf("summary lacks %q:\n%s", w, summary.String())
		}
	}

	checkJUnit(t, rep)
	var events bytes.Buffer
	if err := rep.WriteJSON(&events); err != nil {
		t.Fatal(err)
	}
	merged := lastActions(t, events.Bytes())
	for k, action := range want {
		if k != flaky && merged[k] != action {
			t.Errorf("--json: %s ends %q, go test -json %q", k, merged[k], action)
		}
	}
	if merged[flaky] != "pass" || !bytes.Contains(events.Bytes(), []byte(`"Action":"fail","Package":"example.com/fixture/flaky","Test":"TestFlaky"`)) {
		t.Errorf("--json: the flaky test's failed and passed runs are not both there")
	}

	// The first run knew no runtimes: one task per package, and one for
	// the tests the list missed.
	if n := tasksOf(c.tasks, "slow"); n != 2 {
		t.Errorf("first run: %d tasks for package slow, want 2", n)
	}
	// The second splits the slow package (2 s of tests, more on a busy
	// machine) into tasks of about the 1.5 s target: two.
	if _, err := Run(context.Background(), o, c); err != nil {
		t.Fatal(err)
	}
	hist, _ := os.ReadFile(history)
	t.Logf("history: %s", hist)
	if n := tasksOf(c.tasks, "slow"); n != 3 {
		t.Errorf("second run: %d tasks for package slow, want 2 of tests and the unlisted one", n)
	}
}

func tasksOf(specs []Spec, pkg string) int {
	n := 0
	for _, s := range specs {
		if strings.HasPrefix(s.Description, "go-test "+fixturePkg+pkg+" ") {
			n++
		}
	}
	return n
}

// checkJUnit parses the JUnit XML back and checks what Surefire's schema
// requires of it and what the fixture's tests should say.
func checkJUnit(t *testing.T, rep *Report) {
	t.Helper()
	var b bytes.Buffer
	if err := rep.WriteJUnit(&b); err != nil {
		t.Fatal(err)
	}
	var doc JUnitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("the JUnit XML does not parse: %v\n%s", err, b.String())
	}
	cases := map[string]JUnitCase{}
	for _, s := range doc.Suites {
		if s.Name == "" || s.Tests != len(s.Cases) {
			t.Errorf("suite %q: tests=%d for %d testcases", s.Name, s.Tests, len(s.Cases))
		}
		failures, errs, skipped := 0, 0, 0
		for _, c := range s.Cases {
			if c.Name == "" || c.Classname != s.Name {
				t.Errorf("suite %s: testcase %q of class %q", s.Name, c.Name, c.Classname)
			}
			if _, err := strconv.ParseFloat(c.Time, 64); err != nil {
				t.Errorf("%s %s: time %q", s.Name, c.Name, c.Time)
			}
			if c.Failure != nil {
				failures++
			}
			if c.Error != nil {
				errs++
			}
			if c.Skipped != nil {
				skipped++
			}
			cases[strings.TrimPrefix(s.Name, fixturePkg)+" "+c.Name] = c
		}
		if failures != s.Failures || errs != s.Errors || skipped != s.Skipped {
			t.Errorf("suite %s: counts %d/%d/%d, testcases %d/%d/%d", s.Name, s.Failures, s.Errors, s.Skipped, failures, errs, skipped)
		}
	}
	if c := cases["fail TestBad"]; c.Failure == nil || !strings.Contains(c.Failure.Text, "answer: got 41, want 42 <&>") {
		t.Errorf("TestBad: %+v", c)
	}
	if c := cases["flaky TestFlaky"]; c.Failure != nil || len(c.FlakyFailures) != 1 || !strings.Contains(c.FlakyFailures[0].StackTrace, "first attempt fails") {
		t.Errorf("TestFlaky: %+v", c)
	}
	if c := cases["pass TestSkips"]; c.Skipped == nil {
		t.Errorf("TestSkips: %+v", c)
	}
	if c := cases["pass TestHello"]; c.Failure != nil || c.Error != nil || c.Skipped != nil || len(c.FlakyFailures) > 0 {
		t.Errorf("TestHello: %+v", c)
	}
	for _, pkg := range []string{"broken", "mainfail", "panics"} {
		if c := cases[pkg+" "+packageCase]; c.Error == nil {
			t.Errorf("package %s: no error testcase", pkg)
		}
	}
	if !bytes.Contains(b.Bytes(), []byte("<flakyFailure")) {
		t.Error("no flakyFailure element")
	}
}

func TestSplit(t *testing.T) {
	p := &Package{ImportPath: "m/p", Tests: []string{"TestA", "TestB", "TestC", "TestD", "TestNew"}}
	// No history: one task of every test, and the unlisted one.
	tasks := split([]*Package{p}, History{}, 10)
	if len(tasks) != 2 || !slices.Equal(tasks[0].Tests, p.Tests) || !tasks[1].Unlisted {
		t.Fatalf("no history: %+v", tasks)
	}
	if f := tasks[1].runFlags("."); !slices.Equal(f, []string{"-test.skip=^(TestA|TestB|TestC|TestD|TestNew)$"}) {
		t.Errorf("unlisted task: %s", f)
	}
	// With go test's -run, the unlisted task runs only what it selects.
	if f := tasks[1].runFlags("Test[AB]"); !slices.Equal(f, []string{"-test.run=Test[AB]", "-test.skip=^(TestA|TestB|TestC|TestD|TestNew)$"}) {
		t.Errorf("unlisted task under -run: %s", f)
	}
	// 8+6+4+2 s and a new test counted at their mean (5 s): 25 s in
	// tasks of 10 s is 3 tasks, packed longest first (A, B, New, then C
	// and D onto the least loaded), the longest task first.
	h := History{"m/p": {"TestA": 8, "TestB": 6, "TestC": 4, "TestD": 2, "TestGone": 100}}
	tasks = split([]*Package{p}, h, 10)
	var groups []string
	for _, task := range tasks {
		groups = append(groups, fmt.Sprintf("%s=%g", strings.Join(task.Tests, ","), task.Expected))
	}
	want := []string{"TestC,TestNew=9", "TestA=8", "TestB,TestD=8", "=0"}
	if !slices.Equal(groups, want) {
		t.Errorf("split %v, want %v", groups, want)
	}
	if f := tasks[2].runFlags("."); !slices.Equal(f, []string{"-test.run=^(TestB|TestD)$"}) {
		t.Errorf("run flag %s", f)
	}
	// A package that failed to build has no tasks.
	if tasks := split([]*Package{{ImportPath: "m/q", BuildError: "x"}}, h, 10); len(tasks) != 0 {
		t.Errorf("tasks of a broken package: %+v", tasks)
	}
}

func TestAnchoredQuotes(t *testing.T) {
	if got := anchored([]string{"TestA", "Test.B+"}); got != `^(TestA|Test\.B\+)$` {
		t.Errorf("anchored: %s", got)
	}
}

func TestHistoryRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "h.json")
	h, err := LoadHistory(path)
	if err != nil || len(h) != 0 {
		t.Fatalf("missing file: %v %v", h, err)
	}
	h.set("m/p", "TestA", 1.5)
	if err := h.Save(path); err != nil {
		t.Fatal(err)
	}
	back, err := LoadHistory(path)
	if err != nil || back["m/p"]["TestA"] != 1.5 {
		t.Fatalf("read back %v %v", back, err)
	}
	// A damaged file is no history, not an error: it only guides splits.
	os.WriteFile(path, []byte("{not json"), 0o644)
	if back, err := LoadHistory(path); err != nil || len(back) != 0 {
		t.Fatalf("damaged file: %v %v", back, err)
	}
	// A new runtime is averaged with the one kept.
	h.set("m/p", "TestA", 2.5)
	if h["m/p"]["TestA"] != 2 {
		t.Errorf("after 1.5 s and 2.5 s: %g", h["m/p"]["TestA"])
	}
}

func TestInputsStayInModule(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "p", "testdata", "deep"), 0o755)
	os.MkdirAll(filepath.Join(dir, "p", "sub"), 0o755)
	for _, f := range []string{"p/a.go", "p/testdata/deep/x", "p/sub/b.go", "other"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o644)
	}
	got, err := inputs(dir, "p", DefaultInputs)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"p/a.go", "p/testdata/deep/x"}; !slices.Equal(got, want) {
		t.Errorf("default inputs %v, want %v", got, want)
	}
	if got, err := inputs(dir, "p", []string{"../other"}); err != nil || !slices.Equal(got, []string{"other"}) {
		t.Errorf("../other: %v %v", got, err)
	}
	if got, err := inputs(dir, "p", []string{"*", "/other", "/p/sub/*"}); err != nil || !slices.Equal(got, []string{"other", "p/a.go", "p/sub/b.go"}) {
		t.Errorf("/other: %v %v", got, err)
	}
	if got, err := inputs(dir, "p", []string{"**", "!sub/**", "!testdata/deep/x"}); err != nil || !slices.Equal(got, []string{"p/a.go"}) {
		t.Errorf("narrowed: %v %v", got, err)
	}
	if _, err := inputs(dir, "p", []string{"../../etc/passwd"}); err == nil {
		t.Error("a glob out of the module was taken")
	}
}
