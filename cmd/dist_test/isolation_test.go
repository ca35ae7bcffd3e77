package main

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/slave/process"
)

// hostileScript tries every attack a task may try on its slave and on the
// tasks of other slots, and prints BREACH for each that works, and how
// many held. It always fails, so that its log is kept.
const hostileScript = `. "$PIDDIR/hostile.env" # MASTER, DATA, CACHE, SLAVE
checked=0
breach() { echo "BREACH $*"; }
held() { checked=$((checked+1)); }
finish() { # LEASE: report that run as passed
  curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d '{"exit_code": 0}' "$MASTER/api/v1/attempts/$1/finish"
}
leases() { cut -d= -f2- | grep -E '^[0-9a-f]{16,}$'; }

# The slave's credentials.
for v in MYSQL_PWD AWS_SECRET_KEY AWS_ACCESS_KEY DIST_TEST_PASSWORD; do
  if [ -n "$(printenv $v)" ]; then breach "env $v"; else held; fi
done

# Other runs' results, with the leases in other processes' environments
# (its own processes are those of its own run).
for e in /proc/[0-9]*/environ; do
  pid=${e#/proc/}; pid=${pid%/environ}
  vars=$(tr '\0' '\n' < "$e" 2>/dev/null) || continue
  [ -n "$vars" ] || continue
  echo "$vars" | grep -qx "DIST_TEST_RUN=$DIST_TEST_RUN" && continue
  breach "read the environment of pid $pid"
  for v in $(echo "$vars" | leases); do
    [ "$(finish "$v")" = 200 ] && breach "forged the result of the run $v"
  done
done
held

# Signals to the slave and to another slot's task.
for target in "$SLAVE" "$(cat "$PIDDIR/sleeper.pid")"; do
  if kill -STOP "$target" 2>/dev/null; then breach "stopped pid $target"; kill -CONT "$target"; else held; fi
done

# The slave's files, and another task's sandbox.
vdir=$(cat "$PIDDIR/victim.dir")
for f in "$DATA/dist_test.db" "$DATA/dist_test.db-wal" "$CACHE/index" "$vdir/victim.secret"; do
  if head -c1 "$f" >/dev/null 2>&1; then breach "read $f"; else held; fi
done
for d in "$DATA" "$DATA/blobs" "$DATA/tmp" "$DATA/scratch" "$DATA/scratch/spool" "$CACHE" "$DATA/scratch/sandboxes" "$vdir"; do
  if ls "$d" >/dev/null 2>&1; then breach "listed $d"; else held; fi
  if touch "$d/planted" 2>/dev/null; then breach "wrote in $d"; else held; fi
done
if [ -w "$DATA/dist_test.db" ]; then breach "may write the database"; else held; fi

# Privileges.
if [ "$(id -u)" = 0 ]; then breach "runs as root"; else held; fi
if grep -q 'NoNewPrivs:.*1' /proc/self/status; then held; else breach "may gain privileges"; fi
echo "held $checked"
touch "$PIDDIR/done"

# Last, as it may end the run: its own result, with whatever in its
# environment could be a lease.
for v in $(env | leases); do
  [ "$(finish "$v")" = 200 ] && breach "reported its own result with $v"
done
exit 1
`

// hostileChecks is how many attacks hostileScript counts as held before
// it tries to report its own result.
const hostileChecks = 30

// Hostile tasks on `dist_test local` run as root, beside the tasks of other
// jobs: reading the slave's credentials, reporting their own result,
// forging another job's with leases read from /proc/*/environ, stopping
// the slave and another slot's task, reading and writing the database, the
// blobs, the spool, the cache and another sandbox, and leaving a daemon
// behind. Every attack fails, and every result stays true.
func TestHostileTasksReachNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("runs the slave as root, with task users")
	}
	share := sharedDir(t)
	marker := strconv.Itoa(1_000_000 + os.Getpid()%1_000_000)
	c := newClusterWith(t, clusterOptions{slots: 4, reachable: true, env: []string{"PIDDIR=" + share,
		"MYSQL_PWD=mysql-secret", "AWS_ACCESS_KEY=aws-access", "AWS_SECRET_KEY=aws-secret", "DIST_TEST_PASSWORD=dist-test-secret"}})
	t.Cleanup(func() { _ = c.cmd.Process.Signal(syscall.SIGCONT) })
	if strings.Contains(c.log.String(), "sandboxes are in") {
		t.Fatalf("the sandboxes left the data folder, which this test means to attack:\n%s", c.log)
	}
	env := fmt.Sprintf("MASTER=%s\nDATA=%s\nCACHE=%s\nSLAVE=%d\n", c.url, c.dataDir, filepath.Join(c.dataDir, "scratch", "cache"), c.cmd.Process.Pid)
	if err := os.WriteFile(filepath.Join(share, "hostile.env"), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	c.writeInputs(map[string]string{
		"victim": `echo $$ > "$PIDDIR/victim.pid"; pwd > "$PIDDIR/victim.dir"; echo secret > victim.secret
while [ ! -e "$PIDDIR/done" ]; do sleep 0.1; done; exit 1` + "\n",
		"sleeper": `echo $$ > "$PIDDIR/sleeper.pid"
while [ ! -e "$PIDDIR/done" ]; do sleep 0.1; done; echo waited` + "\n",
		"hostile": hostileScript,
		"escaper": `setsid env -i sleep ` + marker + ` </dev/null >/dev/null 2>&1 & echo left a daemon` + "\n",
	})
	victims := c.submitNoWait("victims.json", []jobTask{
		{IsolateHash: c.archive("victim", "ARG=v"), Description: "victim", Timeout: 120},
		{IsolateHash: c.archive("sleeper", "ARG=s"), Description: "sleeper", Timeout: 120},
	})
	waitFor(t, 30*time.Second, "the victims to run", func() bool {
		_, err1 := os.Stat(filepath.Join(share, "victim.dir"))
		_, err2 := os.Stat(filepath.Join(share, "sleeper.pid"))
		return err1 == nil && err2 == nil
	})
	hostile := c.submitNoWait("hostile.json", []jobTask{
		{IsolateHash: c.archive("hostile", "ARG=h"), Description: "hostile", Timeout: 120},
		{IsolateHash: c.archive("escaper", "ARG=e"), Description: "escaper", Timeout: 120},
	})
	want := map[string]string{"victim": "failed", "sleeper": "passed", "hostile": "failed", "escaper": "passed"}
	for _, job := range []string{victims, hostile} {
		for _, a := range c.waitJob(job, 2*time.Minute) {
			if a.State != want[a.Description] || a.Runs != 1 {
				t.Errorf("%s: %s after %d runs; want %s after 1", a.Description, a.State, a.Runs, want[a.Description])
			}
		}
	}
	out := c.fetchLog(hostile, "hostile", "stdout")
	if strings.Contains(out, "BREACH") || !strings.Contains(out, fmt.Sprintf("held %d\n", hostileChecks)) {
		t.Errorf("the hostile task's report:\n%s", out)
	}
	if pids := processesRunning("sleep", marker); len(pids) > 0 {
		t.Errorf("the daemon %v that a task left with a cleared environment outlived it", pids)
	}
	filepath.WalkDir(c.dataDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "planted" {
			t.Errorf("the hostile task planted %s", p)
		}
		return nil
	})
	if p, err := os.ReadFile("/proc/" + strconv.Itoa(c.cmd.Process.Pid) + "/stat"); err != nil || strings.Contains(string(p), ") T ") {
		t.Errorf("the slave is stopped or gone: %q, %v", p, err)
	}
}

// The critical probe: a task writes through its read-only input, and
// through the cache's files, wherever it finds them; every later task of
// another job, with read-only inputs or copies, reads the right bytes.
// As root the task runs as its slot's user; as another user the slave runs
// tasks as itself, and gives them copies.
func TestTasksCannotPoisonTheCache(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run the slave as root and as nobody")
	}
	t.Run("root", func(t *testing.T) {
		poisonProbe(t, clusterOptions{slots: 2, reachable: true})
	})
	t.Run("nobody", func(t *testing.T) {
		nobody, err := user.Lookup("nobody")
		if err != nil {
			t.Skip("no user nobody")
		}
		uid, _ := strconv.ParseUint(nobody.Uid, 10, 32)
		gid, _ := strconv.ParseUint(nobody.Gid, 10, 32)
		c := poisonProbe(t, clusterOptions{slots: 2, user: &process.User{UID: uint32(uid), GID: uint32(gid)}})
		if !strings.Contains(c.log.String(), "THIS SLAVE DOES NOT RUN AS ROOT") {
			t.Errorf("a slave not running as root did not say so at start:\n%s", c.log)
		}
	})
}

const rightBytes = "the right bytes\n"

func poisonProbe(t *testing.T, o clusterOptions) *cluster {
	share := sharedDir(t)
	o.env = append(o.env, "PIDDIR="+share)
	c := newClusterWith(t, o)
	cache := filepath.Join(c.dataDir, "scratch", "cache")
	if err := os.WriteFile(filepath.Join(share, "cache.env"), []byte("CACHE="+cache+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(c.dir, "probe")
	if err := os.MkdirAll(in, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"data.txt": rightBytes,
		// Same size as the right bytes: the cache used to check sizes only.
		"poison.sh": `. "$PIDDIR/cache.env"
chmod u+w data.txt && echo "made data.txt writable"
printf 'poisoned bytes!\n' > data.txt && echo "wrote data.txt"
for f in $(find "$CACHE" -type f -name '*-4[0-7][0-7]' 2>/dev/null); do
  m=$(stat -c %Y "$f"); chmod u+w "$f" && printf 'poisoned bytes!\n' > "$f" && chmod a-w "$f" && touch -d "@$m" "$f" && echo "wrote $f"
done
exit 1
`,
		"read.sh": `got=$(cat data.txt); [ "$got" = "the right bytes" ] || { echo "read: $got"; exit 1; }` + "\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(in, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	hashes := map[string]string{}
	archive := func(script string, readOnly int) string {
		iso := filepath.Join(in, fmt.Sprintf("%s-%d.isolate", script, readOnly))
		if h := hashes[iso]; h != "" {
			return h
		}
		body := fmt.Sprintf(`{'variables': {'command': ['bash', '%s.sh'], 'files': ['%s.sh', 'data.txt'], 'read_only': %d}}`, script, script, readOnly)
		if err := os.WriteFile(iso, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		code, out, errs := c.run("isolate", "archive", "--isolate", iso)
		if code != 0 {
			t.Fatalf("archive %s: %s", iso, errs)
		}
		hashes[iso] = lastLine(out)
		return hashes[iso]
	}
	poisoner := c.submitNoWait("poison.json", []jobTask{{IsolateHash: archive("poison", 1), Description: "poison", Timeout: 60}})
	for _, a := range c.waitJob(poisoner, time.Minute) {
		if a.State != "failed" {
			t.Errorf("the poisoner: %+v", a)
		}
	}
	var readers []jobTask
	for i := range 6 {
		readers = append(readers, jobTask{IsolateHash: archive("read", i%2), Description: fmt.Sprintf("read-%d-ro%d", i, i%2), Timeout: 60})
	}
	job := c.submitNoWait("read.json", readers)
	for _, a := range c.waitJob(job, time.Minute) {
		if a.State != "passed" {
			t.Errorf("%s read poisoned inputs: %s\n%s", a.Description, a.State, c.fetchLog(job, a.Description, "stdout"))
		}
	}
	if t.Failed() {
		t.Logf("the poisoner's report:\n%s", c.fetchLog(poisoner, "poison", "stdout"))
	}
	// And the cache holds the right bytes, or nothing, for data.txt.
	sum := sha1.Sum([]byte(rightBytes))
	digest := hex.EncodeToString(sum[:])
	filepath.WalkDir(cache, func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), digest) {
			if b, _ := os.ReadFile(p); string(b) != rightBytes {
				t.Errorf("cache entry %s holds %q", p, b)
			}
		}
		return nil
	})
	return c
}

// A manifest that the isolate code refuses fails its task at once, with
// the reason in its stderr; it is not run again as if the slave were to
// blame.
func TestInvalidManifestFailsItsTaskAtOnce(t *testing.T) {
	c := newCluster(t, 1)
	cas := cas.NewClient(c.url, nil)
	put := func(data string) string {
		d := isolate.HashBytes(isolate.SHA1, []byte(data))
		if err := cas.Upload(context.Background(), d, strings.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
		return d
	}
	blob := put("x")
	tasks := []jobTask{
		{IsolateHash: put("this is not a manifest"), Description: "garbage", MaxRetries: 1},
		{IsolateHash: put(`{"algo":"sha-1","version":"1.4","command":["cat","x"],"files":{"../../x":{"h":"` + blob + `","s":1}}}`),
			Description: "escaping"},
	}
	job := c.submitNoWait("bad.json", tasks)
	why := map[string]string{"garbage": "manifest", "escaping": `"../../x"`}
	got := map[string]int{}
	for _, a := range c.waitJob(job, time.Minute) {
		got[a.Description]++
		if a.State != "failed" || a.Runs != 1 || !strings.Contains(a.Error, why[a.Description]) {
			t.Errorf("%s attempt %d: %s after %d runs, error %q; want failed after 1 run, saying %q", a.Description, a.Attempt, a.State, a.Runs, a.Error, why[a.Description])
		}
		if a.Attempt == 0 {
			if log := c.fetchLog(job, a.Description, "stderr"); !strings.Contains(log, why[a.Description]) {
				t.Errorf("%s: stderr %q does not say why", a.Description, log)
			}
		}
	}
	if got["garbage"] != 2 || got["escaping"] != 1 {
		t.Errorf("attempts %v; want the retry of garbage and one of escaping", got)
	}
}

// With [slave] namespaces = true a task sees only its own processes, and
// nothing it started outlives it.
func TestTaskNamespaces(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("namespaces need a slave running as root")
	}
	marker := strconv.Itoa(2_000_000 + os.Getpid()%1_000_000)
	c := newClusterWith(t, clusterOptions{slots: 1, config: "namespaces = true\n"})
	c.writeInputs(map[string]string{"ns": `n=$(ls /proc | grep -c '^[0-9][0-9]*$'); echo "processes $n"
setsid env -i sleep ` + marker + ` </dev/null >/dev/null 2>&1 &
[ "$n" -lt 10 ] # the init, the shell and its pipeline; the host has many more` + "\n"})
	job := c.submitNoWait("ns.json", []jobTask{{IsolateHash: c.archive("ns", "ARG=x"), Description: "ns", Timeout: 60}})
	for _, a := range c.waitJob(job, time.Minute) {
		if a.State != "passed" {
			t.Errorf("the task saw other processes: %s\n%s", a.State, c.fetchLog(job, "ns", "stdout"))
		}
	}
	if pids := processesRunning("sleep", marker); len(pids) > 0 {
		t.Errorf("the daemon %v outlived its task's namespace", pids)
	}
}

// submitNoWait submits tasks and returns the job's id.
func (c *cluster) submitNoWait(name string, tasks []jobTask) string {
	c.t.Helper()
	if code, _, stderr := c.run("submit", "--no-wait", c.writeJob(name, tasks)); code != 0 {
		c.t.Fatalf("submit %s: %d %s\n%s", name, code, stderr, c.log)
	}
	return lastJob(c.t, c)
}

// waitJob waits for the job to finish and returns its attempts.
func (c *cluster) waitJob(job string, timeout time.Duration) []protocol.Attempt {
	c.t.Helper()
	waitFor(c.t, timeout, "job "+job+" to finish", func() bool {
		var j protocol.Job
		c.get("/api/v1/jobs/"+job, &j)
		return j.Status == "finished"
	})
	var l protocol.AttemptList
	c.get("/api/v1/jobs/"+job+"/tasks", &l)
	return l.Tasks
}

// fetchLog returns a log of the first attempt of the task described desc.
func (c *cluster) fetchLog(job, desc, log string) string {
	c.t.Helper()
	dir := c.t.TempDir()
	if code, _, stderr := c.run("fetch", "-l", "-d", dir, job); code != 0 {
		c.t.Fatalf("fetch: %s", stderr)
	}
	matches, _ := filepath.Glob(filepath.Join(dir, "*.0."+safe(desc)+"."+log))
	if len(matches) != 1 {
		return ""
	}
	b, _ := os.ReadFile(matches[0])
	return string(b)
}

// processesRunning lists the pids whose command line is exactly args.
func processesRunning(args ...string) []int {
	want := strings.Join(args, "\x00") + "\x00"
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && string(b) == want && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// A slave whose configuration holds database or S3 credentials says so at
// start, naming the keys but not their values.
func TestSlaveWarnsOfCredentials(t *testing.T) {
	dir := t.TempDir()
	cnf := filepath.Join(dir, "slave.cnf")
	if err := os.WriteFile(cnf, []byte("[mysql]\nhost = db\ndatabase = d\npassword = the-db-password\n[aws]\naccess_key = the-access-key\nsecret_key = the-secret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(binary, "slave", "--config", cnf, "--master", "http://127.0.0.1:1", "--slots", "1", "--scratch-dir", filepath.Join(dir, "scratch"))
	cmd.Env = append(os.Environ(), "BEANSTALK_HOST=", "MYSQL_PWD=")
	out, _ := cmd.CombinedOutput()
	for _, want := range []string{"database or S3 credentials", "[mysql] password (from file", "[aws] access_key", "[aws] secret_key"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the slave's output does not say %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"the-db-password", "the-access-key", "the-secret-key"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("the slave printed a secret:\n%s", out)
		}
	}
}

// A task's environment is the allowlist and task_env, nothing else of the
// slave's.
func TestTaskEnvironment(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 1, config: "task_env = FIXED=a b c, PASSED, ABSENT\n",
		env: []string{"PASSED=from the slave", "NOT_PASSED=x", "LANG=C.UTF-8"}})
	c.writeInputs(map[string]string{"env": `env | sort; echo "pwd=$PWD"; exit 1` + "\n"})
	job := c.submitNoWait("env.json", []jobTask{{IsolateHash: c.archive("env", "ARG=x"), Description: "env"}})
	c.waitJob(job, time.Minute)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(c.fetchLog(job, "env", "stdout")), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	sandbox := got["pwd"]
	want := map[string]string{
		"PATH": os.Getenv("PATH"), "LANG": "C.UTF-8", "FIXED": "a b c", "PASSED": "from the slave",
		"HOME": sandbox + "/test-tmp", "TMPDIR": sandbox + "/test-tmp", "TEST_TMPDIR": sandbox + "/test-tmp",
		"DIST_TEST_JOB_ID": job, "DIST_TEST_ATTEMPT": "0",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	allowed := map[string]bool{"USER": true, "LOGNAME": true, "DIST_TEST_TASK_ID": true, "DIST_TEST_RUN": true,
		"PWD": true, "SHLVL": true, "_": true, "pwd": true}
	for k := range got {
		if _, ok := want[k]; !ok && !allowed[k] {
			t.Errorf("the task got %s=%q from the slave", k, got[k])
		}
	}
	if run := got["DIST_TEST_RUN"]; len(run) != 24 {
		t.Errorf("DIST_TEST_RUN=%q, want a run id", run)
	}
	if os.Geteuid() == 0 && !strings.HasPrefix(got["USER"], "dist_test-slot-") {
		t.Errorf("USER=%q, want the slot's user", got["USER"])
	}
}
