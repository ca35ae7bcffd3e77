package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
)

// The queue, the database and the blob store each go away under a running
// stack and come back; the tests check that nothing is lost, nothing runs
// or counts twice, and nothing hangs.

func sleepTasks(r *reliability, n int, secs string) []jobTask {
	var tasks []jobTask
	for i := range n {
		tasks = append(tasks, jobTask{IsolateHash: r.archive("sleep", "ARG="+secs), Description: fmt.Sprintf("sleep-%d", i), Timeout: 60})
	}
	return tasks
}

// checkOnce waits for the job and checks every task passed, ran once and
// counted once.
func checkOnce(t *testing.T, r *reliability, job string, n int) {
	t.Helper()
	if code, stdout, stderr := r.run("watch", job); code != 0 {
		t.Fatalf("watch: %d\n%s\n%s\nmaster: %s", code, stdout, stderr, r.master.log)
	}
	var j protocol.Job
	r.get("/api/v1/jobs/"+job, &j)
	if j.SucceededTasks != n || j.TotalTasks != n || j.FinishedTasks != n || j.RetriedTasks != 0 {
		t.Errorf("counters: %+v; want %d tasks, each passed once", j.Counts, n)
	}
	for _, a := range r.attempts(job) {
		if a.Runs != 1 {
			t.Errorf("%s ran %d times", a.Description, a.Runs)
		}
	}
}

// beanstalkd restarted without its binlog loses every entry: the
// reconciler puts the queued tasks back and the job finishes, each task
// once.
func TestQueueLostWithoutBinlog(t *testing.T) {
	bs := testenv.OwnBeanstalkd(t)
	r := newReliabilityWith(t, stackOptions{slaves: 1, slots: 1, beanstalk: bs, config: "[master]\nreconcile_interval = 2s\n"})
	job := r.submit(sleepTasks(r, 6, "0.5"))
	r.running(job, 1)
	bs.Kill()
	bs.WipeBinlog()
	bs.Start()
	restarted := time.Now()
	checkOnce(t, r, job, 6)
	var lost []protocol.Event
	for _, e := range r.events("") {
		if e.Kind == "queue_entries_lost" {
			lost = append(lost, e)
		}
	}
	if len(lost) == 0 || lost[0].At.Sub(restarted) > 30*time.Second {
		t.Errorf("queue_entries_lost events %+v; want one within 30 s of the restart", lost)
	} else {
		t.Logf("lost entries found %s after the restart: %s", lost[0].At.Sub(restarted).Round(time.Millisecond), lost[0].Detail)
	}
}

// beanstalkd restarted with its binlog hands the entries of running tasks
// out again: they must not run twice while their slaves live.
func TestQueueRestartWithBinlog(t *testing.T) {
	bs := testenv.OwnBeanstalkd(t)
	r := newReliabilityWith(t, stackOptions{slaves: 2, slots: 2, beanstalk: bs})
	job := r.submit(sleepTasks(r, 8, "2"))
	r.running(job, 4)
	bs.Kill()
	bs.Start()
	checkOnce(t, r, job, 8)
}

// MariaDB stopped while tasks run: their results wait in the slaves'
// spools, the master answers 503 and stays up, and when MariaDB is back
// every result lands once.
func TestDatabaseDownWhileTasksFinish(t *testing.T) {
	db := testenv.OwnMariaDB(t)
	r := newReliabilityWith(t, stackOptions{slaves: 1, slots: 4, mysql: db})
	job := r.submit(sleepTasks(r, 4, "1"))
	r.running(job, 4)
	db.Stop()
	time.Sleep(4 * time.Second) // the tasks finish; their reports fail
	if !strings.Contains(r.stack.slaves[0].log.String(), "reporting the result failed") {
		t.Errorf("the slave did not have to wait for the master:\n%s", r.stack.slaves[0].log)
	}
	db.Start()
	checkOnce(t, r, job, 4)
}

// The S3 server stopped: outputs are retried a few times, then the results
// land marked with their missing outputs; once it is back, outputs are
// stored again.
func TestBlobStoreDown(t *testing.T) {
	srv, s3 := testenv.OwnS3(t)
	r := newReliabilityWith(t, stackOptions{slaves: 1, slots: 2, s3: &s3})
	r.writeInputs(map[string]string{"fail": `sleep 2; echo "out $1"; echo "err $1" >&2; exit 1` + "\n"})
	hash := r.archive("fail", "ARG=x")
	fail := func(name string) jobTask { return jobTask{IsolateHash: hash, Description: name, Timeout: 60} }
	// S3 stops while the tasks run: their inputs are in place, their logs
	// have nowhere to go.
	job := r.submit([]jobTask{fail("down-1"), fail("down-2")})
	r.running(job, 2)
	srv.Stop()
	start := time.Now()
	if code, _, stderr := r.run("watch", job); code != 88 {
		t.Fatalf("watch: %d %s", code, stderr)
	}
	t.Logf("the job ended %s after S3 stopped", time.Since(start).Round(time.Millisecond))
	for _, a := range r.attempts(job) {
		if a.State != "failed" || strings.Join(a.MissingOutputs, ",") != "stderr,stdout" || a.StdoutLink != "" {
			t.Errorf("attempt with S3 down: %+v; want failed, stdout and stderr missing", a)
		}
	}
	srv.Start()
	job = r.submit([]jobTask{fail("up")})
	if code, _, stderr := r.run("watch", job); code != 88 {
		t.Fatalf("watch: %d %s", code, stderr)
	}
	a := r.attempts(job)[0]
	if len(a.MissingOutputs) != 0 || a.StdoutLink == "" || a.StderrLink == "" {
		t.Errorf("attempt with S3 back: %+v; want its logs stored", a)
	}
}

func newReliabilityWith(t *testing.T, o stackOptions) *reliability {
	mark := sharedDir(t)
	o.slaveEnv = append(o.slaveEnv, "MARK="+mark)
	s := newStackWith(t, o)
	s.writeInputs(map[string]string{"once": onceScript, "sleep": "sleep $1; echo slept $1\n"})
	return &reliability{stack: s, mark: mark}
}
