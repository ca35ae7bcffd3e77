package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// The four cases of the manager/agent integration-testing guide, on a
// production stack of real processes: each asserts the rows (through the
// API) and the events, not just that the job finished.

// once hangs on the first run of a task and passes on any later one, so a
// test can tell a run that was interrupted from the run that finished.
const onceScript = `if [ -e "$MARK/$1" ]; then echo "again $1"; exit 0; fi
touch "$MARK/$1"; echo $$ > "$MARK/$1.pid"; exec sleep 300
`

type reliability struct {
	*stack
	mark string // where the tasks leave their marks
}

func newReliability(t *testing.T, slaves, slots int, config string) *reliability {
	return newReliabilityWith(t, stackOptions{slaves: slaves, slots: slots, config: config})
}

// submit submits tasks without waiting and returns the job id.
func (r *reliability) submit(tasks []jobTask) string {
	r.t.Helper()
	if code, _, stderr := r.run("submit", "--no-wait", r.writeJob(fmt.Sprintf("job-%d.json", time.Now().UnixNano()), tasks)); code != 0 {
		r.t.Fatalf("submit: %s", stderr)
	}
	return lastJob(r.t, r.cluster)
}

func (r *reliability) attempts(job string) []protocol.Attempt {
	var l protocol.AttemptList
	r.get("/api/v1/jobs/"+job+"/tasks", &l)
	return l.Tasks
}

func (r *reliability) events(query string) []protocol.Event {
	var l protocol.EventList
	r.get("/api/v1/events?"+query, &l)
	return l.Events
}

func (r *reliability) registrations() []protocol.Slave {
	var l protocol.SlaveList
	r.get("/api/v1/slaves", &l)
	return l.Slaves
}

func kinds(events []protocol.Event) string {
	var k []string
	for _, e := range events {
		k = append(k, e.Kind)
	}
	return strings.Join(k, " ")
}

// running waits until n attempts of job run, and returns them.
func (r *reliability) running(job string, n int) []protocol.Attempt {
	r.t.Helper()
	var got []protocol.Attempt
	waitFor(r.t, 30*time.Second, fmt.Sprintf("%d attempts to run", n), func() bool {
		got = got[:0]
		for _, a := range r.attempts(job) {
			if a.State == "running" {
				got = append(got, a)
			}
		}
		return len(got) == n
	})
	return got
}

func (r *reliability) pid(task string) int {
	r.t.Helper()
	var pid int
	waitFor(r.t, 10*time.Second, "the task's pid file", func() bool {
		b, err := os.ReadFile(filepath.Join(r.mark, task+".pid"))
		_, err2 := fmt.Sscan(string(b), &pid)
		return err == nil && err2 == nil && pid > 0
	})
	return pid
}

// process returns the slave process that registered as slaveID.
func (r *reliability) process(slaveID string) *proc {
	r.t.Helper()
	for _, sl := range r.stack.slaves {
		if strings.Contains(sl.log.String(), slaveID) {
			return sl
		}
	}
	r.t.Fatalf("no slave process logged registration %s", slaveID)
	return nil
}

// Case 0: a slave starts; the master records it, with its resources, and
// its heartbeats.
func TestCase0SlaveStarts(t *testing.T) {
	r := newReliability(t, 1, 3, "")
	sl := r.registrations()
	if len(sl) != 1 {
		t.Fatalf("slaves = %+v", sl)
	}
	s := sl[0]
	host, _ := os.Hostname()
	if s.State != "alive" || s.Slots != 3 || s.Hostname != host || s.Version == "" || s.Resources.CPUs < 1 ||
		s.Resources.MemoryBytes <= 0 || s.Resources.DiskFreeBytes <= 0 {
		t.Errorf("slave = %+v", s)
	}
	first := s.LastHeartbeat
	waitFor(t, 5*time.Second, "a heartbeat", func() bool {
		sl := r.registrations()
		return sl[0].LastHeartbeat.After(first) && time.Since(sl[0].LastHeartbeat) < 2*time.Second
	})
	if got := kinds(r.events("slave=" + s.ID)); got != "slave_started" {
		t.Errorf("events of the slave: %s", got)
	}
}

// Case 1: a slave is stopped with SIGTERM while it runs tasks: it kills
// them, gives them back (aborted, neither failed nor a used retry), leaves,
// and exits 0; started again it registers anew and the tasks finish.
func TestCase1SlaveRestartsGracefully(t *testing.T) {
	r := newReliability(t, 1, 2, "")
	hash := func(task string) string { return r.archive("once", "ARG="+task) }
	job := r.submit([]jobTask{{IsolateHash: hash("a"), Description: "a"}, {IsolateHash: hash("b"), Description: "b"}})
	r.running(job, 2)
	pids := []int{r.pid("a"), r.pid("b")}
	old := r.registrations()[0].ID

	start := time.Now()
	r.stack.slaves[0].signal(syscall.SIGTERM)
	if code := r.stack.slaves[0].exitCode(15 * time.Second); code != 0 {
		t.Fatalf("the slave exited %d after SIGTERM:\n%s", code, r.stack.slaves[0].log)
	}
	t.Logf("the slave stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	for _, p := range pids {
		if alive(p) {
			t.Errorf("task process %d outlived its slave", p)
		}
	}
	for _, a := range r.attempts(job) {
		if a.State != "queued" || a.Attempt != 0 || a.Runs != 1 || !strings.Contains(a.Error, "shut down") {
			t.Errorf("attempt after the slave left: %+v", a)
		}
	}
	var j protocol.Job
	r.get("/api/v1/jobs/"+job, &j)
	if j.FailedTasks != 0 || j.RetriedTasks != 0 || j.TotalTasks != 2 || j.RunningTasks != 2 {
		t.Errorf("counters after the abort: %+v", j.Counts)
	}
	if got := kinds(r.events("slave=" + old)); got != "slave_started attempt_started attempt_started attempt_aborted attempt_aborted slave_terminated" {
		t.Errorf("events of the stopped slave: %s", got)
	}
	var q map[string]int
	r.get("/api/v1/queue", &q)
	if q["ready"] != 2 {
		t.Errorf("queue after the abort: %v; want both entries ready again", q)
	}

	r.startSlave()
	if code, stdout, stderr := r.run("watch", job); code != 0 {
		t.Fatalf("watch: %d\n%s\n%s", code, stdout, stderr)
	}
	r.get("/api/v1/jobs/"+job, &j)
	if j.SucceededTasks != 2 || j.TotalTasks != 2 || j.FailedTasks != 0 || j.RetriedTasks != 0 {
		t.Errorf("counters at the end: %+v", j.Counts)
	}
	sl := r.registrations()
	if len(sl) != 2 || sl[0].ID == old || sl[0].State != "alive" || sl[1].State != "terminated" {
		t.Errorf("slaves: %+v; want a new registration alive and the old one terminated", sl)
	}
	for _, a := range r.attempts(job) {
		if a.Slave != sl[0].ID || a.Runs != 2 {
			t.Errorf("attempt %+v; want it run again by the new registration", a)
		}
	}
}

// Case 2: the master is killed and started again 10 s later. Slaves go on
// running; results reported meanwhile wait in their spools and land after
// the restart; the master declares no slave lost in its grace period; each
// task runs once and counts once.
func TestCase2MasterRestarts(t *testing.T) {
	r := newReliability(t, 2, 2, "")
	var tasks []jobTask
	for i := range 4 {
		tasks = append(tasks, jobTask{IsolateHash: r.archive("sleep", "ARG=3"), Description: fmt.Sprintf("sleep-%d", i), Timeout: 60})
	}
	job := r.submit(tasks)
	r.running(job, 4)
	addr := strings.TrimPrefix(r.master.url, "http://")
	r.master.kill()
	time.Sleep(10 * time.Second) // the tasks finish meanwhile
	r.master.args = append(r.master.args, "--listen", addr)
	r.master.start()
	restarted := time.Now()

	if code, stdout, stderr := r.run("watch", job); code != 0 {
		t.Fatalf("watch after the restart: %d\n%s\n%s\nmaster: %s", code, stdout, stderr, r.master.log)
	}
	var j protocol.Job
	r.get("/api/v1/jobs/"+job, &j)
	if j.SucceededTasks != 4 || j.TotalTasks != 4 || j.FinishedTasks != 4 {
		t.Errorf("counters: %+v", j.Counts)
	}
	for _, a := range r.attempts(job) {
		if a.Runs != 1 || a.FinishedAt == nil || a.FinishedAt.Before(restarted.Add(-time.Second)) {
			t.Errorf("attempt %s: runs %d, finished %v; want one run, reported after the restart", a.Description, a.Runs, a.FinishedAt)
		}
	}
	for _, s := range r.registrations() {
		if s.State != "alive" {
			t.Errorf("slave %s is %s after the master's restart", s.ID, s.State)
		}
	}
	all := kinds(r.events(""))
	if strings.Contains(all, "slave_lost") || strings.Contains(all, "attempt_requeued") {
		t.Errorf("events: %s", all)
	}
	if n := strings.Count(all, "attempt_finished"); n != 4 {
		t.Errorf("%d attempt_finished events, want 4", n)
	}
}

// Case 3: a slave is suspended (SIGSTOP) past the heartbeat timeout. The
// master declares it lost and its task runs elsewhere; resumed (SIGCONT),
// it is told to reset, kills the stale task without reporting it, and the
// task counts once.
func TestCase3SlaveSuspended(t *testing.T) {
	r := newReliability(t, 2, 1, "")
	job := r.submit([]jobTask{{IsolateHash: r.archive("once", "ARG=x"), Description: "x"}})
	run := r.running(job, 1)[0]
	stale := r.pid("x")
	victim := r.process(run.Slave)
	victim.signal(syscall.SIGSTOP)
	stopped := time.Now()
	var j protocol.Job
	waitFor(t, 30*time.Second, "the task to finish elsewhere", func() bool {
		r.get("/api/v1/jobs/"+job, &j)
		return j.Status == "finished"
	})
	victim.signal(syscall.SIGCONT)
	waitFor(t, 10*time.Second, "the stale task to be killed", func() bool { return !alive(stale) })

	evs := r.events("job=" + job)
	var lostAt, restartedAt time.Time
	for _, e := range r.events("slave=" + run.Slave) {
		if e.Kind == "slave_lost" {
			lostAt = e.At
		}
	}
	for _, e := range evs {
		if e.Kind == "attempt_started" && e.SlaveID != run.Slave {
			restartedAt = e.At
		}
	}
	if lostAt.IsZero() || restartedAt.IsZero() || restartedAt.Sub(lostAt) > 15*time.Second {
		t.Errorf("lost at %v, running elsewhere at %v; want within 15 s", lostAt, restartedAt)
	}
	t.Logf("suspended at %v; lost after %s; running elsewhere %s after that",
		stopped.Format(time.TimeOnly), lostAt.Sub(stopped).Round(time.Millisecond), restartedAt.Sub(lostAt).Round(time.Millisecond))
	if got := kinds(evs); got != "job_submitted attempt_started attempt_requeued attempt_started attempt_finished" {
		t.Errorf("events of the job: %s", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for kinds(r.events("slave="+run.Slave)) != "slave_started attempt_started slave_lost attempt_requeued slave_reset" {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed slave was not reset; its events: %s\nits log:\n%s", kinds(r.events("slave="+run.Slave)), victim.log)
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second) // its late report, if it sent one, is refused
	r.get("/api/v1/jobs/"+job, &j)
	a := r.attempts(job)
	if j.TotalTasks != 1 || j.SucceededTasks != 1 || len(a) != 1 || a[0].Runs != 2 || a[0].Slave == run.Slave {
		t.Errorf("job %+v, attempts %+v; want one attempt, passed on the other slave in its second run", j.Counts, a)
	}
	for _, s := range r.registrations() {
		if s.State != "alive" {
			t.Errorf("slave %s is %s; the reset one is a slave like any other", s.ID, s.State)
		}
	}
}

// Case 4: a slave is killed (SIGKILL) while it runs a task. Its queue
// connection drops, so the queue hands the entry to the other slave at
// once, and the master lets that slave take the run over as soon as the
// dead one has missed a heartbeat: before the heartbeat timeout, when the
// reaper declares the dead slave lost. The task is run again and counts
// once; the reaper finds no run left to queue again.
func TestCase4SlaveKilled(t *testing.T) {
	r := newReliability(t, 2, 1, "")
	job := r.submit([]jobTask{{IsolateHash: r.archive("once", "ARG=k"), Description: "k"}})
	run := r.running(job, 1)[0]
	stale := r.pid("k")
	// The killed slave cannot kill its task: that is left to the test.
	t.Cleanup(func() { _ = syscall.Kill(stale, syscall.SIGKILL) })
	// Within the master's start grace (2 heartbeat intervals + 1 s from its
	// start, before the job was submitted) only the heartbeat timeout
	// counts, and the reaper may queue the run again first: kill after it.
	time.Sleep(3 * time.Second)
	r.process(run.Slave).kill()
	killed := time.Now()

	var j protocol.Job
	waitFor(t, 60*time.Second, "the task to finish elsewhere", func() bool {
		r.get("/api/v1/jobs/"+job, &j)
		return j.Status == "finished"
	})
	evs := r.events("job=" + job)
	if got := kinds(evs); got != "job_submitted attempt_started attempt_started attempt_finished" {
		t.Fatalf("events of the job: %s; want the run taken over, not queued again", got)
	}
	takeover := evs[2]
	if takeover.SlaveID == run.Slave || !strings.Contains(takeover.Detail, "taking over from "+run.Slave) {
		t.Errorf("second start: %+v; want the other slave taking over from %s", takeover, run.Slave)
	}
	if got := kinds(r.events("slave=" + run.Slave)); got != "slave_started attempt_started" {
		t.Errorf("events of the killed slave when its run was taken over: %s; want it not declared lost yet", got)
	}
	t.Logf("killed at %s; running elsewhere %s later", killed.Format(time.TimeOnly), takeover.At.Sub(killed).Round(time.Millisecond))

	// The reaper declares the dead slave lost later, and has nothing to
	// queue again: the run moved.
	waitFor(t, 60*time.Second, "the killed slave to be declared lost", func() bool {
		return strings.Contains(kinds(r.events("slave="+run.Slave)), "slave_lost")
	})
	if got := kinds(r.events("slave=" + run.Slave)); got != "slave_started attempt_started slave_lost" {
		t.Errorf("events of the killed slave: %s", got)
	}
	r.get("/api/v1/jobs/"+job, &j)
	a := r.attempts(job)
	if j.TotalTasks != 1 || j.SucceededTasks != 1 || j.FinishedTasks != 1 || j.FailedTasks != 0 || j.RetriedTasks != 0 ||
		len(a) != 1 || a[0].Runs != 2 || a[0].Slave == run.Slave || a[0].State != "passed" {
		t.Errorf("job %+v, attempts %+v; want one attempt, passed on the other slave in its second run", j.Counts, a)
	}
	if got := kinds(r.events("job=" + job)); got != "job_submitted attempt_started attempt_started attempt_finished" {
		t.Errorf("events of the job after the reaper: %s", got)
	}
}
