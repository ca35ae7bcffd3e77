package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
)

// A master whose database, queue or blob store cannot be reached at start
// says so in one line naming the setting, and exits non-zero.
func TestMasterStartErrors(t *testing.T) {
	closed := testenv.FreePort(t)
	good := `[beanstalk]
host = ` + func() string { a, _ := testenv.Beanstalk(t); return a }() + "\n"
	cases := []struct {
		name, cnf, says string
	}{
		{"mysql", "[mysql]\nhost = 127.0.0.1\nport = " + fmt.Sprint(closed) + "\nuser = root\ndatabase = x\n" + good,
			fmt.Sprintf("[mysql]: mysql at 127.0.0.1:%d", closed)},
		{"beanstalkd", fmt.Sprintf("[beanstalk]\nhost = 127.0.0.1:%d\n", closed),
			fmt.Sprintf("[beanstalk] host: cannot connect to beanstalkd at 127.0.0.1:%d", closed)},
		{"no beanstalkd", "", "[beanstalk] host is not set"},
		{"s3", good + fmt.Sprintf("[aws]\nendpoint = http://127.0.0.1:%d\npath_style = true\naccess_key = a\nsecret_key = b\ntest_result_bucket = bucket\n", closed),
			"[aws]: s3 unreachable for bucket \"bucket\""},
		{"no slave credentials", "#no token\n" + good, "no slave credentials: set [slave] token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cnf := filepath.Join(dir, "dist_test.cnf")
			if !strings.HasPrefix(c.cnf, "#no token") {
				c.cnf = "[slave]\ntoken = " + stackToken + "\n" + c.cnf
			}
			if err := os.WriteFile(cnf, []byte(c.cnf), 0o644); err != nil {
				t.Fatal(err)
			}
			cl := &cluster{t: t, dir: dir, env: append(os.Environ(), "DIST_TEST_CNF="+cnf)}
			start := time.Now()
			code, _, stderr := cl.run("master", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"))
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if code == 0 || len(lines) != 1 || !strings.Contains(lines[0], c.says) {
				t.Errorf("exit %d after %s, stderr:\n%s\nwant one line containing %q", code, time.Since(start).Round(time.Millisecond), stderr, c.says)
			}
		})
	}
}

// MariaDB and beanstalkd stopped under a running master: the API calls that
// need them answer 503, the master stays up, and it recovers by itself when
// they are back; the job submitted meanwhile then runs.
func TestMasterSurvivesOutages(t *testing.T) {
	db := testenv.OwnMariaDB(t)
	bs := testenv.OwnBeanstalkd(t)
	dir := t.TempDir()
	host, port, _ := strings.Cut(db.Addr, ":")
	cnf := filepath.Join(dir, "dist_test.cnf")
	err := os.WriteFile(cnf, []byte(fmt.Sprintf(`[mysql]
host = %s
port = %s
user = root
database = dist_test
[beanstalk]
host = %s
[master]
heartbeat_interval = 1s
heartbeat_timeout = 3s
[slave]
token = %s
`, host, port, bs.Addr, stackToken)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DIST_TEST_CNF="+cnf)
	master := startProc(t, "master", env, true, "master", "--data-dir", filepath.Join(dir, "data"))
	c := &cluster{t: t, dir: dir, url: master.url, env: append(env, "DIST_TEST_MASTER="+master.url,
		"ISOLATE_SERVER="+master.url, "DIST_TEST_JOB_PATH="+filepath.Join(dir, "last-job"))}
	c.writeInputs(scripts)
	hash := c.archive("pass", "ARG=x")
	submit := func(name string) (int, string) {
		code, _, stderr := c.run("submit", "--no-wait", "-n", name, c.writeJob(name+".json",
			[]jobTask{{IsolateHash: hash, Description: name + "-a"}, {IsolateHash: hash, Description: name + "-b"}}))
		return code, stderr
	}
	if code, stderr := submit("before"); code != 0 {
		t.Fatalf("submit: %s", stderr)
	}
	jobPath := "/api/v1/jobs/" + lastJob(t, c)
	status := func(path string) int {
		resp, err := http.Get(master.url + path)
		if err != nil {
			t.Fatalf("the master stopped answering: %v\n%s", err, master.log)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	db.Stop()
	for _, p := range []string{jobPath, "/job_status?job_id=" + lastJob(t, c), "/api/v1/jobs"} {
		if got := status(p); got != http.StatusServiceUnavailable {
			t.Errorf("GET %s with MariaDB down: %d, want 503", p, got)
		}
	}
	// The master watches its backends every second: an outage it saw is
	// told (a shorter one may go untold).
	waitFor(t, 10*time.Second, "the master to tell the database's outage", func() bool {
		return strings.Contains(master.log.String(), `msg="a service does not answer" service=database`)
	})
	db.Start()
	waitFor(t, 30*time.Second, "the master to reach MariaDB again", func() bool { return status(jobPath) == 200 })

	bs.Stop()
	if got := status("/api/v1/queue"); got != http.StatusServiceUnavailable {
		t.Errorf("GET /api/v1/queue with beanstalkd down: %d, want 503", got)
	}
	// Submission needs only the database: it is accepted, and queued later.
	if code, stderr := submit("during"); code != 0 {
		t.Errorf("submit with beanstalkd down: %s", stderr)
	}
	waitFor(t, 10*time.Second, "the master to tell the queue's outage", func() bool {
		return strings.Contains(master.log.String(), `msg="a service does not answer" service=queue`)
	})
	bs.Start()
	waitFor(t, 30*time.Second, "the master to reach beanstalkd again", func() bool { return status("/api/v1/queue") == 200 })

	// Each outage is told once each way, in the events (and the log).
	waitFor(t, 10*time.Second, "the outages in the events", func() bool {
		var l protocol.EventList
		c.get("/api/v1/events?limit=1000", &l)
		seen := map[string]int{}
		for _, e := range l.Events {
			if e.Kind == "service_down" || e.Kind == "service_back" {
				name, _, _ := strings.Cut(e.Detail, ":")
				name, _, _ = strings.Cut(name, ",")
				seen[e.Kind+" "+name]++
			}
		}
		return seen["service_down database"] == 1 && seen["service_back database"] == 1 &&
			seen["service_down queue"] == 1 && seen["service_back queue"] == 1
	})
	for _, want := range []string{`msg="a service answers again" service=database`, `msg="a service answers again" service=queue`} {
		if !strings.Contains(master.log.String(), want) {
			t.Errorf("the master's log does not say %s", want)
		}
	}

	startProc(t, "slave", env, false, "slave", "--master", master.url, "--slots", "2", "--scratch-dir", filepath.Join(dir, "scratch"))
	code, stdout, stderr := c.run("watch")
	if code != 0 {
		t.Errorf("the job submitted during the outage exited %d\n%s\n%s\nmaster: %s", code, stdout, stderr, master.log)
	}
	var jobs struct {
		Jobs []struct {
			ID              string `json:"id"`
			SucceededGroups int    `json:"succeeded_groups"`
		} `json:"jobs"`
	}
	c.get("/api/v1/jobs", &jobs)
	for _, j := range jobs.Jobs {
		if j.SucceededGroups != 2 {
			t.Errorf("job %s: %d groups passed, want 2", j.ID, j.SucceededGroups)
		}
	}
	if len(jobs.Jobs) != 2 {
		t.Errorf("%d jobs, want 2", len(jobs.Jobs))
	}
}
