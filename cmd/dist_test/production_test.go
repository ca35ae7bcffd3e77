package main

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
)

// stack is a production deployment on loopback: MySQL, beanstalkd and S3,
// an isolate server, a master and slave processes.
type stack struct {
	*cluster // the client side: env, run, archive, get
	master   *proc
	masters  []*proc // with stackOptions.masters > 1: master and the others
	isolate  *proc
	slaves   []*proc
	opt      stackOptions
	procEnv  []string // the servers' environment
	slaveCnf string   // the slaves' configuration file
}

// stackToken is the slaves' shared secret in the stacks of the tests.
const stackToken = "token-of-the-test-stack-slaves"

// productionConfig writes the INI file the master, the isolate server and
// the clients read, and the slaves' own, which holds no database or S3
// credentials (as the README tells operators to deploy them); o.config is
// appended to both.
func productionConfig(t testing.TB, dir, isolateURL string, o stackOptions) (cnf, slaveCnf string) {
	t.Helper()
	var dsn *mysql.Config
	var err error
	if o.mysql != nil {
		dsn = mysql.NewConfig()
		dsn.Addr, dsn.User, dsn.DBName = o.mysql.Addr, "root", "dist_test"
	} else if dsn, err = mysql.ParseDSN(testenv.MySQL(t)); err != nil {
		t.Fatal(err)
	}
	host, port, _ := strings.Cut(dsn.Addr, ":")
	bs, tube := "", "dist_test"
	if o.beanstalk != nil {
		bs = o.beanstalk.Addr
	} else {
		bs, tube = testenv.Beanstalk(t)
	}
	s3 := testenv.S3(t)
	if o.s3 != nil {
		s3 = *o.s3
	}
	bucket := testenv.NewBucket(t, s3)
	extra := o.config
	full := fmt.Sprintf(`[mysql]
host = %s
port = %s
user = %s
password = %s
database = %s
[beanstalk]
host = %s
tube = %s
[aws]
endpoint = %s
region = %s
path_style = true
access_key = %s
secret_key = %s
test_result_bucket = %s
[isolate]
server = %s
[master]
heartbeat_interval = 1s
heartbeat_timeout = 3s
[slave]
kill_grace = 1s
token = %s
%s%s`, host, port, dsn.User, dsn.Passwd, dsn.DBName, bs, tube, s3.Endpoint, s3.Region, s3.AccessKey, s3.SecretKey, bucket, isolateURL, stackToken, testTaskEnv, extra)
	slave := fmt.Sprintf(`[beanstalk]
host = %s
tube = %s
[isolate]
server = %s
[slave]
kill_grace = 1s
token = %s
%s%s`, bs, tube, isolateURL, stackToken, testTaskEnv, extra)
	cnf, slaveCnf = filepath.Join(dir, "dist_test.cnf"), filepath.Join(dir, "slave.cnf")
	for p, text := range map[string]string{cnf: full, slaveCnf: slave} {
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cnf, slaveCnf
}

func newStack(t testing.TB, slaves, slots int) *stack {
	return newStackWith(t, stackOptions{slaves: slaves, slots: slots})
}

// stackOptions shape a stack: how many slave processes of how many slots,
// more configuration, and more environment for the slaves.
type stackOptions struct {
	slaves, slots int
	config        string
	slaveEnv      []string
	// Services of the test's own, for the tests that stop them; the shared
	// ones otherwise.
	mysql, beanstalk *testenv.Service
	s3               *testenv.S3Server
	// masters: more than one puts that many masters behind HAProxy, and
	// the clients and slaves talk to it alone (see startMasters).
	masters int
}

func newStackWith(t testing.TB, o stackOptions) *stack {
	t.Helper()
	dir := t.TempDir()
	// The isolate server goes first: the others need its URL. It reads the
	// same [aws] settings; a placeholder [isolate] server does not matter to it.
	cnf, slaveCnf := productionConfig(t, dir, "http://placeholder", o)
	env := append(os.Environ(), "DIST_TEST_CNF="+cnf)
	s := &stack{opt: o, procEnv: env, slaveCnf: slaveCnf}
	s.isolate = startProc(t, "isolate-server", env, true, "isolate-server", "--data-dir", filepath.Join(dir, "isolate"))
	for _, f := range []string{cnf, slaveCnf} {
		b, _ := os.ReadFile(f)
		if err := os.WriteFile(f, []byte(strings.Replace(string(b), "http://placeholder", s.isolate.url, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.master = startProc(t, "master", env, true, "master", "--data-dir", filepath.Join(dir, "master"))
	url := s.master.url
	if o.masters > 1 {
		url = s.startMasters(t, dir, env, o.masters)
	}
	s.cluster = &cluster{t: t, dir: dir, url: url, env: append(env,
		"DIST_TEST_MASTER="+url, "ISOLATE_SERVER="+s.isolate.url,
		"DIST_TEST_JOB_PATH="+filepath.Join(dir, "last-job"))}
	for range o.slaves {
		s.startSlave()
	}
	waitFor(t, 20e9, "the slaves to register", func() bool {
		var l protocol.SlaveList
		s.get("/api/v1/slaves?alive=1", &l)
		return len(l.Slaves) == o.slaves
	})
	return s
}

// startSlave starts one more slave process, with a scratch folder of its own.
func (s *stack) startSlave() *proc {
	n := len(s.slaves)
	env := append(append([]string{}, s.procEnv...), "DIST_TEST_CNF="+s.slaveCnf)
	p := startProc(s.t, fmt.Sprintf("slave-%d", n), append(env, s.opt.slaveEnv...), false,
		"slave", "--master", s.url, "--slots", fmt.Sprint(s.opt.slots),
		"--scratch-dir", filepath.Join(s.dir, fmt.Sprintf("scratch-%d", n)))
	s.slaves = append(s.slaves, p)
	return p
}

// A 300-task job with failures, retries and artifacts on master, isolate
// server and 3 slave processes (2 slots each) over MySQL, beanstalkd and S3:
// every number, the fetched bytes, and presigned links that a plain GET
// follows.
func TestProductionStack(t *testing.T) {
	s := newStack(t, 3, 2)
	s.writeInputs(scripts)
	pass := s.archive("pass", "ARG=p")
	var tasks []jobTask
	for i := range 200 {
		tasks = append(tasks, jobTask{IsolateHash: pass, Description: fmt.Sprintf("pass-%03d", i), Timeout: 60})
	}
	for i := range 40 {
		tasks = append(tasks, jobTask{IsolateHash: s.archive("fail", fmt.Sprintf("ARG=f%d", i)), Description: fmt.Sprintf("fail-%d", i), Timeout: 60})
	}
	for i := range 30 {
		tasks = append(tasks, jobTask{IsolateHash: s.archive("flaky", fmt.Sprintf("ARG=k%d", i)), Description: fmt.Sprintf("flaky-%d", i), Timeout: 60, MaxRetries: 2})
	}
	for i := range 30 {
		tasks = append(tasks, jobTask{IsolateHash: s.archive("artifacts", fmt.Sprintf("ARG=a%d", i)), Description: fmt.Sprintf("artifacts-%d", i),
			Timeout: 60, Globs: []string{"out/**"}})
	}
	code, stdout, stderr := s.run("submit", "-n", "prod", s.writeJob("job.json", tasks))
	if code != 88 {
		t.Fatalf("submit exited %d\n%s\n%s\nmaster: %s", code, stdout, stderr, s.master.log)
	}
	id := strings.TrimPrefix(lastLine(stdout), "job_id=")

	var status map[string]any
	s.get("/job_status?job_id="+id, &status)
	want := map[string]any{
		"status": "finished", "total_tasks": 330.0, "finished_tasks": 330.0, "running_tasks": 0.0,
		"retried_tasks": 30.0, "timedout_tasks": 0.0, "failed_tasks": 70.0, "succeeded_tasks": 260.0,
		"total_groups": 300.0, "finished_groups": 300.0, "failed_groups": 40.0, "succeeded_groups": 260.0,
		"flaky_groups": 30.0, "flaky_tasks": 30.0, "canceled_tasks": 0.0, "canceled_groups": 0.0,
	}
	if !reflect.DeepEqual(status, want) {
		t.Errorf("/job_status =\n %v\nwant\n %v", status, want)
	}

	// Every slave process ran part of the job.
	var all protocol.AttemptList
	s.get("/api/v1/jobs/"+id+"/tasks", &all)
	bySlave := map[string]int{}
	for _, a := range all.Tasks {
		bySlave[a.Slave]++
	}
	if len(all.Tasks) != 330 || len(bySlave) != 3 {
		t.Errorf("%d attempts over %d slaves (%v); want 330 over 3", len(all.Tasks), len(bySlave), bySlave)
	}

	// Links are presigned S3 URLs that a plain GET follows.
	var failed []map[string]any
	s.get("/tasks?job_id="+id+"&status=failed", &failed)
	if len(failed) != 70 {
		t.Fatalf("%d failed attempts listed, want 70", len(failed))
	}
	link := ""
	for _, r := range failed {
		if r["description"] == "fail-7" {
			link, _ = r["stderr_link"].(string)
		}
	}
	u, err := url.Parse(link)
	if err != nil || !strings.HasPrefix(link, testenv.S3(t).Endpoint) || u.Query().Get("X-Amz-Signature") == "" {
		t.Fatalf("stderr link %q is not a presigned S3 URL", link)
	}
	resp, err := http.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "stderr of failure f7\n" {
		t.Errorf("GET of the presigned link: %d %q", resp.StatusCode, body)
	}

	results := filepath.Join(s.dir, "results")
	if code, _, stderr := s.run("fetch", "-l", "-a", "-d", results); code != 0 {
		t.Fatalf("fetch exited %d: %s", code, stderr)
	}
	f7 := safe(taskOf(t, failed, "fail-7", 0)) + ".0.fail_7"
	if b, err := os.ReadFile(filepath.Join(results, f7+".stdout")); err != nil || string(b) != "stdout of failure f7\n" {
		t.Errorf("fetched %s.stdout = %q, %v", f7, b, err)
	}
	var arts []map[string]any
	s.get("/tasks?job_id="+id+"&status=succeeded", &arts)
	a9 := filepath.Join(results, safe(taskOf(t, arts, "artifacts-9", 0))+".0.artifacts_9", "out", "deep", "a.txt")
	if b, err := os.ReadFile(a9); err != nil || string(b) != "artifact a9\n" {
		t.Errorf("unpacked artifact = %q, %v", b, err)
	}
	entries, _ := os.ReadDir(results)
	logs, zips := 0, 0
	for _, e := range entries {
		switch filepath.Ext(e.Name()) {
		case ".stdout", ".stderr":
			logs++
		case ".zip":
			zips++
		}
	}
	// 40 failures × 2 logs + 30 flaky first attempts × 1; 30 archives.
	if logs != 110 || zips != 30 {
		t.Errorf("fetched %d logs and %d archives; want 110 and 30", logs, zips)
	}
}
