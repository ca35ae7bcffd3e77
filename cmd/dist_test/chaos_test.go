package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
)

// TestChaos runs a job of short tasks on 4 slave processes while a seeded
// driver kills and restarts slaves, suspends and resumes them, kills and
// restarts the master, and restarts beanstalkd. At the end every task must
// have exactly one final result, the job's counters must equal a recount of
// its attempts, and no attempt may have passed without having run. The
// master hedges stragglers ([master] hedge), and a retry avoids the slave
// of the run before it: the same holds with both.
//
// CHAOS_TASKS (default 300) and CHAOS_SEED (default 1) shape it; `make
// chaos` runs the long form: 2,000 tasks and a random seed, which it prints.
func TestChaos(t *testing.T) {
	chaos(t, envInt(t, "CHAOS_TASKS", 300), 1, 2)
}

// TestChaosMasters is TestChaos's multi-master mode: three masters on one
// database, queue and bucket behind HAProxy, which the slaves and the
// client alone talk to, and a 500-task job during which masters are killed
// and started again (each fault of the master kind picks one at random;
// the first leaves its master down for good). The same invariants hold.
func TestChaosMasters(t *testing.T) {
	chaos(t, envInt(t, "CHAOS_TASKS", 500), 3, 3)
}

// chaos runs the chaos test with n tasks, masters masters and 4 slaves of
// slots slots each.
func chaos(t *testing.T, n, masters, slots int) {
	seed := uint64(envInt(t, "CHAOS_SEED", 1))
	rng := rand.New(rand.NewPCG(seed, seed))
	runlog := filepath.Join(sharedDir(t), "runs.log")
	// The tasks of every slot append to it.
	if err := os.WriteFile(runlog, nil, 0o666); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(runlog, 0o666); err != nil {
		t.Fatal(err)
	}
	bs := testenv.OwnBeanstalkd(t)
	s := newStackWith(t, stackOptions{slaves: 4, slots: slots, masters: masters, beanstalk: bs, slaveEnv: []string{"RUNLOG=" + runlog},
		config: "[master]\nreconcile_interval = 2s\nhedge = true\n"})
	// Each run logs itself before it does anything, so that a pass can be
	// traced to a run. Task i fails when i%20 == 0 (both attempts), is flaky
	// when i%20 == 1, and passes otherwise.
	s.writeInputs(map[string]string{"chaos": `echo "$DIST_TEST_TASK_ID $DIST_TEST_ATTEMPT" >> "$RUNLOG"
case $1 in 0|1) sleep 0.3 ;; 2) sleep 0.4 ;; 3) sleep 0.8 ;; *) sleep 1.2 ;; esac
case $(( $1 % 20 )) in
  0) exit 1 ;;
  1) [ "$DIST_TEST_ATTEMPT" != 0 ] ;;
esac
`})
	var tasks []jobTask
	retries := map[string]int{}
	hashes := map[int]string{}
	for i := range n {
		variant := i % 20
		if variant > 4 {
			variant = 2 + i%3 // passing tasks share three manifests
		}
		if hashes[variant] == "" {
			hashes[variant] = s.archive("chaos", fmt.Sprintf("ARG=%d", variant))
		}
		d := fmt.Sprintf("chaos-%04d", i)
		tasks = append(tasks, jobTask{IsolateHash: hashes[variant], Description: d, Timeout: 60, MaxRetries: 1})
		retries[d] = 1
	}
	job := s.submitNoWait(tasks)
	start := time.Now()

	var schedule []string
	fault := func(format string, args ...any) {
		line := fmt.Sprintf("%6.1fs  ", time.Since(start).Seconds()) + fmt.Sprintf(format, args...)
		schedule = append(schedule, line)
		t.Log(line)
	}
	ms := s.masters
	if len(ms) == 0 {
		addr := strings.TrimPrefix(s.master.url, "http://")
		s.master.args = append(s.master.args, "--listen", addr)
		ms = []*proc{s.master}
	}
	deadline := start.Add(10 * time.Minute)
	counts := map[string]int{}
	for !s.finished(job) {
		if time.Now().After(deadline) {
			t.Fatalf("the job did not finish within 10 minutes; faults:\n%s", strings.Join(schedule, "\n"))
		}
		time.Sleep(time.Duration(1500+rng.IntN(2500)) * time.Millisecond)
		switch k := rng.IntN(4); k {
		case 0:
			i := rng.IntN(len(s.slaves))
			fault("SIGKILL slave %d, start it again on the same scratch folder", i)
			s.slaves[i].kill()
			s.slaves[i].start()
			counts["slave killed"]++
		case 1:
			i := rng.IntN(len(s.slaves))
			pause := time.Duration(2000+rng.IntN(4000)) * time.Millisecond
			fault("SIGSTOP slave %d for %s", i, pause)
			s.slaves[i].signal(syscall.SIGSTOP)
			time.Sleep(pause)
			s.slaves[i].signal(syscall.SIGCONT)
			counts["slave suspended"]++
		case 2:
			i := rng.IntN(len(ms))
			if len(ms) > 1 && counts["master lost"] == 0 {
				// The first master of several is lost for good: the
				// others carry its slaves and its requests.
				fault("SIGKILL %s for good", ms[i].name)
				ms[i].kill()
				ms = slices.Delete(slices.Clone(ms), i, i+1)
				counts["master lost"]++
				continue
			}
			down := time.Duration(500+rng.IntN(3000)) * time.Millisecond
			fault("SIGKILL %s, start it again after %s", ms[i].name, down)
			ms[i].kill()
			time.Sleep(down)
			ms[i].start()
			counts["master killed"]++
		case 3:
			fault("SIGKILL beanstalkd, start it again with its binlog")
			bs.Kill()
			bs.Start()
			counts["beanstalkd restarted"]++
		}
	}
	took := time.Since(start)

	var j protocol.Job
	s.get("/api/v1/jobs/"+job, &j)
	var list protocol.AttemptList
	s.get("/api/v1/jobs/"+job+"/tasks", &list)
	var rows []model.Attempt
	perTask := map[string][]protocol.Attempt{}
	runs := 0
	for _, a := range list.Tasks {
		rows = append(rows, model.Attempt{TaskID: a.TaskID, Attempt: a.Attempt, State: model.State(a.State), MaxRetries: retries[a.Description]})
		perTask[a.Description] = append(perTask[a.Description], a)
		runs += a.Runs
	}
	if re := model.Recount(rows); re != j.Counts {
		t.Errorf("counters differ from a recount of the attempts:\ncounters %+v\nrecount  %+v", j.Counts, re)
	}
	ran := readRunlog(t, runlog)
	for d, as := range perTask {
		finals, passed := 0, 0
		for _, a := range as {
			if !model.State(a.State).Final() {
				t.Errorf("%s attempt %d is still %s", d, a.Attempt, a.State)
			}
			if a.State == "passed" {
				passed++
				if !ran[fmt.Sprintf("%s %d", a.TaskID, a.Attempt)] {
					t.Errorf("%s attempt %d passed without having run", d, a.Attempt)
				}
			}
			finals++
		}
		if passed > 1 || len(as) > retries[d]+1 {
			t.Errorf("%s: %d attempts, %d passed", d, len(as), passed)
		}
	}
	if len(perTask) != n || j.Status != "finished" || j.TotalGroups != n || j.FinishedGroups != n {
		t.Errorf("%d tasks with attempts, job %s, %d/%d groups finished; want all %d", len(perTask), j.Status, j.FinishedGroups, j.TotalGroups, n)
	}
	summary := fmt.Sprintf("chaos (seed %d, %d masters): %d tasks, %d attempts, %d runs in %s; %d passed, %d failed, %d flaky groups; faults: %v",
		seed, masters, n, len(list.Tasks), runs, took.Round(100*time.Millisecond), j.SucceededGroups, j.FailedGroups, j.FlakyGroups, counts)
	fmt.Println(summary)
	fmt.Println("fault schedule:\n" + strings.Join(schedule, "\n"))
}

// submitNoWait submits a job file without waiting and returns its id.
func (s *stack) submitNoWait(tasks []jobTask) string {
	s.t.Helper()
	if code, _, stderr := s.run("submit", "--no-wait", s.writeJob("chaos.json", tasks)); code != 0 {
		s.t.Fatalf("submit: %s", stderr)
	}
	return lastJob(s.t, s.cluster)
}

// finished asks the master whether the job is finished; a master that is
// down, or answers 503, means "not yet".
func (s *stack) finished(job string) bool {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(s.url + "/api/v1/jobs/" + job)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	var j protocol.Job
	return resp.StatusCode == 200 && json.NewDecoder(resp.Body).Decode(&j) == nil && j.Status == "finished"
}

func readRunlog(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ran := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		ran[strings.TrimSpace(sc.Text())] = true
	}
	return ran
}

func envInt(t testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}
