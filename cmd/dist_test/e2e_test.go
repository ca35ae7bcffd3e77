package main

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

var scripts = map[string]string{
	"pass":  `echo "pass $1"` + "\n",
	"fail":  `echo "stdout of failure $1"; echo "stderr of failure $1" >&2; exit 3` + "\n",
	"hang":  `trap '' TERM; echo "hanging $1"; sleep 300` + "\n",
	"flaky": `echo "flaky $1 attempt $DIST_TEST_ATTEMPT"; [ "$DIST_TEST_ATTEMPT" != 0 ]` + "\n",
	"artifacts": `mkdir -p out/deep && printf 'artifact %s\n' "$1" > out/deep/a.txt && printf 'tmp\n' > "$TEST_TMPDIR/t.txt"
echo "wrote artifacts $1"` + "\n",
	"sleep": `echo $$ > "$PIDDIR/$1.pid"; sleep 300 & echo $! > "$PIDDIR/$1.child.pid"; wait` + "\n",
}

// A 50-task job with passing, failing, timing-out, flaky and
// artifact-writing tasks, submitted through the CLI to `dist_test local`:
// exit code 88, every /job_status number, the /tasks list, and the bytes of
// the fetched logs and unpacked artifacts.
func TestEndToEnd(t *testing.T) {
	c := newCluster(t, 8)
	c.writeInputs(scripts)
	pass := c.archive("pass", "ARG=p")
	var tasks []jobTask
	for i := range 30 {
		tasks = append(tasks, jobTask{IsolateHash: pass, Description: fmt.Sprintf("pass-%02d", i), Timeout: 60})
	}
	for i := range 8 {
		tasks = append(tasks, jobTask{IsolateHash: c.archive("fail", fmt.Sprintf("ARG=f%d", i)), Description: fmt.Sprintf("fail-%d", i), Timeout: 60})
	}
	for i := range 4 {
		tasks = append(tasks, jobTask{IsolateHash: c.archive("hang", fmt.Sprintf("ARG=h%d", i)), Description: fmt.Sprintf("hang-%d", i), Timeout: 1})
	}
	for i := range 4 {
		tasks = append(tasks, jobTask{IsolateHash: c.archive("flaky", fmt.Sprintf("ARG=k%d", i)), Description: fmt.Sprintf("flaky-%d", i), Timeout: 60, MaxRetries: 2})
	}
	for i := range 4 {
		tasks = append(tasks, jobTask{IsolateHash: c.archive("artifacts", fmt.Sprintf("ARG=a%d", i)), Description: fmt.Sprintf("artifacts-%d", i),
			Timeout: 60, Globs: []string{"out/**", "test-tmp/*.txt"}})
	}
	job := c.writeJob("job.json", tasks)

	code, stdout, stderr := c.run("submit", "-n", "e2e", job)
	if code != 88 {
		t.Fatalf("submit exited %d, want 88\nstdout: %s\nstderr: %s\nlocal: %s", code, stdout, stderr, c.log)
	}
	jobID := strings.TrimPrefix(strings.TrimSpace(lastLine(stdout)), "job_id=")
	if !strings.HasPrefix(jobID, "e2e.") {
		t.Fatalf("submit did not print job_id=e2e...: %q", stdout)
	}
	if !strings.Contains(stdout, "50/50 tests complete (12 failed) (4 retries)") {
		t.Errorf("final progress line missing from:\n%s", stdout)
	}

	var status map[string]any
	c.get("/job_status?job_id="+jobID, &status)
	want := map[string]any{
		"status": "finished", "total_tasks": 54.0, "finished_tasks": 54.0, "running_tasks": 0.0,
		"retried_tasks": 4.0, "timedout_tasks": 4.0, "failed_tasks": 16.0, "succeeded_tasks": 38.0,
		"total_groups": 50.0, "finished_groups": 50.0, "failed_groups": 12.0, "succeeded_groups": 38.0,
		"flaky_groups": 4.0, "flaky_tasks": 4.0, "canceled_tasks": 0.0, "canceled_groups": 0.0,
	}
	if !reflect.DeepEqual(status, want) {
		t.Errorf("/job_status =\n %v\nwant\n %v", status, want)
	}

	var all []map[string]any
	c.get("/tasks?job_id="+jobID, &all)
	var failed []map[string]any
	c.get("/tasks?job_id="+jobID+"&status=failed", &failed)
	if len(all) != 54 || len(failed) != 16 {
		t.Errorf("/tasks lists %d attempts (want 54), failed %d (want 16)", len(all), len(failed))
	}
	for _, r := range failed {
		// A failure writes both logs, and a timed-out task's stderr says
		// it was killed; flaky tasks write no stderr.
		d := r["description"].(string)
		if r["stdout_link"] == nil || (r["stderr_link"] == nil) == (strings.HasPrefix(d, "fail-") || strings.HasPrefix(d, "hang-")) {
			t.Errorf("failed attempt %v lacks its log links", r)
		}
	}
	// Every attempt fetched its manifest and the 6 scripts, from the slave's
	// cache or not; the 30 passing tasks share one tree, so most are hot.
	var every protocol.AttemptList
	c.get("/api/v1/jobs/"+jobID+"/tasks", &every)
	var sum protocol.Inputs
	for _, a := range every.Tasks {
		if n := a.Inputs.HotItems + a.Inputs.ColdItems; n != 7 {
			t.Errorf("attempt %s/%d fetched %d items, want 7 (%+v)", a.Description, a.Attempt, n, a.Inputs)
		}
		sum.HotItems += a.Inputs.HotItems
		sum.ColdItems += a.Inputs.ColdItems
		sum.HotBytes += a.Inputs.HotBytes
		sum.ColdBytes += a.Inputs.ColdBytes
	}
	var jobFigures protocol.Job
	c.get("/api/v1/jobs/"+jobID, &jobFigures)
	got := jobFigures.Inputs
	if got.HotItems != sum.HotItems || got.ColdItems != sum.ColdItems || got.HotBytes != sum.HotBytes || got.ColdBytes != sum.ColdBytes {
		t.Errorf("job input figures %+v differ from the sum of its attempts' %+v", got, sum)
	}
	if got.HotItems < 300 || got.ColdItems < 7 {
		t.Errorf("job input figures %+v: want most items hot, and each file cold once", got)
	}

	var api protocol.AttemptList
	c.get("/api/v1/jobs/"+jobID+"/tasks?status=timed_out", &api)
	for _, a := range api.Tasks {
		if !strings.HasPrefix(a.Description, "hang-") || a.ExitCode == nil || *a.ExitCode != -9 {
			t.Errorf("timed-out attempt %s exit %v; want hang-* killed by SIGKILL (-9)", a.Description, a.ExitCode)
		}
	}
	if len(api.Tasks) != 4 {
		t.Errorf("%d timed-out attempts, want 4", len(api.Tasks))
	}

	results := filepath.Join(c.dir, "results")
	code, _, stderr = c.run("fetch", "-l", "-a", "-d", results)
	if code != 0 {
		t.Fatalf("fetch exited %d: %s", code, stderr)
	}
	byName := map[string]string{}
	entries, _ := os.ReadDir(results)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(results, e.Name()))
		byName[e.Name()] = string(b)
	}
	failTask := taskOf(t, all, "fail-5", 0)
	stem := safe(failTask) + ".0.fail_5"
	if got := byName[stem+".stdout"]; got != "stdout of failure f5\n" {
		t.Errorf("%s.stdout = %q", stem, got)
	}
	if got := byName[stem+".stderr"]; got != "stderr of failure f5\n" {
		t.Errorf("%s.stderr = %q", stem, got)
	}
	hang := safe(taskOf(t, all, "hang-2", 0)) + ".0.hang_2"
	if got := byName[hang+".stdout"]; got != "hanging h2\n" {
		t.Errorf("%s.stdout = %q", hang, got)
	}
	if got := byName[hang+".stderr"]; got != "\n------\nKilling task after 1 seconds\n" {
		t.Errorf("%s.stderr = %q, want the note of the timeout", hang, got)
	}
	flaky := safe(taskOf(t, all, "flaky-1", 0))
	if got := byName[flaky+".0.flaky_1.stdout"]; got != "flaky k1 attempt 0\n" {
		t.Errorf("flaky attempt 0 stdout = %q", got)
	}
	if _, ok := byName[flaky+".1.flaky_1.stdout"]; ok {
		t.Errorf("the passing retry of flaky-1 has a log; only failures keep theirs")
	}
	logs := 0
	for name := range byName {
		if strings.HasSuffix(name, ".stdout") || strings.HasSuffix(name, ".stderr") {
			logs++
		}
	}
	// 8 failures × 2 logs, 4 flaky failures × 1 (no stderr), 4 hangs × 2.
	if logs != 28 {
		t.Errorf("fetched %d logs, want 28: %v", logs, keys(byName))
	}
	art := filepath.Join(results, safe(taskOf(t, all, "artifacts-3", 0))+".0.artifacts_3")
	if b, err := os.ReadFile(filepath.Join(art, "out", "deep", "a.txt")); err != nil || string(b) != "artifact a3\n" {
		t.Errorf("unpacked artifact = %q, %v", b, err)
	}
	if b, err := os.ReadFile(filepath.Join(art, "test-tmp", "t.txt")); err != nil || string(b) != "tmp\n" {
		t.Errorf("artifact from TEST_TMPDIR = %q, %v", b, err)
	}
	zips := 0
	for name := range byName {
		if strings.HasSuffix(name, ".zip") {
			zips++
		}
	}
	if zips != 4 {
		t.Errorf("fetched %d artifact archives, want 4", zips)
	}

	// A job where every task passes exits 0.
	ok := c.writeJob("ok.json", tasks[:5])
	if code, stdout, stderr := c.run("submit", ok); code != 0 {
		t.Errorf("all-pass job exited %d\n%s\n%s", code, stdout, stderr)
	}
}

// Canceling a job of long sleeps kills their processes, finishes the job
// with the tasks canceled, and ends a watch of it.
func TestCancelKillsTasks(t *testing.T) {
	pids := sharedDir(t)
	c := newCluster(t, 4, "PIDDIR="+pids)
	c.writeInputs(scripts)
	var tasks []jobTask
	for i := range 6 {
		tasks = append(tasks, jobTask{IsolateHash: c.archive("sleep", fmt.Sprintf("ARG=s%d", i)), Description: fmt.Sprintf("sleep-%d", i), MaxRetries: 3})
	}
	code, _, stderr := c.run("submit", "--no-wait", c.writeJob("sleep.json", tasks))
	if code != 0 {
		t.Fatalf("submit --no-wait exited %d: %s", code, stderr)
	}
	var running []int
	waitFor(t, 20*time.Second, "4 tasks and their children to run", func() bool {
		running = readPIDs(pids)
		return len(running) == 8
	})
	watch := make(chan int, 1)
	go func() {
		code, _, _ := c.run("watch")
		watch <- code
	}()
	if code, _, stderr := c.run("cancel"); code != 0 {
		t.Fatalf("cancel exited %d: %s", code, stderr)
	}
	waitFor(t, 10*time.Second, "the canceled tasks' processes to die", func() bool {
		for _, p := range running {
			if alive(p) {
				return false
			}
		}
		return true
	})
	select {
	case code := <-watch:
		if code != 88 {
			t.Errorf("watch of the canceled job exited %d, want 88", code)
		}
	case <-time.After(10 * time.Second):
		t.Errorf("watch did not return after the cancel")
	}
	var job protocol.Job
	c.get("/api/v1/jobs/"+lastJob(t, c), &job)
	if job.Status != "finished" || !job.Canceled || job.CanceledTasks != 6 || job.CanceledGroups != 6 || job.TotalTasks != 6 {
		t.Errorf("canceled job = %+v", job)
	}
	time.Sleep(2 * time.Second) // two heartbeats: nothing starts again
	if got := readPIDs(pids); len(got) != 8 {
		t.Errorf("processes started after the cancel: %d pid files, want 8", len(got))
	}
}

// The embedded default keeps its state across a restart from the same data
// folder: a job interrupted by SIGTERM finishes after the restart, each task
// counted once.
func TestLocalRestartKeepsJobs(t *testing.T) {
	c := newCluster(t, 2)
	c.writeInputs(map[string]string{"slow": "sleep 1; echo \"done $1\"\n"})
	var tasks []jobTask
	for i := range 6 {
		tasks = append(tasks, jobTask{IsolateHash: c.archive("slow", fmt.Sprintf("ARG=%d", i)), Description: fmt.Sprintf("slow-%d", i), Timeout: 60})
	}
	if code, _, stderr := c.run("submit", "--no-wait", c.writeJob("slow.json", tasks)); code != 0 {
		t.Fatalf("submit: %s", stderr)
	}
	id := lastJob(t, c)
	waitFor(t, 20*time.Second, "a task to run", func() bool {
		var j protocol.Job
		c.get("/api/v1/jobs/"+id, &j)
		var running protocol.AttemptList
		c.get("/api/v1/jobs/"+id+"/tasks?status=running", &running)
		return len(running.Tasks) > 0
	})
	c.stop()
	c.env = c.env[:len(c.env)-2] // drop the old URL
	c.start(2)
	code, stdout, stderr := c.run("watch", id)
	if code != 0 {
		t.Fatalf("watch after restart exited %d\n%s\n%s\nlocal: %s", code, stdout, stderr, c.log)
	}
	var j protocol.Job
	c.get("/api/v1/jobs/"+id, &j)
	if j.TotalTasks != 6 || j.SucceededTasks != 6 || j.FinishedGroups != 6 || j.RetriedTasks != 0 {
		t.Errorf("job after restart = %+v; want 6 tasks, each passed once", j.Counts)
	}
}

func taskOf(t testing.TB, all []map[string]any, desc string, attempt int) string {
	t.Helper()
	for _, r := range all {
		if r["description"] == desc && r["attempt"] == float64(attempt) {
			return r["task_id"].(string)
		}
	}
	t.Fatalf("no attempt %d of %s", attempt, desc)
	return ""
}

// safe is the fetch command's naming: non-alphanumerics become "_".
func safe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func lastJob(t testing.TB, c *cluster) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, "last-job"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func readPIDs(dir string) []int {
	entries, _ := os.ReadDir(dir)
	var out []int
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			out = append(out, p)
		}
	}
	return out
}
