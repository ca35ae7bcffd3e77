package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
)

// fleet is `dist_test master` over SQLite, beanstalkd and a folder of
// blobs, serving the isolate server too, with slave processes that the
// test or an autoscaler starts. The slaves read the same file. A long
// heartbeat timeout keeps a slave that a busy machine slows from being
// declared lost: these tests are about slaves that leave on purpose.
type fleet struct {
	*cluster
	master *proc
	cnf    string
	runlog string   // where the tasks write what ran: a file per task id
	env    []string // the servers' environment
}

// fleetScripts log each run of a task in a file named by its task id.
var fleetScripts = map[string]string{
	"tick": `echo run >> "$RUNLOG/$DIST_TEST_TASK_ID"; sleep 1` + "\n",
	"long": `echo start >> "$RUNLOG/$DIST_TEST_TASK_ID"; sleep 4; echo end >> "$RUNLOG/$DIST_TEST_TASK_ID"` + "\n",
}

func newFleet(t *testing.T, config string) *fleet {
	t.Helper()
	dir := t.TempDir()
	bs, tube := testenv.Beanstalk(t)
	f := &fleet{cnf: filepath.Join(dir, "dist_test.cnf"), runlog: sharedDir(t)}
	text := fmt.Sprintf(`[beanstalk]
host = %s
tube = %s
[master]
heartbeat_interval = 1s
heartbeat_timeout = 10s
[slave]
kill_grace = 1s
token = %s
%s%s`, bs, tube, stackToken, testTaskEnv, config)
	if err := os.WriteFile(f.cnf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	f.env = append(os.Environ(), "DIST_TEST_CNF="+f.cnf, "RUNLOG="+f.runlog)
	f.master = startProc(t, "master", f.env, true, "master", "--data-dir", filepath.Join(dir, "master"))
	f.env = append(f.env, "DIST_TEST_MASTER="+f.master.url)
	f.cluster = &cluster{t: t, dir: dir, url: f.master.url, env: append(f.env,
		"ISOLATE_SERVER="+f.master.url, "DIST_TEST_JOB_PATH="+filepath.Join(dir, "last-job"))}
	f.writeInputs(fleetScripts)
	return f
}

// startSlave starts a slave process registering as host.
func (f *fleet) startSlave(host string, slots int) *proc {
	return startProc(f.t, host, f.env, false, "slave", "--master", f.url, "--slots", fmt.Sprint(slots),
		"--scratch-dir", filepath.Join(f.dir, "scratch-"+host), "--hostname", host)
}

func (f *fleet) slaves() []protocol.Slave {
	var l protocol.SlaveList
	f.get("/api/v1/slaves", &l)
	return l.Slaves
}

// job writes a job of n tasks of script and submits it without waiting.
func (f *fleet) submit(script string, n int) string {
	f.t.Helper()
	hash := f.archive(script, "ARG=-")
	tasks := make([]jobTask, n)
	for i := range tasks {
		tasks[i] = jobTask{IsolateHash: hash, Description: fmt.Sprintf("%s-%03d", script, i), Timeout: 60}
	}
	code, stdout, stderr := f.run("submit", "--no-wait", "-n", script, f.writeJob(script+".json", tasks))
	if code != 0 {
		f.t.Fatalf("submit exited %d\n%s\n%s\nmaster: %s", code, stdout, stderr, f.master.log)
	}
	return strings.TrimPrefix(lastLine(stdout), "job_id=")
}

func (f *fleet) status(id string) map[string]any {
	var st map[string]any
	f.get("/job_status?job_id="+id, &st)
	return st
}

// runs reads the task runs logged, by task id.
func (f *fleet) runs() map[string]string {
	f.t.Helper()
	entries, err := os.ReadDir(f.runlog)
	if err != nil {
		f.t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(f.runlog, e.Name()))
		if err != nil {
			f.t.Fatal(err)
		}
		out[e.Name()] = string(b)
	}
	return out
}

// A slave running tasks is drained by hostname: the tasks it runs finish
// and are reported passed, it takes no other, deregisters and exits 0,
// draining in the slaves' list until then and terminated after. Another
// slave runs the rest; every task ran once.
func TestDrainEndToEnd(t *testing.T) {
	f := newFleet(t, "")
	s := f.startSlave("drain-me", 2)
	waitFor(t, 20*time.Second, "the slave to register", func() bool { return len(f.slaves()) == 1 })
	id := f.submit("long", 6)
	waitFor(t, 30*time.Second, "two tasks running", func() bool { return f.slaves()[0].Running == 2 })

	for _, bad := range []string{"no-such-host", "'; DROP TABLE slaves; --", strings.Repeat("x", 300)} {
		if code, _, stderr := f.run("drain", bad); code != 1 || !strings.Contains(stderr, "no live slave") {
			t.Errorf("drain %q: exit %d, %s", bad, code, stderr)
		}
	}
	code, stdout, stderr := f.run("drain", "drain-me")
	if code != 0 || !strings.Contains(stdout, "\tdrain-me\tdraining\t2 running") {
		t.Fatalf("drain exited %d\n%s\n%s", code, stdout, stderr)
	}
	if sl := f.slaves(); sl[0].State != "draining" {
		t.Fatalf("after drain: %+v", sl)
	}
	if code := s.exitCode(30 * time.Second); code != 0 {
		t.Fatalf("drained slave exited %d:\n%s", code, s.log)
	}
	if sl := f.slaves(); len(sl) != 1 || sl[0].State != "terminated" || sl[0].Running != 0 {
		t.Fatalf("after the slave left: %+v", sl)
	}
	st := f.status(id)
	if st["succeeded_tasks"] != 2.0 || st["finished_tasks"] != 2.0 || st["retried_tasks"] != 0.0 {
		t.Fatalf("after the drain: %v", st)
	}
	var capa protocol.Capacity
	f.get("/api/v1/capacity", &capa)
	if capa.Queued != 4 || capa.Running != 0 || capa.SlavesAlive != 0 || capa.SlavesDraining != 0 {
		t.Fatalf("capacity after the drain: %+v", capa)
	}
	runs := f.runs()
	if len(runs) != 2 {
		t.Fatalf("the drained slave ran %d tasks, want its 2: %v", len(runs), runs)
	}
	for task, log := range runs {
		if log != "start\nend\n" {
			t.Errorf("%s on the drained slave: %q, want one whole run", task, log)
		}
	}
	if !strings.Contains(s.log.String(), "drained") {
		t.Errorf("the slave did not say it drained:\n%s", s.log)
	}
	// The rest runs on another slave, each task once.
	f.startSlave("finisher", 4)
	waitFor(t, 60*time.Second, "the job to finish", func() bool { return f.status(id)["status"] == "finished" })
	st = f.status(id)
	if st["succeeded_tasks"] != 6.0 || st["total_tasks"] != 6.0 || st["retried_tasks"] != 0.0 || st["failed_tasks"] != 0.0 {
		t.Errorf("job: %v", st)
	}
	runs = f.runs()
	if len(runs) != 6 {
		t.Errorf("%d tasks ran, want 6: %v", len(runs), runs)
	}
	for task, log := range runs {
		if log != "start\nend\n" {
			t.Errorf("%s: %q, want one whole run", task, log)
		}
	}
	var events protocol.EventList
	f.get("/api/v1/events?slave="+f.slaves()[1].ID, &events)
	var kinds []string
	for _, e := range events.Events {
		if strings.HasPrefix(e.Kind, "slave_") {
			kinds = append(kinds, e.Kind)
		}
	}
	if strings.Join(kinds, " ") != "slave_started slave_draining slave_terminated" {
		t.Errorf("events of the drained slave: %q", kinds)
	}
}

// The autoscaler with the local provider, from no slave: a job of 200
// tasks of 1 s brings slaves up (at most max_size 4), the job finishes
// with every task run once, and once the work is done and scale_down_delay
// has passed the idle slaves are drained and their processes removed,
// back to min_size 0. None was lost or killed.
func TestAutoscaleLocalEndToEnd(t *testing.T) {
	f := newFleet(t, `[autoscale]
provider = local
min_size = 0
max_size = 4
target_drain = 10s
scale_down_delay = 3s
interval = 500ms
unknown_runtime = 1s
slave_slots = 4
local_dir = `+filepath.Join(t.TempDir(), "autoscale")+"\n")
	as := startProc(t, "autoscale", f.env, false, "autoscale")
	time.Sleep(2 * time.Second) // a few rounds with nothing to do
	if sl := f.slaves(); len(sl) != 0 {
		t.Fatalf("slaves with nothing to do and min_size 0: %+v", sl)
	}
	id := f.submit("tick", 200)
	maxLive := 0
	waitFor(t, 120*time.Second, "the job to finish", func() bool {
		live := 0
		for _, s := range f.slaves() {
			if s.State == "alive" || s.State == "draining" {
				live++
			}
		}
		maxLive = max(maxLive, live)
		return f.status(id)["status"] == "finished"
	})
	st := f.status(id)
	if st["succeeded_tasks"] != 200.0 || st["total_tasks"] != 200.0 || st["retried_tasks"] != 0.0 || st["failed_tasks"] != 0.0 {
		t.Errorf("job: %v", st)
	}
	runs := f.runs()
	if len(runs) != 200 {
		t.Errorf("%d tasks ran, want 200", len(runs))
	}
	for task, log := range runs {
		if log != "run\n" {
			t.Errorf("%s ran %d times", task, strings.Count(log, "run"))
		}
	}
	if maxLive < 2 || maxLive > 4 {
		t.Errorf("at most %d slaves were live, want 2 to max_size 4", maxLive)
	}
	waitFor(t, 60*time.Second, "the fleet to shrink to 0", func() bool {
		for _, s := range f.slaves() {
			if s.State != "terminated" {
				return false
			}
		}
		return true
	})
	slaves := f.slaves()
	if len(slaves) < 2 || len(slaves) > 4 {
		t.Errorf("%d registrations, want 2 to 4 (max_size)", len(slaves))
	}
	for _, s := range slaves {
		var events protocol.EventList
		f.get("/api/v1/events?slave="+s.ID, &events)
		var kinds []string
		for _, e := range events.Events {
			if strings.HasPrefix(e.Kind, "slave_") {
				kinds = append(kinds, e.Kind)
			}
		}
		if strings.Join(kinds, " ") != "slave_started slave_draining slave_terminated" {
			t.Errorf("slave %s (%s): events %q, want drained then gone", s.ID, s.Hostname, kinds)
		}
	}
	waitFor(t, 10*time.Second, "the autoscaler to remove the slave processes", func() bool {
		return strings.Count(as.log.String(), "slave process removed") == len(slaves)
	})
	log := as.log.String()
	for _, want := range []string{"autoscale decision", "action=\"grow by", "action=\"drain", "machines removed"} {
		if !strings.Contains(log, want) {
			t.Errorf("the autoscaler's log lacks %q:\n%s", want, log)
		}
	}
	// The log holds the slaves' output too: only the autoscaler's own
	// complaints count here.
	for _, bad := range []string{"still there after its slave left", "slave process failed", "autoscale round failed"} {
		if strings.Contains(log, bad) {
			t.Errorf("the autoscaler's log says %q:\n%s", bad, log)
		}
	}
	as.stop()
}

// --dry-run says what it would do, with the inputs, and does nothing:
// 20 tasks of no history counting 5 min each, in 10 min, want 10 slots,
// 5 slaves of 2, capped at max_size 3.
func TestAutoscaleDryRun(t *testing.T) {
	f := newFleet(t, `[autoscale]
provider = local
max_size = 3
interval = 200ms
unknown_runtime = 5m
slave_slots = 2
`)
	f.submit("tick", 20)
	as := startProc(t, "autoscale", f.env, false, "autoscale", "--dry-run")
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(as.log.String(), `action="grow by 3" size=0 wanted=3 target=3 queued=20 running=0 no_history=20 work=1h40m0s`) {
		if time.Now().After(deadline) {
			t.Fatalf("no decision to grow by 3 in:\n%s", as.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second)
	as.stop()
	if sl := f.slaves(); len(sl) != 0 {
		t.Errorf("a dry run started slaves: %+v", sl)
	}
	if strings.Contains(as.log.String(), "slave process started") || strings.Contains(as.log.String(), "fleet grown") {
		t.Errorf("a dry run acted:\n%s", as.log)
	}
}
