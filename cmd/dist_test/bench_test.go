package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testlog"
)

// The figures of docs/performance.md. Each benchmark measures what a new
// user sees: `dist_test local` or a production stack (MariaDB, beanstalkd,
// S3, a master, an isolate server, slave processes) with 32 slots and
// default settings, driven over HTTP as the client does. Each figure is
// reported as a custom metric (b.ReportMetric) beside the baseline measured
// in the same run: xargs -P 32 over the same commands, a lower bound, an
// idle cluster, or, with DIST_TEST_BASELINE=/path/to/an/older/dist_test, the
// same benchmark on that build (sub-benchmarks build=head and build=base,
// which `benchstat -col /build` compares). They run only with -bench.

// benchSlots is the number of task slots of every benchmark.
const benchSlots = 32

// forEachBuild runs f as a sub-benchmark on this tree's build and, with
// DIST_TEST_BASELINE, on the baseline build. The end-to-end helpers start
// the program named by binary; benchmarks do not run in parallel, so
// swapping it for the sub-benchmark is safe.
func forEachBuild(b *testing.B, f func(b *testing.B)) {
	builds := [][2]string{{"head", binary}}
	if base := os.Getenv("DIST_TEST_BASELINE"); base != "" {
		if _, err := os.Stat(base); err != nil {
			b.Fatalf("DIST_TEST_BASELINE: %v", err)
		}
		builds = append(builds, [2]string{"base", base})
	}
	for _, bd := range builds {
		b.Run("build="+bd[0], func(b *testing.B) {
			saved := binary
			binary = bd[1]
			defer func() { binary = saved }()
			f(b)
		})
	}
}

// benchEnv is a deployment under benchmark and the dist_test processes
// whose CPU time counts as dist_test's.
type benchEnv struct {
	*cluster
	procs func() []int
	stack *stack // nil for local
}

// newBenchLocal starts `dist_test local` with benchSlots slots and a
// configuration file that sets nothing: the defaults a new user gets.
func newBenchLocal(b *testing.B) *benchEnv {
	b.Helper()
	dir := b.TempDir()
	cnf := filepath.Join(dir, "dist_test.cnf")
	if err := os.WriteFile(cnf, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	c := &cluster{t: b, dir: dir, dataDir: filepath.Join(dir, "data"),
		env: append(os.Environ(), "DIST_TEST_CNF="+cnf, "DIST_TEST_JOB_PATH="+filepath.Join(dir, "last-job"))}
	// As cluster.start, with more time: the benchmarks' machine may be busy.
	urlFile := filepath.Join(dir, "url")
	c.log = &testlog.Buffer{}
	c.cmd = exec.Command(binary, "local", "--listen", "127.0.0.1:0", "--url-file", urlFile,
		"--data-dir", c.dataDir, "--slaves", strconv.Itoa(benchSlots))
	c.cmd.Env = c.env
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.stop)
	waitFor(b, 2*time.Minute, "dist_test local to serve", func() bool {
		raw, err := os.ReadFile(urlFile)
		c.url = strings.TrimSpace(string(raw))
		return err == nil && c.url != ""
	})
	c.env = append(c.env, "DIST_TEST_MASTER="+c.url, "ISOLATE_SERVER="+c.url)
	return &benchEnv{cluster: c, procs: func() []int { return []int{c.cmd.Process.Pid} }}
}

// benchStackSlaves is how the production stack's 32 slots are spread.
const benchStackSlaves = 4

// newBenchStack starts a production stack of benchStackSlaves slave
// processes with benchSlots slots in all. It is newStackWith with the
// tests' short heartbeats and kill grace removed from the configuration
// files: the benchmarks measure the defaults.
func newBenchStack(b *testing.B) *benchEnv {
	b.Helper()
	o := stackOptions{slaves: benchStackSlaves, slots: benchSlots / benchStackSlaves}
	dir := b.TempDir()
	cnf, slaveCnf := productionConfig(b, dir, "http://placeholder", o)
	defaults := func(isolateURL string) {
		for _, f := range []string{cnf, slaveCnf} {
			text, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			var keep []string
			for _, l := range strings.Split(string(text), "\n") {
				k, _, _ := strings.Cut(l, "=")
				switch strings.TrimSpace(k) {
				case "heartbeat_interval", "heartbeat_timeout", "kill_grace":
					continue
				}
				keep = append(keep, strings.Replace(l, "http://placeholder", isolateURL, 1))
			}
			if err := os.WriteFile(f, []byte(strings.Join(keep, "\n")), 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	defaults("http://placeholder")
	env := append(os.Environ(), "DIST_TEST_CNF="+cnf)
	s := &stack{opt: o, procEnv: env, slaveCnf: slaveCnf}
	s.isolate = startProc(b, "isolate-server", env, true, "isolate-server", "--data-dir", filepath.Join(dir, "isolate"))
	defaults(s.isolate.url)
	s.master = startProc(b, "master", env, true, "master", "--data-dir", filepath.Join(dir, "master"))
	s.cluster = &cluster{t: b, dir: dir, url: s.master.url, env: append(env,
		"DIST_TEST_MASTER="+s.master.url, "ISOLATE_SERVER="+s.isolate.url,
		"DIST_TEST_JOB_PATH="+filepath.Join(dir, "last-job"))}
	for range o.slaves {
		s.startSlave()
	}
	waitFor(b, 2*time.Minute, "the slaves to register", func() bool {
		var l protocol.SlaveList
		s.get("/api/v1/slaves?alive=1", &l)
		return len(l.Slaves) == o.slaves
	})
	return &benchEnv{cluster: s.cluster, stack: s, procs: func() []int {
		pids := []int{s.master.cmd.Process.Pid, s.isolate.cmd.Process.Pid}
		for _, p := range s.slaves {
			if p.cmd != nil {
				pids = append(pids, p.cmd.Process.Pid)
			}
		}
		return pids
	}}
}

func newBenchEnv(b *testing.B, backend string) *benchEnv {
	if backend == "production" {
		return newBenchStack(b)
	}
	return newBenchLocal(b)
}

// cpuTime is the CPU time (user and system) of processes, their own and
// that of the children they waited for, from /proc/PID/stat.
type cpuTime struct{ self, children time.Duration }

// clockTick is USER_HZ, the unit of /proc/PID/stat's times: 100 on every
// Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

func cpuOf(b *testing.B, pids []int) cpuTime {
	b.Helper()
	var t cpuTime
	for _, pid := range pids {
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			b.Fatal(err)
		}
		// Fields after the command name: state is the first, utime the 12th.
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		tick := func(i int) time.Duration {
			n, err := strconv.ParseInt(f[i], 10, 64)
			if err != nil {
				b.Fatalf("/proc/%d/stat: %v", pid, err)
			}
			return time.Duration(n) * clockTick
		}
		t.self += tick(11) + tick(12)
		t.children += tick(13) + tick(14)
	}
	return t
}

func (t cpuTime) sub(u cpuTime) cpuTime { return cpuTime{t.self - u.self, t.children - u.children} }
func (t cpuTime) add(u cpuTime) cpuTime { return cpuTime{t.self + u.self, t.children + u.children} }

// isolateFor archives a command with its files (name → content) and
// returns the isolate hash.
func (e *benchEnv) isolateFor(name string, command []string, files map[string]string) string {
	b := e.t
	b.Helper()
	dir := filepath.Join(e.dir, "isolates", name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	var names []string
	for n, body := range files {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(body), 0o755); err != nil {
			b.Fatal(err)
		}
		names = append(names, n)
	}
	slices.Sort(names)
	quote := func(s []string) string {
		q := make([]string, len(s))
		for i, v := range s {
			q[i] = "'" + v + "'"
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	isolate := fmt.Sprintf("{'variables': {'command': %s, 'files': %s}}", quote(command), quote(names))
	path := filepath.Join(dir, name+".isolate")
	if err := os.WriteFile(path, []byte(isolate), 0o644); err != nil {
		b.Fatal(err)
	}
	code, out, errs := e.run("isolate", "archive", "--isolate", path)
	if code != 0 {
		b.Fatalf("isolate archive: exit %d\n%s", code, errs)
	}
	return lastLine(out)
}

// submit posts a job as the client does and returns its id.
func (e *benchEnv) submit(user string, tasks []jobTask) string {
	b := e.t
	b.Helper()
	body, err := json.Marshal(map[string]any{"user": user, "name": "bench", "tasks": tasks})
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.Post(e.url+"/api/v1/jobs", "application/json", bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	var j protocol.Job
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(answer, &j) != nil || j.ID == "" {
		b.Fatalf("POST /api/v1/jobs: %d %s", resp.StatusCode, answer)
	}
	return j.ID
}

// wait polls a job until it has finished and checks that every task
// passed. The poll interval does not count: the figures come from the
// master's own clock.
func (e *benchEnv) wait(id string, timeout time.Duration) protocol.Job {
	b := e.t
	b.Helper()
	var j protocol.Job
	waitFor(b, timeout, "job "+id, func() bool {
		e.get("/api/v1/jobs/"+id, &j)
		return j.Status == "finished"
	})
	if j.SucceededTasks != j.TotalTasks || j.FinishedAt == nil {
		b.Fatalf("job %s: %d of %d tasks passed", id, j.SucceededTasks, j.TotalTasks)
	}
	return j
}

// attempts lists every attempt of a job, page by page.
func (e *benchEnv) attempts(id string) []protocol.Attempt {
	var all []protocol.Attempt
	after := ""
	for {
		var page protocol.AttemptList
		e.get(fmt.Sprintf("/api/v1/jobs/%s/tasks?limit=%d&after=%s", id, protocol.MaxPage, after), &page)
		all = append(all, page.Tasks...)
		if page.Next == "" || len(page.Tasks) == 0 {
			return all
		}
		after = page.Next
	}
}

// startedBetween returns the earliest and latest start of a job's attempts.
func startedBetween(b *testing.B, attempts []protocol.Attempt) (first, last time.Time) {
	for _, a := range attempts {
		if a.StartedAt == nil {
			b.Fatalf("attempt %s.%d never started", a.TaskID, a.Attempt)
		}
		if first.IsZero() || a.StartedAt.Before(first) {
			first = *a.StartedAt
		}
		if a.StartedAt.After(last) {
			last = *a.StartedAt
		}
	}
	return first, last
}

// xargs runs `xargs -P 32 -n 1 command...` over args in dir: the baseline
// of a shell user with the same commands on the same slots. It returns
// the wall time and the CPU time of the commands (xargs's children).
func xargs(b *testing.B, dir string, args []string, command ...string) (time.Duration, time.Duration) {
	b.Helper()
	cmd := exec.Command("xargs", append([]string{"-P", strconv.Itoa(benchSlots), "-n", "1"}, command...)...)
	cmd.Dir = dir
	cmd.Stdin = strings.NewReader(strings.Join(args, "\n") + "\n")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("xargs %v: %v\n%s", command, err, errb.String())
	}
	wall := time.Since(start)
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	return wall, cpu
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns the median of at least one duration.
func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// The dispatch of a 10,000-task job of no-op tasks (the command true)
// through 32 slots. It reports:
//   - tasks/s: tasks over the job's time on the master's clock, from
//     submission to the last result (xargs: over its wall time);
//   - cpu-ms/task: CPU time of the dist_test processes themselves (local,
//     or master, isolate server and slaves), the tasks' excluded;
//   - child-cpu-ms/task: CPU time of their waited children: each task's
//     sandbox init and the task (xargs: the task alone, the baseline);
//   - first-start-ms: from the POST of the job to its first attempt's start;
//   - page500-ms and list10k-ms: GET /api/v1/jobs/{id}/tasks of a page of
//     500 from the middle of the 10,000 and of all of them, median of 20.
func BenchmarkDispatch(b *testing.B) {
	const tasks = 10000
	b.Run("backend=xargs", func(b *testing.B) {
		args := make([]string, tasks)
		for i := range args {
			args[i] = strconv.Itoa(i)
		}
		var wall, cpu time.Duration
		for b.Loop() {
			w, c := xargs(b, b.TempDir(), args, "true")
			wall += w
			cpu += c
		}
		b.ReportMetric(float64(tasks*b.N)/wall.Seconds(), "tasks/s")
		b.ReportMetric(ms(cpu)/float64(tasks*b.N), "child-cpu-ms/task")
	})
	for _, backend := range []string{"local", "production"} {
		b.Run("backend="+backend, func(b *testing.B) {
			forEachBuild(b, func(b *testing.B) {
				e := newBenchEnv(b, backend)
				hash := e.isolateFor("noop", []string{"true"}, nil)
				job := make([]jobTask, tasks)
				for i := range job {
					job[i] = jobTask{IsolateHash: hash, Description: fmt.Sprintf("noop-%05d", i)}
				}
				var elapsed, firstStart time.Duration
				var cpu cpuTime
				var id string
				for b.Loop() {
					before := cpuOf(b, e.procs())
					posted := time.Now()
					id = e.submit("bench", job)
					j := e.wait(id, 30*time.Minute)
					cpu = cpu.add(cpuOf(b, e.procs()).sub(before))
					elapsed += j.FinishedAt.Sub(j.SubmittedAt)
					first, _ := startedBetween(b, e.attempts(id))
					firstStart += first.Sub(posted)
				}
				n := float64(tasks * b.N)
				b.ReportMetric(n/elapsed.Seconds(), "tasks/s")
				b.ReportMetric(ms(cpu.self)/n, "cpu-ms/task")
				b.ReportMetric(ms(cpu.children)/n, "child-cpu-ms/task")
				b.ReportMetric(ms(firstStart)/float64(b.N), "first-start-ms")

				// The pages of the last job, now that it is idle.
				var mid protocol.AttemptList
				e.get(fmt.Sprintf("/api/v1/jobs/%s/tasks?limit=%d", id, tasks/2), &mid)
				if mid.Next == "" {
					// A build without pages answers the whole list: no page figure.
					b.ReportMetric(ms(timeGET(b, e, "/api/v1/jobs/"+id+"/tasks")), "list10k-ms")
					return
				}
				b.ReportMetric(ms(timeGET(b, e, fmt.Sprintf("/api/v1/jobs/%s/tasks?limit=500&after=%s", id, mid.Next))), "page500-ms")
				b.ReportMetric(ms(timeGET(b, e, fmt.Sprintf("/api/v1/jobs/%s/tasks?limit=%d", id, tasks))), "list10k-ms")
			})
		})
	}
}

// timeGET returns the median time of 20 GETs of path, body read.
func timeGET(b *testing.B, e *benchEnv, path string) time.Duration {
	b.Helper()
	var d []time.Duration
	for range 20 {
		start := time.Now()
		resp, err := http.Get(e.url + path)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v", path, resp.StatusCode, err)
		}
		d = append(d, time.Since(start))
	}
	return median(d)
}

// 2,000 tasks of `sleep 0.1` through 32 slots: the job's time on the
// master's clock (s) over xargs -P 32's wall time for the same commands
// measured just before it (xargs-s), as vs-xargs.
func BenchmarkSleep(b *testing.B) {
	const tasks = 2000
	for _, backend := range []string{"local", "production"} {
		b.Run("backend="+backend, func(b *testing.B) {
			forEachBuild(b, func(b *testing.B) {
				e := newBenchEnv(b, backend)
				hash := e.isolateFor("sleep", []string{"sleep", "0.1"}, nil)
				job := make([]jobTask, tasks)
				args := make([]string, tasks)
				for i := range job {
					job[i] = jobTask{IsolateHash: hash, Description: fmt.Sprintf("sleep-%04d", i)}
					args[i] = "0.1"
				}
				var ours, theirs time.Duration
				for b.Loop() {
					w, _ := xargs(b, e.dir, args, "sleep")
					theirs += w
					j := e.wait(e.submit("bench", job), 30*time.Minute)
					ours += j.FinishedAt.Sub(j.SubmittedAt)
				}
				b.ReportMetric(ours.Seconds()/float64(b.N), "s")
				b.ReportMetric(theirs.Seconds()/float64(b.N), "xargs-s")
				b.ReportMetric(ours.Seconds()/theirs.Seconds(), "vs-xargs")
			})
		})
	}
}

// heavyTail returns the runtimes of the heavy-tailed job: 400 tasks from
// 0.05 to 5.4 s, Pareto (shape 0.75) cut at 5.4 s, from a fixed seed, in
// submission order. They sum to 182 s, 5.69 s on each of 32 slots, so
// that both the longest task and the total bound the makespan.
func heavyTail() []float64 {
	r := rand.New(rand.NewPCG(10, 0))
	d := make([]float64, 400)
	for i := range d {
		v := 0.05 / math.Pow(1-r.Float64(), 1/0.75)
		d[i] = math.Round(min(v, 5.4)*100) / 100
	}
	return d
}

// lowerBound is the least makespan of runtimes on benchSlots slots that
// any schedule can reach: the longest task, or the total spread evenly.
func lowerBound(runtimes []float64) float64 {
	var sum float64
	for _, d := range runtimes {
		sum += d
	}
	return max(slices.Max(runtimes), sum/benchSlots)
}

// heavyScript runs task i of the heavy-tailed job: i is the last field of
// DIST_TEST_TASK_ID under dist_test, the argument under xargs.
func heavyScript(runtimes []float64) string {
	s := make([]string, len(runtimes))
	for i, d := range runtimes {
		s[i] = strconv.FormatFloat(d, 'f', 2, 64)
	}
	return "d=(" + strings.Join(s, " ") + ")\ni=${1:-${DIST_TEST_TASK_ID##*.}}\nexec sleep ${d[$i]}\n"
}

// The heavy-tailed job's makespan (the job's time on the master's clock)
// over the lower bound (vs-bound), in three cases: the runtimes known from
// an earlier run of the same tests (history), none known (first-run), and
// a quarter of the tests new (new-25pct). xargs -P 32 over the same
// commands in submission order and longest first are the baselines.
func BenchmarkHeavyTail(b *testing.B) {
	runtimes := heavyTail()
	bound := lowerBound(runtimes)
	script := heavyScript(runtimes)
	b.Run("backend=xargs", func(b *testing.B) {
		dir := b.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "heavy.sh"), []byte(script), 0o755); err != nil {
			b.Fatal(err)
		}
		submission := make([]string, len(runtimes))
		for i := range submission {
			submission[i] = strconv.Itoa(i)
		}
		longest := slices.Clone(submission)
		slices.SortStableFunc(longest, func(x, y string) int {
			i, _ := strconv.Atoi(x)
			j, _ := strconv.Atoi(y)
			return cmp.Compare(runtimes[j], runtimes[i])
		})
		for _, order := range []struct {
			name string
			args []string
		}{{"submission", submission}, {"longest-first", longest}} {
			b.Run("order="+order.name, func(b *testing.B) {
				var wall time.Duration
				for b.Loop() {
					w, _ := xargs(b, dir, order.args, "bash", "heavy.sh")
					wall += w
				}
				b.ReportMetric(wall.Seconds()/float64(b.N), "makespan-s")
				b.ReportMetric(wall.Seconds()/float64(b.N)/bound, "vs-bound")
			})
		}
	})
	b.Run("backend=local", func(b *testing.B) {
		forEachBuild(b, func(b *testing.B) {
			e := newBenchLocal(b)
			hash := e.isolateFor("heavy", []string{"bash", "heavy.sh"}, map[string]string{"heavy.sh": script})
			// Descriptions name the tests, and history is kept by description:
			// prefix picks a test's name, so that a fresh name has none.
			job := func(name func(i int) string) []jobTask {
				tasks := make([]jobTask, len(runtimes))
				for i := range tasks {
					tasks[i] = jobTask{IsolateHash: hash, Description: name(i)}
				}
				return tasks
			}
			known := func(i int) string { return fmt.Sprintf("heavy-%03d", i) }
			fresh := 0
			cases := []struct {
				name string
				desc func(i int) string
			}{
				{"first-run", func(i int) string { return fmt.Sprintf("new%d-%03d", fresh, i) }},
				{"history", known},
				{"new-25pct", func(i int) string {
					if i%4 == 3 {
						return fmt.Sprintf("new%d-%03d", fresh, i)
					}
					return known(i)
				}},
			}
			// The known tests' history: one run before the cases.
			e.wait(e.submit("bench", job(known)), 10*time.Minute)
			for _, c := range cases {
				b.Run("case="+c.name, func(b *testing.B) {
					var span time.Duration
					for b.Loop() {
						fresh++
						j := e.wait(e.submit("bench", job(c.desc)), 10*time.Minute)
						span += j.FinishedAt.Sub(j.SubmittedAt)
					}
					b.ReportMetric(span.Seconds()/float64(b.N), "makespan-s")
					b.ReportMetric(span.Seconds()/float64(b.N)/bound, "vs-bound")
				})
			}
		})
	})
}

// Fair share: user A's 10,000-task job (1 s tasks) occupies the 32 slots
// when user B submits 10 tasks of 0.1 s. Reported: from B's POST until all
// of B's tasks have started (b-start-ms) and until B's job has finished
// (b-finish-ms), and the same 10 tasks' b-finish-ms on the idle cluster
// just before (idle-finish-ms) as the baseline.
func BenchmarkFairShare(b *testing.B) {
	forEachBuild(b, func(b *testing.B) {
		e := newBenchLocal(b)
		long := e.isolateFor("long", []string{"sleep", "1"}, nil)
		short := e.isolateFor("short", []string{"sleep", "0.1"}, nil)
		big := make([]jobTask, 10000)
		for i := range big {
			big[i] = jobTask{IsolateHash: long, Description: fmt.Sprintf("a-%05d", i)}
		}
		small := make([]jobTask, 10)
		for i := range small {
			small[i] = jobTask{IsolateHash: short, Description: fmt.Sprintf("b-%02d", i)}
		}
		// B's job's time from its POST until all its tasks started and until it finished.
		measure := func() (started, finished time.Duration) {
			posted := time.Now()
			id := e.submit("userB", small)
			j := e.wait(id, 30*time.Minute)
			_, last := startedBetween(b, e.attempts(id))
			return last.Sub(posted), j.FinishedAt.Sub(posted)
		}
		var idle, start, finish time.Duration
		for b.Loop() {
			_, f := measure()
			idle += f
			a := e.submit("userA", big)
			waitFor(b, 5*time.Minute, "user A's job to fill the slots", func() bool {
				var page protocol.AttemptList
				e.get("/api/v1/jobs/"+a+"/tasks?status=running&limit=1000", &page)
				return len(page.Tasks) >= benchSlots
			})
			s, f := measure()
			start += s
			finish += f
			var j protocol.Job
			e.get("/api/v1/jobs/"+a, &j)
			if j.Status == "finished" {
				b.Fatalf("user A's job finished before user B's: nothing was measured")
			}
			e.cancel(a)
			waitFor(b, 5*time.Minute, "user A's job to end", func() bool {
				e.get("/api/v1/jobs/"+a, &j)
				return j.Status == "finished"
			})
		}
		n := float64(b.N)
		b.ReportMetric(ms(idle)/n, "idle-finish-ms")
		b.ReportMetric(ms(start)/n, "b-start-ms")
		b.ReportMetric(ms(finish)/n, "b-finish-ms")
	})
}

// cancel cancels a job.
func (e *benchEnv) cancel(id string) {
	b := e.t
	b.Helper()
	resp, err := http.Post(e.url+"/api/v1/jobs/"+id+"/cancel", "application/json", nil)
	if err != nil {
		b.Fatal(err)
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("cancel %s: %d %s", id, resp.StatusCode, answer)
	}
}

// descendants returns the processes under pid, from /proc.
func descendants(pid int) []int {
	parent := map[int]int{}
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		f := strings.Fields(string(raw[bytes.LastIndexByte(raw, ')')+1:]))
		if pp, err := strconv.Atoi(f[1]); err == nil {
			parent[p] = pp
		}
	}
	var out []int
	for p := range parent {
		for q := parent[p]; q > 1; q = parent[q] {
			if q == pid {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// Takeover: on a production stack with default settings (heartbeats,
// timeouts), the slave process that runs a job's only task is SIGKILLed;
// reported is the time from the kill until the task runs on another slave
// (takeover-s), as the attempt list shows it, polled every 20 ms.
func BenchmarkTakeover(b *testing.B) {
	forEachBuild(b, func(b *testing.B) {
		e := newBenchStack(b)
		// A fleet's master has been up longer than its start grace (2
		// heartbeat intervals + 1 s, 11 s by default), within which only
		// the heartbeat timeout declares a slave gone: kills come after it.
		graceOver := time.Now().Add(12 * time.Second)
		hash := e.isolateFor("long", []string{"sleep", "600"}, nil)
		running := func(id string, not string) (protocol.Attempt, bool) {
			for _, a := range e.attempts(id) {
				if a.State == "running" && a.Slave != "" && a.Slave != not {
					return a, true
				}
			}
			return protocol.Attempt{}, false
		}
		var total time.Duration
		for i := 0; b.Loop(); i++ {
			id := e.submit("bench", []jobTask{{IsolateHash: hash, Description: fmt.Sprintf("takeover-%d", i), MaxRetries: 1}})
			var victim protocol.Attempt
			waitFor(b, time.Minute, "the task to start", func() bool {
				var ok bool
				victim, ok = running(id, "")
				return ok
			})
			// The slave process with a task under it is the one that runs it.
			var killed *proc
			var orphans []int
			waitFor(b, time.Minute, "the task's process", func() bool {
				for _, p := range e.stack.slaves {
					if p.cmd == nil {
						continue
					}
					d := descendants(p.cmd.Process.Pid)
					for _, pid := range d {
						if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); bytes.Contains(cmdline, []byte("sleep\x00600")) {
							killed, orphans = p, d
							return true
						}
					}
				}
				return false
			})
			time.Sleep(time.Until(graceOver))
			start := time.Now()
			killed.kill()
			deadline := start.Add(5 * time.Minute)
			for {
				if _, ok := running(id, victim.Slave); ok {
					break
				}
				if time.Now().After(deadline) {
					b.Fatalf("the task of job %s did not start on another slave within 5 minutes", id)
				}
				time.Sleep(20 * time.Millisecond)
			}
			total += time.Since(start)
			// The killed slave's task, if it outlived it.
			for _, pid := range orphans {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
			e.cancel(id)
			// A new slave in its place, registered before the next kill
			// (or the end, whose SIGTERM it must be ready for).
			restart := time.Now()
			e.stack.startSlave()
			waitFor(b, time.Minute, "the new slave to register", func() bool {
				var l protocol.SlaveList
				e.get("/api/v1/slaves?alive=1", &l)
				for _, s := range l.Slaves {
					if s.RegisteredAt.After(restart) {
						return true
					}
				}
				return false
			})
		}
		b.ReportMetric(total.Seconds()/float64(b.N), "takeover-s")
	})
}
