package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"encoding/xml"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/client/gotest"
)

// testActions are the last pass, fail or skip of each test in test2json
// events, by package and test.
func testActions(t *testing.T, jsonl []byte) map[string]string {
	t.Helper()
	got := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(jsonl))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e gotest.Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s: %v", sc.Bytes(), err)
		}
		if e.Test != "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
			got[e.Package+" "+e.Test] = e.Action
		}
	}
	return got
}

// plainGoTest runs go test -json in dir, with no dist_test attempt in
// the environment.
func plainGoTest(t *testing.T, dir string, pkgs ...string) map[string]string {
	t.Helper()
	cmd := exec.Command("go", append([]string{"test", "-count=1", "-json"}, pkgs...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DIST_TEST_ATTEMPT=")
	out, _ := cmd.Output()
	return testActions(t, out)
}

// The fixture module on a real cluster: the same tests pass, fail and
// skip as under go test -json, the flaky one passes on its retry, the
// inputs (testdata) reach the slaves, and the run fails with the reasons.
func TestGoTestFixture(t *testing.T) {
	fixture, err := filepath.Abs("../../client/gotest/testdata/fixture")
	if err != nil {
		t.Fatal(err)
	}
	want := plainGoTest(t, fixture, "./...")
	c := newCluster(t, 4)
	out := t.TempDir()
	junit, events := filepath.Join(out, "junit.xml"), filepath.Join(out, "events.json")
	code, stdout, stderr := c.runIn(fixture, "go-test", "--retries", "1", "--target-seconds", "1",
		"--history", filepath.Join(out, "history.json"), "--junit", junit, "--json", events, "./...")
	if code != cli.ExitFailed {
		t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, cli.ExitFailed, stdout, stderr)
	}
	data, err := os.ReadFile(events)
	if err != nil {
		t.Fatal(err)
	}
	got := testActions(t, data)
	const flaky = "example.com/fixture/flaky TestFlaky"
	for k, action := range want {
		if k == flaky {
			if action != "fail" || got[k] != "pass" {
				t.Errorf("%s: go test %q, go-test ended %q; want fail, then pass on the retry", k, action, got[k])
			}
			continue
		}
		if got[k] != action {
			t.Errorf("%s: go-test %q, go test -json %q", k, got[k], action)
		}
	}
	if len(got) != len(want) {
		t.Errorf("go-test reported %d tests, go test -json %d", len(got), len(want))
	}
	for _, w := range []string{
		"FAIL example.com/fixture/fail TestBad",
		"answer: got 41, want 42 <&>",
		"FLAKY example.com/fixture/flaky TestFlaky: failed 1 of 2 runs, then passed",
		"FAIL example.com/fixture/broken: build failed",
		"TestNeedsSetup was listed but did not run",
		"panic: assignment to entry in nil map",
	} {
		if !strings.Contains(stdout, w) {
			t.Errorf("summary lacks %q:\n%s", w, stdout)
		}
	}
	xmlData, err := os.ReadFile(junit)
	if err != nil {
		t.Fatal(err)
	}
	var doc gotest.JUnitSuites
	if err := xml.Unmarshal(xmlData, &doc); err != nil {
		t.Fatalf("JUnit: %v", err)
	}
	flakes := 0
	for _, s := range doc.Suites {
		for _, tc := range s.Cases {
			if len(tc.FlakyFailures) > 0 {
				flakes++
				if s.Name+" "+tc.Name != flaky {
					t.Errorf("flaky in JUnit: %s %s", s.Name, tc.Name)
				}
			}
		}
	}
	if flakes != 1 {
		t.Errorf("%d flaky testcases in the JUnit file, want 1", flakes)
	}
}

// The project's own fast packages pass on the cluster as under go test,
// split by their history on the second run.
func TestGoTestOwnPackages(t *testing.T) {
	pkgs := []string{"./internal/model/...", "./internal/lifecycle/..."}
	want := plainGoTest(t, "../..", pkgs...)
	c := newCluster(t, 4)
	out := t.TempDir()
	for run := range 2 {
		code, stdout, stderr := c.runIn("../..", append([]string{"go-test", "--target-seconds", "0.05",
			"--history", filepath.Join(out, "history.json"), "--json", filepath.Join(out, "events.json")}, pkgs...)...)
		if code != 0 {
			t.Fatalf("run %d: exit %d\nstdout:\n%s\nstderr:\n%s", run, code, stdout, stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "events.json"))
		if err != nil {
			t.Fatal(err)
		}
		got := testActions(t, data)
		for k, action := range want {
			if got[k] != action {
				t.Errorf("run %d: %s: go-test %q, go test -json %q", run, k, got[k], action)
			}
		}
		if len(got) != len(want) {
			t.Errorf("run %d: go-test reported %d tests, go test -json %d", run, len(got), len(want))
		}
	}
}
