package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Two slaves started at once on one host, neither told where to work, each
// take a scratch folder of their own (dist_test-slave and
// dist_test-slave.1 in $TMPDIR), locked with their pid, and run a job
// together; a third told to use a folder that one of them holds refuses
// to start and names the folder and the holder.
func TestTwoSlavesOneHost(t *testing.T) {
	s := newStack(t, 0, 2)
	tmp := reachableDir(t)
	env := append(append([]string{}, s.procEnv...), "DIST_TEST_CNF="+s.slaveCnf, "TMPDIR="+tmp)
	var slaves []*proc
	for i := range 2 {
		p := &proc{t: t, name: fmt.Sprintf("slave-%d", i), env: env,
			args: []string{"slave", "--master", s.master.url, "--slots", "2"}}
		slaves = append(slaves, p)
	}
	for _, p := range slaves { // at once: no wait between the two starts
		p.start()
		t.Cleanup(p.stop)
	}
	waitFor(t, 20*time.Second, "both slaves to register", func() bool {
		var l protocol.SlaveList
		s.get("/api/v1/slaves?alive=1", &l)
		return len(l.Slaves) == 2
	})

	// Each folder is locked by one of the two, with its pid in the lock.
	holders := map[int]string{}
	for _, name := range []string{"dist_test-slave", "dist_test-slave.1"} {
		b, err := os.ReadFile(filepath.Join(tmp, name, "lock"))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s/lock holds %q, not a pid", name, b)
		}
		holders[pid] = name
	}
	for _, p := range slaves {
		if _, ok := holders[p.cmd.Process.Pid]; !ok {
			t.Fatalf("no folder is locked by %s (pid %d): %v", p.name, p.cmd.Process.Pid, holders)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "dist_test-slave.2")); err == nil {
		t.Error("a third scratch folder was made for two slaves")
	}

	// They run a job together: every task once, both slaves used.
	s.writeInputs(map[string]string{"nap": "sleep 0.3; echo ok\n"})
	hash := s.archive("nap", "ARG=x")
	var tasks []jobTask
	for i := range 24 {
		tasks = append(tasks, jobTask{IsolateHash: hash, Description: fmt.Sprintf("nap-%d", i)})
	}
	if code, stdout, stderr := s.run("submit", s.writeJob("job.json", tasks)); code != 0 {
		t.Fatalf("submit exited %d\n%s\n%s", code, stdout, stderr)
	}
	var l protocol.AttemptList
	s.get("/api/v1/jobs/"+lastJob(t, s.cluster)+"/tasks", &l)
	used := map[string]int{}
	for _, a := range l.Tasks {
		if a.State != "passed" {
			t.Errorf("task %s attempt %d: %s", a.TaskID, a.Attempt, a.State)
		}
		used[a.Slave]++
	}
	if len(l.Tasks) != 24 || len(used) != 2 {
		t.Errorf("%d attempts over %d slaves (%v); want 24 over 2", len(l.Tasks), len(used), used)
	}

	// A slave told to use a folder that is held refuses to start (the
	// default folder itself, named, counts as the default: the next free
	// one is taken).
	held := filepath.Join(tmp, "dist_test-slave.1")
	cmd := exec.Command(binary, "slave", "--master", s.master.url, "--slots", "1", "--scratch-dir", held)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("a slave on a held scratch folder exited 0:\n%s", out.String())
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("a slave on a held scratch folder did not stop:\n%s", out.String())
	}
	var holderPID int
	for pid, name := range holders {
		if name == "dist_test-slave.1" {
			holderPID = pid
		}
	}
	for _, want := range []string{held, fmt.Sprintf("pid %d", holderPID), "in use by another slave"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the refusal does not say %q:\n%s", want, out.String())
		}
	}
}
