package main

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/isolate"
)

// Tasks that misbehave: each ends with a result, leaves nothing behind,
// and the slave goes on. They run on the embedded default, which is the
// same slave code.
func TestTaskFaults(t *testing.T) {
	pids := sharedDir(t)
	c := newCluster(t, 2, "PIDDIR="+pids)
	c.writeInputs(map[string]string{
		// Ignores SIGTERM: killed with SIGKILL after the grace.
		"stubborn": `trap '' TERM; echo $$ > "$PIDDIR/stubborn.pid"; sleep 300` + "\n",
		// Forks a daemon that leaves the process group, then exits.
		"daemon": `setsid sh -c 'echo $$ > "$PIDDIR/daemon.pid"; exec sleep 1000' </dev/null >/dev/null 2>&1 &
while [ ! -s "$PIDDIR/daemon.pid" ]; do sleep 0.01; done; echo forked` + "\n",
		// Writes 1 GB to stdout and fails.
		"flood": `head -c 1073741824 /dev/zero | tr '\0' 'x'; exit 1` + "\n",
		// Removes its own sandbox, then fails.
		"vandal": `cd ..; rm -rf "$OLDPWD"; echo gone; exit 2` + "\n",
		"pass":   "echo fine\n",
	})
	task := func(script string, timeout float64) jobTask {
		return jobTask{IsolateHash: c.archive(script, "ARG="+script), Description: script, Timeout: timeout,
			Globs: []string{"**/*.txt"}}
	}
	before := rss(t, c.cmd.Process.Pid)
	job := c.writeJob("faults.json", []jobTask{task("stubborn", 1), task("daemon", 60), task("flood", 120), task("vandal", 60), task("pass", 60)})
	code, stdout, stderr := c.run("submit", job)
	if code != 88 {
		t.Fatalf("submit: %d\n%s\n%s\n%s", code, stdout, stderr, c.log)
	}
	var list protocol.AttemptList
	c.get("/api/v1/jobs/"+lastJob(t, c)+"/tasks", &list)
	states := map[string]protocol.Attempt{}
	for _, a := range list.Tasks {
		states[a.Description] = a
	}
	want := map[string]string{"stubborn": "timed_out", "daemon": "passed", "flood": "failed", "vandal": "failed", "pass": "passed"}
	for d, st := range want {
		if states[d].State != st {
			t.Errorf("%s: %+v; want %s", d, states[d], st)
		}
	}
	if a := states["stubborn"]; a.ExitCode == nil || *a.ExitCode != -9 {
		t.Errorf("the task that ignores SIGTERM ended with %v; want SIGKILL (-9)", a.ExitCode)
	}
	for _, name := range []string{"stubborn", "daemon"} {
		if p := readPID(t, filepath.Join(pids, name+".pid")); alive(p) {
			t.Errorf("the %s task's process %d outlived it", name, p)
		}
	}
	after := rss(t, c.cmd.Process.Pid)
	t.Logf("dist_test local (master and slave in one process) peak RSS: %d MiB before the job, %d MiB after writing 1 GB of stdout", before>>20, after>>20)
	if after > 300<<20 {
		t.Errorf("peak RSS %d MiB after a task wrote 1 GB: the log was held in memory", after>>20)
	}
	// The flood's stdout was capped to head + tail.
	results := filepath.Join(c.dir, "results")
	if code, _, stderr := c.run("fetch", "-l", "-d", results); code != 0 {
		t.Fatalf("fetch: %s", stderr)
	}
	flood := filepath.Join(results, safe(states["flood"].TaskID)+".0.flood.stdout")
	fi, err := os.Stat(flood)
	if err != nil || fi.Size() > 17<<20 || fi.Size() < 16<<20 {
		t.Errorf("the flood's stdout: %v, %v; want 8 MiB of head and 8 MiB of tail", fi, err)
	}
	// The slave goes on: another job runs.
	if code, _, stderr := c.run("submit", c.writeJob("after.json", []jobTask{task("pass", 60)})); code != 0 {
		t.Errorf("a job after the faults: %d %s", code, stderr)
	}
}

// A task whose inputs cannot be fetched is not a test failure: it is run
// again elsewhere, and after max_runs such runs ends as infra_failed.
func TestInputsCannotBeFetched(t *testing.T) {
	c := newCluster(t, 1)
	c.writeInputs(map[string]string{"pass": "echo fine\n"})
	hash := c.archive("pass", "ARG=x")
	// Spoil the script's blob in the isolate server's store. (A blob that
	// is missing is caught at submission, which checks every manifest's
	// tree; a spoiled one only when a slave fetches it.)
	script := filepath.Join(c.dir, "inputs", "scripts", "pass.sh")
	digest, _, err := isolate.HashFile(isolate.SHA1, script)
	if err != nil {
		t.Fatal(err)
	}
	blobs, _ := filepath.Glob(filepath.Join(c.dataDir, "blobs", "blobs", "cas", "*", digest))
	if len(blobs) != 1 {
		t.Fatalf("the input blob: %v", blobs)
	}
	if err := os.WriteFile(blobs[0], []byte("spoiled\n"), 0o644); err != nil {
		t.Fatalf("spoiling the input blob: %v", err)
	}
	job := c.writeJob("broken.json", []jobTask{{IsolateHash: hash, Description: "broken", MaxRetries: 1}})
	start := time.Now()
	code, stdout, stderr := c.run("submit", job)
	if code != 88 {
		t.Fatalf("submit: %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("the job ended %s after its submission", time.Since(start).Round(time.Millisecond))
	var list protocol.AttemptList
	c.get("/api/v1/jobs/"+lastJob(t, c)+"/tasks", &list)
	if len(list.Tasks) != 2 {
		t.Fatalf("attempts: %+v; want the attempt and its retry", list.Tasks)
	}
	for _, a := range list.Tasks {
		if a.State != "infra_failed" || a.Runs != 2 || !strings.Contains(a.Error, "fetching inputs") {
			t.Errorf("attempt %d: %+v; want infra_failed after 2 runs, saying why", a.Attempt, a)
		}
	}
	var events protocol.EventList
	c.get("/api/v1/events?job="+lastJob(t, c), &events)
	if got := kinds(events.Events); got != "job_submitted attempt_started attempt_aborted attempt_started attempt_finished "+
		"attempt_started attempt_aborted attempt_started attempt_finished" {
		t.Errorf("events: %s", got)
	}
}

func readPID(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// rss is the peak resident set size of a process (VmHWM), in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if rest, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmHWM")
	return 0
}
