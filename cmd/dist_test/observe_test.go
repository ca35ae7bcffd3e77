package main

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/testenv"
	"github.com/dist-test/dist_test/server/api"
)

// scrape reads a /metrics page: each sample by its name and labels, as
// written (name{label="value",...}).
func scrape(t testing.TB, url string) (map[string]float64, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	samples := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return samples, string(body)
}

// get answers a GET: status, body and the version header.
func getText(t testing.TB, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), resp.Header.Get(api.VersionHeader)
}

var adminURL = regexp.MustCompile(`admin \(profiles, metrics\): (http://\S+)/debug/pprof/`)

// A job of passing, failing and flaky tasks, then one of tasks that hang until
// their timeout, on `dist_test local`: the counters of /metrics move by the
// tasks' numbers, the slots show busy while the second job runs, the
// histograms count every start and end, and no label holds a job's id.
func TestMetricsDuringJob(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 4})
	c.writeInputs(scripts)
	metricsURL := c.url + "/metrics"
	before, _ := scrape(t, metricsURL)

	pass := c.archive("pass", "ARG=p")
	var tasks []jobTask
	for i := range 6 {
		tasks = append(tasks, jobTask{IsolateHash: pass, Description: fmt.Sprintf("pass-%d", i), Timeout: 60})
	}
	for i := range 2 {
		tasks = append(tasks, jobTask{IsolateHash: c.archive("fail", fmt.Sprintf("ARG=f%d", i)), Description: fmt.Sprintf("fail-%d", i), Timeout: 60})
	}
	// Fails its first attempt, passes its retry.
	tasks = append(tasks, jobTask{IsolateHash: c.archive("flaky", "ARG=k"), Description: "flaky", Timeout: 60, MaxRetries: 1})
	if code, stdout, stderr := c.run("submit", "-n", "metrics", c.writeJob("job.json", tasks)); code != 88 {
		t.Fatalf("submit exited %d, want 88\n%s\n%s", code, stdout, stderr)
	}
	job := lastJob(t, c)
	after, body := scrape(t, metricsURL)
	delta := func(name string) float64 { return after[name] - before[name] }
	want := map[string]float64{
		"dist_test_jobs_submitted_total":                         1,
		"dist_test_tasks_submitted_total":                        9,
		`dist_test_attempts_finished_total{outcome="passed"}`:    7,
		`dist_test_attempts_finished_total{outcome="failed"}`:    3,
		`dist_test_attempts_finished_total{outcome="timed_out"}`: 0,
		"dist_test_queue_wait_seconds_count":                     10,
		"dist_test_dispatch_latency_seconds_count":               10,
		"dist_test_run_seconds_count":                            10,
		"dist_test_retries_total":                                1,
		"dist_test_infra_failures_total":                         0,
		`dist_test_slave_runs_total{result="passed"}`:            7,
		`dist_test_slave_runs_total{result="failed"}`:            3,
		"dist_test_slaves_lost_total":                            0,
	}
	for name, d := range want {
		if got := delta(name); got != d {
			t.Errorf("%s moved by %v, want %v", name, got, d)
		}
	}
	for name, v := range map[string]float64{"dist_test_slaves_alive": 1, "dist_test_slots": 4, "dist_test_slots_busy": 0,
		"dist_test_attempts_queued": 0, "dist_test_slave_slots": 4, "dist_test_slave_slots_busy": 0, "dist_test_fleet_scrape_ok": 1} {
		if got, ok := after[name]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, v)
		}
	}
	// Inputs went up to the isolate server and down to the slots; the
	// slots found them in their cache or fetched them.
	if delta(`dist_test_blob_bytes_total{direction="in"}`) <= 0 || delta(`dist_test_blob_bytes_total{direction="out"}`) <= 0 {
		t.Errorf("blob bytes did not move: in %v, out %v", delta(`dist_test_blob_bytes_total{direction="in"}`), delta(`dist_test_blob_bytes_total{direction="out"}`))
	}
	if delta(`dist_test_input_bytes_total{cache="hot"}`)+delta(`dist_test_input_bytes_total{cache="cold"}`) <= 0 {
		t.Error("no input bytes counted")
	}
	// Requests are counted by route pattern: the job's id is in no label.
	if delta(`dist_test_http_requests_total{code="200",method="GET",route="/api/v1/jobs/{id}"}`) < 1 {
		t.Errorf("no GET /api/v1/jobs/{id} counted:\n%s", grep(body, "http_requests_total"))
	}
	if strings.Contains(body, job) {
		t.Errorf("/metrics names job %s", job)
	}

	// During a job: two tasks that hang until their 2 s timeout hold two
	// slots.
	hang := c.archive("hang", "ARG=h")
	second := c.submitNoWait("hang.json", []jobTask{{IsolateHash: hang, Description: "hang-0", Timeout: 2}, {IsolateHash: hang, Description: "hang-1", Timeout: 2}})
	waitFor(t, 30*time.Second, "two slots busy", func() bool {
		m, _ := scrape(t, metricsURL)
		return m["dist_test_slots_busy"] == 2 && m["dist_test_slave_slots_busy"] == 2
	})
	c.waitJob(second, 60*time.Second)
	end, _ := scrape(t, metricsURL)
	if d := end[`dist_test_attempts_finished_total{outcome="timed_out"}`] - after[`dist_test_attempts_finished_total{outcome="timed_out"}`]; d != 2 {
		t.Errorf("timed_out moved by %v, want 2", d)
	}
	if d := end["dist_test_jobs_submitted_total"] - before["dist_test_jobs_submitted_total"]; d != 2 {
		t.Errorf("jobs submitted moved by %v, want 2", d)
	}
	waitFor(t, 10*time.Second, "the slots to free", func() bool {
		m, _ := scrape(t, metricsURL)
		return m["dist_test_slots_busy"] == 0 && m["dist_test_slave_slots_busy"] == 0
	})

	// An unknown path is counted as unmatched, not by its path.
	if code, _, _ := getText(t, c.url+"/no/such/page-4242"); code != 404 {
		t.Errorf("unknown path: %d", code)
	}
	m, body := scrape(t, metricsURL)
	if m[`dist_test_http_requests_total{code="404",method="GET",route="unmatched"}`] < 1 || strings.Contains(body, "page-4242") {
		t.Errorf("the unknown path is not counted as unmatched:\n%s", grep(body, "http_requests_total"))
	}
}

// grep returns the lines of s that contain sub.
func grep(s, sub string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "")
}

// /healthz, /readyz, the version in its three places, and the admin
// listener's profiles, which only it serves.
func TestHealthVersionAndProfiles(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 1, config: "[master]\nadmin_listen = 127.0.0.1:0\n"})
	_, out, _ := c.run("--version")
	v := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "dist_test version "))
	if v == "" || strings.Contains(v, " ") {
		t.Fatalf("dist_test --version: %q", out)
	}
	code, body, header := getText(t, c.url+"/healthz")
	if code != 200 || body != "ok\n" || header != v {
		t.Errorf("/healthz: %d %q, version header %q, want %q", code, body, header, v)
	}
	code, body, _ = getText(t, c.url+"/readyz")
	if code != 200 || body != "ready\ndatabase: ok\nqueue: ok\nblobs: ok\n" {
		t.Errorf("/readyz: %d %q", code, body)
	}
	// dist_test healthcheck, what the compose file and systemd run.
	for _, hc := range []struct {
		args []string
		code int
	}{
		{[]string{c.url + "/readyz"}, 0},
		{[]string{c.url + "/no-such-probe"}, 1},
		{[]string{"--wait", "1500ms", c.url + "/no-such-probe"}, 1},
		{[]string{"ftp://127.0.0.1/readyz"}, 2},
		{[]string{"127.0.0.1:1"}, 2},
	} {
		if code, _, stderr := c.run(append([]string{"healthcheck"}, hc.args...)...); code != hc.code {
			t.Errorf("dist_test healthcheck %v: exit %d, want %d\n%s", hc.args, code, hc.code, stderr)
		}
	}
	var got api.Version
	c.get("/api/v1/version", &got)
	if got.Version != v || !strings.HasPrefix(got.Go, "go") {
		t.Errorf("/api/v1/version = %+v, want version %q", got, v)
	}
	if _, metrics := scrape(t, c.url+"/metrics"); !strings.Contains(metrics, fmt.Sprintf(`dist_test_build_info{version=%q} 1`, v)) {
		t.Errorf("no build_info of version %s:\n%s", v, grep(metrics, "build_info"))
	}
	// The dashboard's pages name it at their foot.
	for _, page := range []string{"/", "/slaves"} {
		if code, body, _ := getText(t, c.url+page); code != 200 || !strings.Contains(body, `<footer class="version">dist_test `+html.EscapeString(v)+`</footer>`) {
			t.Errorf("%s (%d) does not name version %s at its foot", page, code, v)
		}
	}

	// Profiles are on the admin listener only.
	if code, _, _ := getText(t, c.url+"/debug/pprof/"); code != 404 {
		t.Errorf("/debug/pprof/ on the main listener: %d, want 404", code)
	}
	m := adminURL.FindStringSubmatch(c.log.String())
	if m == nil {
		t.Fatalf("no admin listener announced:\n%s", c.log)
	}
	admin := m[1]
	if !strings.HasPrefix(admin, "http://127.0.0.1:") {
		t.Errorf("admin listener on %s", admin)
	}
	code, body, _ = getText(t, admin+"/debug/pprof/goroutine?debug=1")
	if code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("goroutine profile: %d %.200q", code, body)
	}
	if code, body, _ := getText(t, admin+"/metrics"); code != 200 || !strings.Contains(body, "dist_test_jobs_submitted_total") {
		t.Errorf("admin /metrics: %d", code)
	}
	// Hostile and unknown paths: nothing but the profiles and /metrics.
	for _, p := range []string{"/", "/api/v1/jobs", "/debug/pprof/../../etc/passwd", "/debug/pprofx", "/metrics/x"} {
		if code, body, _ := getText(t, admin+p); code != 404 {
			t.Errorf("admin %s: %d %.100q, want 404", p, code, body)
		}
	}
	resp, err := http.Post(admin+"/debug/pprof/goroutine", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST to a profile: %d, want 405", resp.StatusCode)
	}
}

// Without [master] admin_listen there is no admin listener; with a
// non-loopback one the process refuses to start.
func TestAdminListenerRefused(t *testing.T) {
	c := newCluster(t, 1)
	if strings.Contains(c.log.String(), "admin (profiles") {
		t.Errorf("an admin listener without [master] admin_listen:\n%s", c.log)
	}
	cnf := filepath.Join(t.TempDir(), "public.cnf")
	if err := os.WriteFile(cnf, []byte(testConfig+"[master]\nadmin_listen = 0.0.0.0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(append([]string{}, c.env...), "DIST_TEST_CNF="+cnf)
	cl := &cluster{t: t, dir: t.TempDir(), env: env}
	code, _, stderr := cl.run("local", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(cl.dir, "data"))
	if code == 0 || !strings.Contains(stderr, "[master] admin_listen") || !strings.Contains(stderr, "loopback") {
		t.Errorf("local with a public admin_listen: exit %d\n%s", code, stderr)
	}
}

// A master on MariaDB and beanstalkd, a slave serving [slave]
// metrics_listen and an isolate server: each answers /healthz, /readyz and
// /metrics; with MariaDB stopped the master's /readyz is 503 naming the
// database while /healthz stays 200, and with beanstalkd stopped it names
// the queue; both recover.
func TestReadyzNamesTheBackendDown(t *testing.T) {
	db := testenv.OwnMariaDB(t)
	bs := testenv.OwnBeanstalkd(t)
	dir := t.TempDir()
	host, port, _ := strings.Cut(db.Addr, ":")
	slavePort := testenv.FreePort(t)
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
metrics_listen = 127.0.0.1:%d
`, host, port, bs.Addr, stackToken, slavePort)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DIST_TEST_CNF="+cnf)
	master := startProc(t, "master", env, true, "master", "--data-dir", filepath.Join(dir, "data"))
	isolate := startProc(t, "isolate", env, true, "isolate-server", "--data-dir", filepath.Join(dir, "isolate"))
	startProc(t, "slave", env, false, "slave", "--master", master.url, "--slots", "2", "--scratch-dir", filepath.Join(dir, "scratch"))
	slave := fmt.Sprintf("http://127.0.0.1:%d", slavePort)

	expect := func(url string, code int, body string) {
		t.Helper()
		got, b, _ := getText(t, url)
		if got != code || b != body {
			t.Errorf("GET %s: %d %q, want %d %q", url, got, b, code, body)
		}
	}
	expect(master.url+"/readyz", 200, "ready\ndatabase: ok\nqueue: ok\nblobs: ok\n")
	expect(isolate.url+"/readyz", 200, "ready\nblobs: ok\n")
	waitFor(t, 30*time.Second, "the slave's metrics", func() bool {
		resp, err := http.Get(slave + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	expect(slave+"/readyz", 200, "ready\nqueue: ok\n")
	if m, _ := scrape(t, slave+"/metrics"); m["dist_test_slave_slots"] != 2 {
		t.Errorf("slave's dist_test_slave_slots = %v, want 2", m["dist_test_slave_slots"])
	}
	if _, body := scrape(t, isolate.url+"/metrics"); !strings.Contains(body, `dist_test_blob_bytes_total{direction="in"}`) {
		t.Errorf("isolate server's metrics lack the blob bytes:\n%.2000s", body)
	}
	_, _, iv := getText(t, isolate.url+"/healthz")
	_, _, mv := getText(t, master.url+"/healthz")
	if iv == "" || iv != mv {
		t.Errorf("version headers: isolate server %q, master %q", iv, mv)
	}
	waitFor(t, 30*time.Second, "the slave to register", func() bool {
		m, _ := scrape(t, master.url+"/metrics")
		return m["dist_test_slaves_alive"] == 1 && m["dist_test_slots"] == 2
	})

	db.Stop()
	code, body, _ := getText(t, master.url+"/readyz")
	if code != 503 || !strings.HasPrefix(body, "not ready: database\n") || !strings.Contains(body, "queue: ok\n") {
		t.Errorf("/readyz with MariaDB down: %d %q", code, body)
	}
	if strings.Contains(body, port) {
		t.Errorf("/readyz tells the database's address: %q", body)
	}
	expect(master.url+"/healthz", 200, "ok\n")
	// The fleet's gauges cannot be read: they are left out, said by
	// dist_test_fleet_scrape_ok, and the counters still come.
	if m, _ := scrape(t, master.url+"/metrics"); m["dist_test_fleet_scrape_ok"] != 0 || m["dist_test_jobs_submitted_total"] != 0 {
		t.Errorf("metrics with MariaDB down: fleet_scrape_ok %v", m["dist_test_fleet_scrape_ok"])
	} else if _, ok := m["dist_test_slaves_alive"]; ok {
		t.Error("dist_test_slaves_alive given with MariaDB down")
	}
	// The slave's next heartbeat fails to be recorded: a store error.
	waitFor(t, 30*time.Second, "a store error counted", func() bool {
		m, _ := scrape(t, master.url+"/metrics")
		for k, v := range m {
			if strings.HasPrefix(k, "dist_test_store_errors_total{") && v > 0 {
				return true
			}
		}
		return false
	})
	// The master's watch of its backends sees the outage.
	waitFor(t, 30*time.Second, "the database's outage in the metrics", func() bool {
		m, _ := scrape(t, master.url+"/metrics")
		return m[`dist_test_service_up{service="database"}`] == 0 && m[`dist_test_service_outages_total{service="database"}`] == 1
	})
	db.Start()
	waitFor(t, 30*time.Second, "/readyz to be 200 again", func() bool { code, _, _ := getText(t, master.url+"/readyz"); return code == 200 })
	waitFor(t, 30*time.Second, "the database back in the metrics", func() bool {
		m, _ := scrape(t, master.url+"/metrics")
		return m[`dist_test_service_up{service="database"}`] == 1 && m[`dist_test_service_up{service="blob_store"}`] == 1 &&
			m[`dist_test_service_outages_total{service="database"}`] == 1
	})

	bs.Stop()
	code, body, _ = getText(t, master.url+"/readyz")
	if code != 503 || !strings.HasPrefix(body, "not ready: queue\n") || !strings.Contains(body, "database: ok\n") {
		t.Errorf("/readyz with beanstalkd down: %d %q", code, body)
	}
	if code, body, _ := getText(t, slave+"/readyz"); code != 503 || !strings.HasPrefix(body, "not ready: queue\n") {
		t.Errorf("the slave's /readyz with beanstalkd down: %d %q", code, body)
	}
	bs.Start()
	waitFor(t, 30*time.Second, "/readyz to be 200 again", func() bool { code, _, _ := getText(t, master.url+"/readyz"); return code == 200 })
}
