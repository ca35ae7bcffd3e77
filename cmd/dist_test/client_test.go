package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testlog"
)

// What a user of the CLI sees when tests fail, through the real binary
// and `dist_test local`: the summary of each failure with the end of its
// stderr, the flaky test, the job's page; then the scripting commands on
// the same job, and typos in the job file and the configuration.
func TestClientSaysWhatFailed(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 4, config: "[isolate]\ncache_dri = /nonexistent/x\n"})
	c.writeInputs(scripts)
	tasks := []jobTask{
		{IsolateHash: c.archive("pass", "ARG=p"), Description: "passes", Timeout: 60},
		{IsolateHash: c.archive("fail", "ARG=f0"), Description: "fails", Timeout: 60},
		{IsolateHash: c.archive("hang", "ARG=h0"), Description: "hangs", Timeout: 1},
		{IsolateHash: c.archive("flaky", "ARG=k0"), Description: "flaky", Timeout: 60, MaxRetries: 1},
	}
	if !strings.Contains(c.log.String(), "unknown key [isolate] cache_dri is ignored (did you mean cache_dir?)") {
		t.Errorf("dist_test local did not warn of the typo in its configuration:\n%s", c.log)
	}
	job := c.writeJob("job.json", tasks)
	// A typo in the job file is warned about, and the job still runs.
	data, _ := os.ReadFile(job)
	os.WriteFile(job, bytes.Replace(data, []byte(`"description":"passes"`), []byte(`"description":"passes","timout":5`), 1), 0o644)

	code, stdout, stderr := c.run("submit", "--tail", "1", job)
	if code != 88 {
		t.Fatalf("submit exited %d, want 88\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, `job.json: task 0: unknown field "timout" (did you mean "timeout"?) is ignored`) {
		t.Errorf("no warning of the job file's typo:\n%s", stderr)
	}
	id := lastJob(t, c)
	t.Logf("submit's output:\n%s", stdout)
	summary := regexp.MustCompile(`(?s)\n(2 of 4 tests failed, 1 flaky:\n.*)job_id=`).FindStringSubmatch(stdout)
	if summary == nil {
		t.Fatalf("no summary in:\n%s", stdout)
	}
	want := regexp.MustCompile(`^2 of 4 tests failed, 1 flaky:
FAIL fails: failed with exit code 3 \(1 attempt\)
    stderr of failure f0
FAIL hangs: timed out after \d+\.\d s \(1 attempt\)
(    .*\n)?FLAKY flaky: passed on attempt 2 of 2 after it failed with exit code 1
Details: ` + regexp.QuoteMeta(c.url+"/job?job_id="+id) + "\n$")
	if !want.MatchString(summary[1]) {
		t.Errorf("summary:\n%s\nwant it to match:\n%s", summary[1], want)
	}

	// tasks, status and jobs speak JSON for scripts.
	code, stdout, stderr = c.run("tasks", "--status", "failed", "--json")
	var failed protocol.AttemptList
	if err := json.Unmarshal([]byte(stdout), &failed); code != 0 || err != nil || len(failed.Tasks) != 3 {
		t.Errorf("tasks --status failed --json: exit %d, %v, %d attempts (want 3: fails, hangs, flaky's first)\n%s%s", code, err, len(failed.Tasks), stdout, stderr)
	}
	code, stdout, _ = c.run("tasks", id, "--status", "timed_out")
	if code != 0 || !regexp.MustCompile(`(?m)^\S+\.2\s+0\s+timed_out\s+-9\s+\S+\s+hangs$`).MatchString(stdout) {
		t.Errorf("tasks --status timed_out: exit %d\n%s", code, stdout)
	}
	code, stdout, _ = c.run("status", "-o", "json")
	var st protocol.Job
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || st.ID != id || st.FailedGroups != 2 || st.FlakyGroups != 1 {
		t.Errorf("status -o json: exit %d, %v, %+v", code, err, st)
	}
	code, stdout, _ = c.run("status")
	if want := id + ": finished, 4/4 tests complete: 2 passed, 2 failed, 1 flaky (1 retries)\n"; code != 0 || stdout != want {
		t.Errorf("status: exit %d, %q, want %q", code, stdout, want)
	}
	code, stdout, _ = c.run("jobs", "--json")
	var jobs protocol.JobList
	if err := json.Unmarshal([]byte(stdout), &jobs); code != 0 || err != nil || len(jobs.Jobs) != 1 || jobs.Jobs[0].ID != id {
		t.Errorf("jobs --json: exit %d, %v, %+v", code, err, jobs)
	}

	// --no-wait prints the job id, and --fail-fast cancels on the first
	// failure: the failing test ends before the 20 s sleeps, which are
	// then stopped.
	code, stdout, _ = c.run("submit", "--no-wait", c.writeJob("ok.json", tasks[:1]))
	if code != 0 || !regexp.MustCompile(`^job_id=\S+\n$`).MatchString(stdout) {
		t.Errorf("submit --no-wait: exit %d, stdout %q", code, stdout)
	}
	c.writeInputs(map[string]string{"nap": "sleep 20\n"})
	ff := []jobTask{tasks[1]}
	for i := range 3 {
		ff = append(ff, jobTask{IsolateHash: c.archive("nap", fmt.Sprintf("ARG=%d", i)), Description: fmt.Sprintf("nap-%d", i), Timeout: 60})
	}
	start := time.Now()
	code, stdout, stderr = c.run("submit", "--fail-fast", c.writeJob("ff.json", ff))
	if code != 88 || !strings.Contains(stderr, "--fail-fast: a test failed; canceling job") || !strings.Contains(stdout, "was canceled") {
		t.Errorf("--fail-fast: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("--fail-fast took %s: the sleeps were not stopped", d)
	}
}

// Ctrl-C (a real SIGINT) during submit cancels the job and exits 130;
// during watch it only stops watching, and the job runs on.
func TestClientCtrlC(t *testing.T) {
	c := newCluster(t, 2)
	c.writeInputs(map[string]string{"nap": "sleep 60\n"})
	tasks := []jobTask{{IsolateHash: c.archive("nap", "ARG=0"), Description: "nap-0", Timeout: 120},
		{IsolateHash: c.archive("nap", "ARG=1"), Description: "nap-1", Timeout: 120}}
	job := c.writeJob("nap.json", tasks)

	interrupt := func(presses int, args ...string) (int, string, string) {
		t.Helper()
		if args[0] == "submit" {
			os.Remove(c.dir + "/last-job") // wait for this job's tasks
		}
		cmd := exec.Command(binary, args...)
		cmd.Env, cmd.Dir = c.env, c.dir
		// Read while the command writes.
		var out, errb testlog.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "a task to run", func() bool {
			b, err := os.ReadFile(c.dir + "/last-job")
			if err != nil {
				return false
			}
			var running protocol.AttemptList
			c.get("/api/v1/jobs/"+string(b)+"/tasks?status=running", &running)
			return len(running.Tasks) > 0 && strings.Contains(out.String(), "tests complete")
		})
		for range presses {
			cmd.Process.Signal(syscall.SIGINT)
			time.Sleep(20 * time.Millisecond)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%v did not end within 30 s of SIGINT:\n%s", args, errb.String())
		}
		return cmd.ProcessState.ExitCode(), out.String(), errb.String()
	}

	code, stdout, stderr := interrupt(1, "submit", job)
	id := lastJob(t, c)
	var got protocol.Job
	c.get("/api/v1/jobs/"+id, &got)
	if code != 130 || !got.Canceled || got.Status != "finished" {
		t.Errorf("submit + SIGINT: exit %d, job canceled %v status %s; want 130 and a canceled job\nstdout: %s\nstderr: %s",
			code, got.Canceled, got.Status, stdout, stderr)
	}
	if !strings.Contains(stderr, "Interrupted: canceling job "+id) || !strings.Contains(stdout, "Job "+id+" was canceled") {
		t.Errorf("submit + SIGINT said:\nstdout: %s\nstderr: %s", stdout, stderr)
	}

	if code, _, stderr := c.run("submit", "--no-wait", job); code != 0 {
		t.Fatalf("submit --no-wait: %s", stderr)
	}
	code, _, stderr = interrupt(1, "watch")
	id = lastJob(t, c)
	c.get("/api/v1/jobs/"+id, &got)
	if code != 130 || got.Canceled || got.Status != "running" || !strings.Contains(stderr, "keeps running") {
		t.Errorf("watch + SIGINT: exit %d, job canceled %v status %s; want 130 and the job running\nstderr: %s", code, got.Canceled, got.Status, stderr)
	}
	c.run("cancel", id)

	// A second Ctrl-C leaves at once, whether the cancel was sent or not:
	// while the job is watched, or (the cancel was quick) while its
	// summary is read.
	code, stdout, stderr = interrupt(2, "submit", job)
	left := strings.Contains(stderr, "Stopped watching job") || strings.Contains(stderr, "as it was")
	ended := strings.Contains(stdout, "(canceled)") && !strings.Contains(stdout, "was canceled")
	// Or the first press's cancel, summary and exit were all done before
	// the second press came: nothing was left to wait for.
	done := strings.Contains(stdout, "was canceled")
	if code != 130 || !strings.Contains(stderr, "Interrupted: canceling job") || !left && !ended && !done {
		t.Errorf("submit + 2 SIGINTs: exit %d, want 130 without waiting for the job to end\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	c.run("cancel")
}

// A read-only command against a master that is not there fails at once,
// naming the URL it tried; a watch retries for --retry-for.
func TestClientDeadMasterFailsFast(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(binary, "watch", "--retry-for", "3s", "j")
	cmd.Env = append(os.Environ(), "DIST_TEST_MASTER=http://127.0.0.1:1", "DIST_TEST_CNF=/dev/null", "HOME="+dir)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	cmd.Run()
	if took := time.Since(start); cmd.ProcessState.ExitCode() != 1 || !strings.Contains(errb.String(), "retrying in") ||
		!strings.Contains(errb.String(), "gave up after") || took > 20*time.Second {
		t.Errorf("watch --retry-for 3s: exit %d after %s\n%s", cmd.ProcessState.ExitCode(), took, errb.String())
	}
	for _, args := range [][]string{{"status", "j"}, {"jobs"}, {"tasks", "j"}} {
		cmd := exec.Command(binary, args...)
		cmd.Env = append(os.Environ(), "DIST_TEST_MASTER=http://127.0.0.1:1", "DIST_TEST_CNF=/dev/null", "HOME="+dir)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if cmd.ProcessState.ExitCode() != 1 || !strings.Contains(errb.String(), "no master answers at http://127.0.0.1:1") || strings.Contains(errb.String(), "retrying") {
			t.Errorf("%v: %v\n%s", args, err, errb.String())
		}
	}
}
