package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// needPython returns python3's path; without it the test is skipped, or
// fails under CI=true, where every test must run.
func needPython(t *testing.T, why string) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("python3 is needed %s", why)
		}
		t.Skip("no python3")
	}
	return py
}

// The original dist_test's protocol, spoken by a standard-library Python
// script (testdata/legacy_protocol.py) as the original client and slave
// spoke it, against `dist_test local`: form posts to /submit_job,
// /job_status polled until the job ends, /tasks and /failed_tasks,
// /view_log, /retry_task, /cancel_job; unknown jobs answered with HTTP 200
// and the original's bodies; a timed-out task's stderr note; a job naming
// inputs the isolate server lacks accepted, its task failed with the
// reason as its stderr. Every check of the script must pass, and each must
// have run.
func TestLegacyProtocolPython(t *testing.T) {
	py := needPython(t, "to speak the original client's protocol")
	c := newCluster(t, 2)
	c.writeInputs(map[string]string{
		"pass": scripts["pass"], "fail": scripts["fail"], "hang": scripts["hang"],
	})
	absent := strings.Repeat("5a", 20)
	spec, err := json.Marshal(map[string]string{
		"master": c.url, "pass": c.archive("pass", "ARG=p"), "fail": c.archive("fail", "ARG=<b>&"),
		"hang": c.archive("hang", "ARG=h"), "absent": absent,
	})
	if err != nil {
		t.Fatal(err)
	}
	specFile := filepath.Join(c.dir, "spec.json")
	if err := os.WriteFile(specFile, spec, 0o644); err != nil {
		t.Fatal(err)
	}
	script, err := filepath.Abs(filepath.Join("testdata", "legacy_protocol.py"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, script, specFile).CombinedOutput()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("running the script: %v\n%s", err, out)
	}
	t.Logf("the script's checks:\n%s", out)
	if err != nil {
		t.Errorf("the script failed (%v):\n%s\nlocal:\n%s", err, out, c.log)
	}
	passed := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		if name, ok := strings.CutPrefix(line, "PASS "); ok {
			passed[name] = true
		}
	}
	for _, name := range []string{
		"submit_job answers SUCCESS",
		"job_status counts the job: the absent inputs' task failed, not retried",
		"tasks lists every attempt, named <isolate_hash>.<index>",
		"failed_tasks lists the three failures",
		"tasks?status=failed is failed_tasks",
		"view_log of a failure's stdout",
		"view_log of a failure's stderr",
		"view_log of a timed-out task's stderr says it was killed",
		"the stderr link of the timed-out task gives the note",
		"the absent inputs' task has a stderr that says why, and no stdout",
		"view_log of the absent inputs' stderr",
		"retry_task of fail answers SUCCESS",
		"retry_task queued no attempt without a retry left",
		"that job is finished at its first poll, every task failed once",
		"cancel_job (POST) answers SUCCESS",
		"the canceled job is finished, its task failed",
		"job_status of an unknown job",
		"tasks of an unknown job",
		"failed_tasks of an unknown job",
		"tasks with an unknown status",
		"cancel_job of an unknown job",
	} {
		if !passed[name] {
			t.Errorf("check %q did not pass", name)
		}
	}
	if t.Failed() {
		return
	}

	// The client's watch of the job of absent inputs ends at once, with
	// the exit code of failures; fetch -l gets the reason as a .stderr.
	if code, stdout, stderr := c.run("watch", "py.absent"); code != 88 {
		t.Errorf("watch of the job of absent inputs: exit %d, want 88\n%s\n%s", code, stdout, stderr)
	}
	results := filepath.Join(c.dir, "results")
	if code, _, stderr := c.run("fetch", "-l", "-d", results, "py.absent"); code != 0 {
		t.Fatalf("fetch: exit %d\n%s", code, stderr)
	}
	logs, _ := filepath.Glob(filepath.Join(results, "*.stderr"))
	want := "inputs " + absent + " are not on the isolate server " + c.url + ": archive them first\n"
	for _, l := range logs {
		if b, err := os.ReadFile(l); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", filepath.Base(l), b, err, want)
		}
	}
	if len(logs) != 3 {
		t.Errorf("fetch -l got %d .stderr files, want 3", len(logs))
	}
}
