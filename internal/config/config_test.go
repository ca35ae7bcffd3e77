package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func writeFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dist_test.cnf")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaults(t *testing.T) {
	home := t.TempDir()
	c, err := Load("", envOf(map[string]string{"HOME": home}))
	if err != nil {
		t.Fatal(err)
	}
	if c.File() != "" {
		t.Errorf("File() = %q, want none: ~/.dist_test.cnf does not exist", c.File())
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"job_path", c.DistTest.JobPath, filepath.Join(home, ".dist-test-last-job")},
		{"url_timeout", c.DistTest.URLTimeout, 60 * time.Second},
		{"allowed_ip_ranges", c.DistTest.AllowedIPRanges, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}},
		{"accounts", len(c.DistTest.Accounts), 0},
		{"mysql port", c.MySQL.Port, 3306},
		{"tube", c.Beanstalk.Tube, "dist_test"},
		{"link_ttl", c.AWS.LinkTTL, 24 * time.Hour},
		{"listen", c.Master.Listen, "127.0.0.1:8081"},
		{"heartbeat_interval", c.Master.HeartbeatInterval, 5 * time.Second},
		{"heartbeat_timeout", c.Master.HeartbeatTimeout, 15 * time.Second},
		{"queue_window", c.Master.QueueWindow, 500},
		{"max_tasks_per_job", c.Master.MaxTasksPerJob, 100000},
		{"ttr", c.Master.TTR, 120 * time.Second},
		{"max_failures", c.Master.MaxFailures, 0},
		{"read_auth", c.Master.ReadAuth, false},
		{"slots", c.Slave.Slots, runtime.NumCPU()},
		{"scratch_dir", c.Slave.ScratchDir, filepath.Join(os.TempDir(), "dist_test-slave")},
		{"kill_grace", c.Slave.KillGrace, 5 * time.Second},
		{"log_head_bytes", c.Slave.LogHeadBytes, int64(8 << 20)},
		{"log_tail_bytes", c.Slave.LogTailBytes, int64(8 << 20)},
		{"max_artifact_bytes", c.Slave.MaxArtifactBytes, int64(200 << 20)},
	}
	for _, ch := range checks {
		if !equal(ch.got, ch.want) {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
	if s := c.Source("dist_test.master"); s != "default" {
		t.Errorf(`Source("dist_test.master") = %q, want "default"`, s)
	}
}

func equal(a, b any) bool {
	if pa, ok := a.([]netip.Prefix); ok {
		pb := b.([]netip.Prefix)
		if len(pa) != len(pb) {
			return false
		}
		for i := range pa {
			if pa[i] != pb[i] {
				return false
			}
		}
		return true
	}
	return a == b
}

// Precedence: default < file < environment, per key.
func TestPrecedence(t *testing.T) {
	file := writeFile(t, `
[dist_test]
master = http://file.example:8081
user = file-user
url_timeout = 30
job_path = ~/jobs/last

[beanstalk]
tube =

[mysql]
port: 3307
HOST = db.example
database = dist_test

[DEFAULT]
password = from-default-section
`)
	fromFile := "file " + file
	tests := []struct {
		name, id string
		env      map[string]string
		get      func(*Config) any
		want     any
		source   string
	}{
		{"file beats default", "dist_test.master", nil, func(c *Config) any { return c.DistTest.Master }, "http://file.example:8081", fromFile},
		{"env beats file", "dist_test.master", map[string]string{"DIST_TEST_MASTER": "https://env.example"}, func(c *Config) any { return c.DistTest.Master }, "https://env.example", "env DIST_TEST_MASTER"},
		{"empty env is unset", "dist_test.user", map[string]string{"DIST_TEST_USER": ""}, func(c *Config) any { return c.DistTest.User }, "file-user", fromFile},
		{"bare seconds", "dist_test.url_timeout", nil, func(c *Config) any { return c.DistTest.URLTimeout }, 30 * time.Second, fromFile},
		{"go duration from env", "dist_test.url_timeout", map[string]string{"DIST_TEST_URL_TIMEOUT": "1m30s"}, func(c *Config) any { return c.DistTest.URLTimeout }, 90 * time.Second, "env DIST_TEST_URL_TIMEOUT"},
		{"colon delimiter", "mysql.port", nil, func(c *Config) any { return c.MySQL.Port }, 3307, fromFile},
		{"keys are case-insensitive", "mysql.host", nil, func(c *Config) any { return c.MySQL.Host }, "db.example", fromFile},
		{"mysql password env", "mysql.password", map[string]string{"MYSQL_PWD": "pw"}, func(c *Config) any { return c.MySQL.Password }, "pw", "env MYSQL_PWD"},
		{"DEFAULT section applies", "dist_test.password", nil, func(c *Config) any { return c.DistTest.Password }, "from-default-section", fromFile},
		{"empty value keeps the default", "beanstalk.tube", nil, func(c *Config) any { return c.Beanstalk.Tube }, "dist_test", "default"},
		{"home expanded", "dist_test.job_path", nil, func(c *Config) any { return c.DistTest.JobPath }, "/home/u/jobs/last", fromFile},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": "/home/u"}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := Load(file, envOf(env))
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.get(c); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got := c.Source(tt.id); got != tt.source {
				t.Errorf("Source = %q, want %q", got, tt.source)
			}
		})
	}
}

func TestFileLocation(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".dist_test.cnf"), []byte("[dist_test]\nuser = home\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cnf := writeFile(t, "[dist_test]\nuser = cnf\n")
	explicit := writeFile(t, "[dist_test]\nuser = explicit\n")

	tests := []struct {
		name    string
		path    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"home file", "", map[string]string{"HOME": home}, "home", ""},
		{"DIST_TEST_CNF beats home", "", map[string]string{"HOME": home, "DIST_TEST_CNF": cnf}, "cnf", ""},
		{"explicit beats DIST_TEST_CNF", explicit, map[string]string{"HOME": home, "DIST_TEST_CNF": cnf}, "explicit", ""},
		{"missing explicit file", filepath.Join(home, "nope.cnf"), map[string]string{"HOME": home}, "", "nope.cnf"},
		{"missing DIST_TEST_CNF file", "", map[string]string{"HOME": home, "DIST_TEST_CNF": filepath.Join(home, "gone.cnf")}, "", "gone.cnf"},
		{"missing home file", "", map[string]string{"HOME": t.TempDir()}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.path, envOf(tt.env))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("err = %v, want a not-exist error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.DistTest.User != tt.want {
				t.Errorf("user = %q, want %q", c.DistTest.User, tt.want)
			}
		})
	}
}

// Each bad value gets a message naming the section, the key, the value and
// its source, and saying what is expected.
func TestValidationMessages(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  map[string]string
		want []string
	}{
		{"bad CIDR", "[dist_test]\nallowed_ip_ranges = 10.0.0.0/8, 10.1.0.0/33\n", nil,
			[]string{`[dist_test] allowed_ip_ranges = "10.0.0.0/8, 10.1.0.0/33" (from file `, `"10.1.0.0/33" is not a CIDR range`}},
		{"accounts not JSON", "[dist_test]\naccounts = alice:pw-shown-nowhere\n", nil,
			[]string{`[dist_test] accounts = "(hidden)"`, "not a JSON object of user names to HA1 hashes or passwords"}},
		{"accounts with a number", "[dist_test]\naccounts = {\"alice\": 5}\n", nil,
			[]string{`[dist_test] accounts`, "not a JSON object of user names to HA1 hashes or passwords"}},
		{"non-numeric port", "", map[string]string{"MYSQL_PORT": "abc"},
			[]string{`[mysql] port = "abc" (from env MYSQL_PORT): not a whole number`}},
		{"port out of range", "[mysql]\nport = 70000\n", nil,
			[]string{`[mysql] port = "70000"`, "must be a TCP port, 1 to 65535"}},
		{"non-numeric url_timeout", "", map[string]string{"DIST_TEST_URL_TIMEOUT": "soon"},
			[]string{`[dist_test] url_timeout = "soon" (from env DIST_TEST_URL_TIMEOUT): not a duration`}},
		{"url_timeout past a Duration", "[dist_test]\nurl_timeout = 9223372036.854776\n", nil,
			[]string{`[dist_test] url_timeout = "9223372036.854776"`, "not a duration"}},
		{"zero url_timeout", "[dist_test]\nurl_timeout = 0\n", nil,
			[]string{`[dist_test] url_timeout = "0s"`, "must be more than zero"}},
		{"master not a URL", "", map[string]string{"DIST_TEST_MASTER": "dist-test.example:8081"},
			[]string{`[dist_test] master = "dist-test.example:8081" (from env DIST_TEST_MASTER): must be an http:// or https:// URL`}},
		{"master ftp", "[dist_test]\nmaster = ftp://x\n", nil,
			[]string{`[dist_test] master = "ftp://x"`, "http:// or https://"}},
		{"bad bool", "[master]\nread_auth = maybe\n", nil,
			[]string{`[master] read_auth = "maybe"`, "not a boolean"}},
		{"bad size", "[slave]\nlog_head_bytes = 8MB\n", nil,
			[]string{`[slave] log_head_bytes = "8MB"`, "not a size"}},
		{"heartbeat timeout too short", "[master]\nheartbeat_interval = 10s\nheartbeat_timeout = 15s\n", nil,
			[]string{`[master] heartbeat_timeout = "15s"`, "at least twice [master] heartbeat_interval (10s)"}},
		{"bad listen", "[master]\nlisten = 8081\n", nil,
			[]string{`[master] listen = "8081"`, "host:port"}},
		{"admin listener on every address", "[master]\nadmin_listen = :6060\n", nil,
			[]string{`[master] admin_listen = ":6060"`, "must be a loopback address"}},
		{"admin listener on a public address", "[master]\nadmin_listen = 0.0.0.0:6060\n", nil,
			[]string{`[master] admin_listen = "0.0.0.0:6060"`, "must be a loopback address"}},
		{"admin listener on a name that starts with localhost", "[master]\nadmin_listen = localhost.example.com:6060\n", nil,
			[]string{`[master] admin_listen = "localhost.example.com:6060"`, "must be a loopback address"}},
		{"slave metrics without a port", "[slave]\nmetrics_listen = 9105\n", nil,
			[]string{`[slave] metrics_listen = "9105"`, "host:port"}},
		{"half of the AWS keys", "", map[string]string{"AWS_ACCESS_KEY": "AKIA"},
			[]string{"[aws] access_key (from env AWS_ACCESS_KEY) and secret_key (from default): set both or neither"}},
		{"link ttl over a week", "[aws]\nlink_ttl = 8d\n", nil,
			[]string{`[aws] link_ttl = "8d"`, "not a duration"}},
		{"link ttl over S3's limit", "[aws]\nlink_ttl = 200h\n", nil,
			[]string{`[aws] link_ttl = "200h0m0s"`, "at most 168h0m0s"}},
		{"half of the master's TLS", "[master]\ntls_cert = /etc/cert.pem\n", nil,
			[]string{"[master] tls_cert (from file ", "and tls_key (from default): set both or neither"}},
		{"half of the isolate server's TLS", "[isolate]\ntls_key = /etc/key.pem\n", nil,
			[]string{"[isolate] tls_cert (from default) and tls_key (from file "}},
		{"admin without an account", "[dist_test]\naccounts = {\"alice\": \"a\"}\n[master]\nadmins = alice, root\n", nil,
			[]string{`[master] admins = "alice, root"`, `"root" is not an account of [dist_test] accounts`}},
		{"owners only without accounts", "[master]\nowners_only = true\n", nil,
			[]string{`[master] owners_only = "true"`, "set [dist_test] accounts too"}},
		{"short slave token", "[slave]\ntoken = pw-sh\n", nil,
			[]string{`[slave] token = "(hidden)"`, "5 characters is too short", "openssl rand -hex 32"}},
		{"slave accounts not JSON", "[master]\nslave_accounts = s1:pw-shown-nowhere\n", nil,
			[]string{`[master] slave_accounts = "(hidden)"`, "not a JSON object"}},
		{"bad tube", "[beanstalk]\ntube = -x\n", nil,
			[]string{`[beanstalk] tube = "-x"`}},
		{"zero slots", "[slave]\nslots = 0\n", nil,
			[]string{`[slave] slots = "0"`, "at least 1"}},
		{"zero reconcile_interval", "[master]\nreconcile_interval = 0\n", nil,
			[]string{`[master] reconcile_interval = "0s"`, "must be more than zero"}},
		{"zero max_runs", "[master]\nmax_runs = 0\n", nil,
			[]string{`[master] max_runs = "0"`, "at least 1"}},
		{"negative max_failures", "[master]\nmax_failures = -1\n", nil,
			[]string{`[master] max_failures = "-1"`, "from 0 (no cap)"}},
		{"huge max_failures", "[master]\nmax_failures = 99999999999\n", nil,
			[]string{`[master] max_failures`}},
		{"max_failures not a number", "[master]\nmax_failures = ten\n", nil,
			[]string{`[master] max_failures = "ten"`}},
		{"negative cache_max_bytes", "[isolate]\ncache_max_bytes = -1\n", nil,
			[]string{`[isolate] cache_max_bytes = "-1"`, "more than zero"}},
		{"zero cache_max_items", "[isolate]\ncache_max_items = 0\n", nil,
			[]string{`[isolate] cache_max_items = "0"`, "at least 1"}},
		{"zero max_artifact_bytes", "[slave]\nmax_artifact_bytes = 0\n", nil,
			[]string{`[slave] max_artifact_bytes = "0"`, "more than zero"}},
		{"every problem at once", "[mysql]\nport = x\n[master]\nqueue_window = 0\n", map[string]string{"DIST_TEST_MASTER": "nope"},
			[]string{"[mysql] port", "[master] queue_window", "[dist_test] master"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"HOME": t.TempDir()}
			for k, v := range tt.env {
				env[k] = v
			}
			path := ""
			if tt.file != "" {
				path = writeFile(t, tt.file)
			}
			c, err := Load(path, envOf(env))
			if err == nil {
				t.Fatalf("Load succeeded (%+v), want an error", c)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
			// Secrets never reach a message, not even a malformed one.
			for _, secret := range []string{"pw-sh"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q\nshows the secret %q", err, secret)
				}
			}
		})
	}
}

func TestValidValues(t *testing.T) {
	path := writeFile(t, `
[dist_test]
allowed_ip_ranges = 10.0.0.0/8,192.168.1.7, 2001:db8::/32
accounts = {"alice": "a#b;c",
    "bob": "x"}
password = p#ss ; word
[slave]
log_tail_bytes = 1024
max_artifact_bytes = 1GiB
[aws]
path_style = yes
`)
	c, err := Load(path, envOf(map[string]string{"HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	wantRanges := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if !equal(c.DistTest.AllowedIPRanges, wantRanges) {
		t.Errorf("ranges = %v, want %v", c.DistTest.AllowedIPRanges, wantRanges)
	}
	if c.DistTest.Accounts["alice"] != "a#b;c" || c.DistTest.Accounts["bob"] != "x" {
		t.Errorf("accounts = %v: the multi-line value or its comment characters were lost", c.DistTest.Accounts)
	}
	if c.DistTest.Password != "p#ss ; word" {
		t.Errorf("password = %q: comment characters in values must be kept", c.DistTest.Password)
	}
	if c.Slave.LogTailBytes != 1024 || c.Slave.MaxArtifactBytes != 1<<30 {
		t.Errorf("sizes = %d, %d", c.Slave.LogTailBytes, c.Slave.MaxArtifactBytes)
	}
	if !c.AWS.PathStyle {
		t.Error("path_style = yes read as false")
	}
}

func TestUnknownKeys(t *testing.T) {
	path := writeFile(t, "[dist_test]\nmastr = http://x\nlog_dir = /var/log\n[isolate]\nhome = /opt/isolate\n[grind]\nanything = 1\n")
	c, err := Load(path, envOf(map[string]string{"HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Unknown(), ","); got != "dist_test.mastr" {
		t.Errorf("Unknown() = %q, want only the typo dist_test.mastr", got)
	}
}

func TestValidateAfterChange(t *testing.T) {
	c, err := Load("", envOf(map[string]string{"HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	c.DistTest.Master = "localhost:8081"
	err = c.Validate()
	if err == nil || !strings.Contains(err.Error(), `[dist_test] master = "localhost:8081" (from default)`) {
		t.Errorf("Validate() = %v", err)
	}
}

// The task isolation keys: lists split on commas and new lines (indented
// continuation lines), NAME and NAME=VALUE entries, and what each entry
// gives a task.
func TestTaskKeys(t *testing.T) {
	p := writeFile(t, `[slave]
task_users = dist_test-a, 3000:3001,
    nobody
task_env = JAVA_HOME=/usr/lib/jvm/java 17, PIDDIR
    GTEST_COLOR=no
    UNSET_HERE
namespaces = yes
keep_passed_logs = true
`)
	c, err := Load(p, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Slave.TaskUsers, "|"); got != "dist_test-a|3000:3001|nobody" {
		t.Errorf("task_users = %q", got)
	}
	env := c.Slave.TaskEnvironment(func(k string) (string, bool) {
		v, ok := map[string]string{"PIDDIR": "/tmp/pids", "OTHER": "x"}[k]
		return v, ok
	})
	if got := strings.Join(env, "|"); got != "JAVA_HOME=/usr/lib/jvm/java 17|PIDDIR=/tmp/pids|GTEST_COLOR=no" {
		t.Errorf("task environment = %q", got)
	}
	if !c.Slave.Namespaces {
		t.Error("namespaces = yes read as false")
	}
	if !c.Slave.KeepPassedLogs {
		t.Error("keep_passed_logs = true read as false")
	}
	d, err := Load("", envOf(map[string]string{"HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Slave.TaskUsers) != 0 || len(d.Slave.TaskEnv) != 0 || d.Slave.Namespaces || d.Slave.KeepPassedLogs {
		t.Errorf("defaults: %+v", d.Slave)
	}
	for _, bad := range []string{"1BAD=x", "A B", "=x", "A-B"} {
		_, err := Load(writeFile(t, "[slave]\ntask_env = "+bad+"\n"), envOf(nil))
		if err == nil || !strings.Contains(err.Error(), "[slave] task_env") {
			t.Errorf("task_env = %s: %v; want an error naming the key", bad, err)
		}
	}
}

// A slave's configuration names the database and S3 credentials it holds,
// with where each came from.
func TestSlaveSecrets(t *testing.T) {
	p := writeFile(t, "[mysql]\npassword = db\n[aws]\naccess_key = a\nsecret_key = s\n")
	c, err := Load(p, envOf(map[string]string{"MYSQL_PWD": "from-env"}))
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(c.SlaveSecrets(), "; ")
	want := "[mysql] password (from env MYSQL_PWD); [aws] access_key (from file " + p + "); [aws] secret_key (from file " + p + ")"
	if got != want {
		t.Errorf("SlaveSecrets = %q\nwant %q", got, want)
	}
	c, err = Load(writeFile(t, "[dist_test]\npassword = mine\n"), envOf(nil))
	if err != nil || len(c.SlaveSecrets()) != 0 {
		t.Errorf("a slave's own password is no database or S3 secret: %v, %v", c.SlaveSecrets(), err)
	}
}

// A value is what its line says, as ConfigParser reads it: go-ini's own
// quoting (backticks, three double quotes) and its backslash continuation
// do not apply, so a password that starts with a backtick or ends with a
// backslash is kept whole and the lines after it keep their meaning.
func TestValuesReadAsWritten(t *testing.T) {
	path := writeFile(t, "[dist_test]\n"+
		"password = `pa\"ss\n"+
		"user = \"\"\"alice\n"+
		"master = http://m:8081\n"+
		"[mysql]\n"+
		"password = C:\\secret\\\n"+
		"user = `x` \n"+
		"host = db`\n"+
		"database = dist_test\n")
	c, err := Load(path, envOf(map[string]string{"HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []struct{ name, got, want string }{
		{"[dist_test] password", c.DistTest.Password, "`pa\"ss"},
		{"[dist_test] user", c.DistTest.User, `"""alice`},
		{"[dist_test] master", c.DistTest.Master, "http://m:8081"},
		{"[mysql] password", c.MySQL.Password, `C:\secret\`},
		{"[mysql] user", c.MySQL.User, "`x`"},
		{"[mysql] host", c.MySQL.Host, "db`"},
		{"[mysql] database", c.MySQL.Database, "dist_test"},
	} {
		if v.got != v.want {
			t.Errorf("%s = %q, want %q", v.name, v.got, v.want)
		}
	}
}

// Every check at once, in the order they are told: the whole message is
// pinned, so that regrouping the checks changes none of its words.
func TestEveryCheckInOrder(t *testing.T) {
	c, err := Load("", envOf(map[string]string{"HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	c.DistTest.Master = "localhost:8081"
	c.DistTest.URLTimeout = 0
	c.Isolate.Server = "ftp://isolate"
	c.MySQL.Port = 0
	c.MySQL.Host = "db"
	c.Beanstalk.Tube = "-tube"
	c.AWS.AccessKey = "AKIA"
	c.AWS.Endpoint = "http://s3?x=1"
	c.AWS.LinkTTL = 8 * 24 * time.Hour
	c.Master.Listen = "8081"
	c.Master.HeartbeatInterval = 10 * time.Second
	c.Master.HeartbeatTimeout = 15 * time.Second
	c.Master.QueueWindow = 0
	c.Master.MaxTasksPerJob = 0
	c.Master.TTR = time.Millisecond
	c.Master.TLSCert = "/etc/cert.pem"
	c.Isolate.TLSKey = "/etc/key.pem"
	c.DistTest.Accounts = nil
	c.Master.Admins = []string{"root"}
	c.Master.OwnersOnly = true
	c.Slave.Token = "short"
	c.Master.ReconcileInterval = 0
	c.Master.MaxRuns = 0
	c.Isolate.CacheMaxBytes = 0
	c.Isolate.CacheMaxItems = 0
	c.Slave.Slots = 0
	c.Slave.KillGrace = -time.Second
	c.Slave.LogHeadBytes = -1
	c.Slave.LogTailBytes = -1
	c.Master.RetentionDays = -1
	c.Isolate.RetentionDays = -1
	c.Isolate.MaxBlobBytes = 0
	c.Isolate.MaxGzipRatio = 0
	c.Master.MaxLargeBodies = 0
	c.Server.MaxConnections = 0
	c.Server.MinRate = 0
	c.Slave.MaxArtifactBytes = 0
	c.Isolate.MaxTempBytes = -1
	c.Server.IdleTimeout = 0
	c.Server.ReadTimeout = 0
	c.Server.WriteTimeout = 0
	err = c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil, want every problem")
	}
	want := `configuration: [dist_test] master = "localhost:8081" (from default): must be an http:// or https:// URL, e.g. http://dist-test.example.com:8081
[dist_test] url_timeout = "0s" (from default): must be more than zero
[isolate] server = "ftp://isolate" (from default): must be an http:// or https:// URL, e.g. http://dist-test.example.com:8081
[mysql] port = "0" (from default): must be a TCP port, 1 to 65535
[mysql] database = "" (from default): must be set when [mysql] host is
[beanstalk] tube = "-tube" (from default): must be 1 to 200 letters, digits or -+/;.$_() and not start with '-'
[aws] access_key (from default) and secret_key (from default): set both or neither
[aws] endpoint = "http://s3?x=1" (from default): must not have a query or fragment
[aws] link_ttl = "192h0m0s" (from default): must be more than zero and at most 168h0m0s, the longest S3 presigns
[master] listen = "8081" (from default): must be host:port, e.g. 127.0.0.1:8081 or :8081
[master] heartbeat_timeout = "15s" (from default): must be at least twice [master] heartbeat_interval (10s), or a slave is declared lost between two heartbeats
[master] queue_window = "0" (from default): must be at least 1
[master] max_tasks_per_job = "0" (from default): must be at least 1
[master] ttr = "1ms" (from default): must be at least 1s (the queue counts it in whole seconds)
[master] tls_cert (from default) and tls_key (from default): set both or neither
[isolate] tls_cert (from default) and tls_key (from default): set both or neither
[master] admins = "root" (from default): "root" is not an account of [dist_test] accounts
[master] owners_only = "true" (from default): jobs are owned by accounts: set [dist_test] accounts too
[slave] token = "(hidden)" (from default): 5 characters is too short for a secret: use at least 16, e.g. the output of openssl rand -hex 32
[master] reconcile_interval = "0s" (from default): must be more than zero
[master] max_runs = "0" (from default): must be at least 1
[isolate] cache_max_bytes = "0" (from default): must be more than zero
[isolate] cache_max_items = "0" (from default): must be at least 1
[slave] slots = "0" (from default): must be at least 1
[slave] kill_grace = "-1s" (from default): must not be negative
[slave] log_head_bytes = "-1" (from default): must not be negative
[slave] log_tail_bytes = "-1" (from default): must not be negative
[master] retention_days = "-1" (from default): must not be negative
[isolate] retention_days = "-1" (from default): must not be negative
[isolate] max_blob_bytes = "0" (from default): must be at least 1
[isolate] max_gzip_ratio = "0" (from default): must be at least 1
[master] max_large_bodies = "0" (from default): must be at least 1
[server] max_connections = "0" (from default): must be at least 1
[server] min_rate = "0" (from default): must be at least 1
[slave] max_artifact_bytes = "0" (from default): must be more than zero
[isolate] max_temp_bytes = "-1" (from default): must be at least [isolate] max_blob_bytes (0), or the largest blob could never be received
[server] idle_timeout = "0s" (from default): must be more than zero
[server] read_timeout = "0s" (from default): must be more than zero
[server] write_timeout = "0s" (from default): must be more than zero`
	if got := err.Error(); got != want {
		t.Errorf("Validate() =\n%s\nwant\n%s", got, want)
	}
}

func TestClosestKey(t *testing.T) {
	for id, want := range map[string]string{
		"dist_test.mastr":          "dist_test.master",
		"master.heartbeat_intrval": "master.heartbeat_interval",
		"slave.kill_grce":          "slave.kill_grace",
		"dist_test.colour_theme":   "",
		"master.mastr":             "", // keys of another section are not offered
	} {
		if got := Closest(id); got != want {
			t.Errorf("Closest(%q) = %q, want %q", id, got, want)
		}
	}
}

// The container keys: the runtime's command with its arguments, the
// network, limits and allowed images, their defaults, and values refused.
func TestContainerKeys(t *testing.T) {
	c, err := Load(writeFile(t, `[slave]
container_runtime = podman  --runtime runc
task_network = none
task_memory = 2GiB
task_cpus = 1.5
allowed_images = registry.example.com/ci/*, debian:12
`), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Slave
	if strings.Join(s.ContainerRuntime, "|") != "podman|--runtime|runc" || s.TaskNetwork != "none" || s.TaskMemory != 2<<30 ||
		s.TaskCPUs != 1.5 || strings.Join(s.AllowedImages, "|") != "registry.example.com/ci/*|debian:12" {
		t.Errorf("read %+v", s)
	}
	d, err := Load("", envOf(map[string]string{"HOME": t.TempDir()}))
	if err != nil {
		t.Fatal(err)
	}
	if s := d.Slave; strings.Join(s.ContainerRuntime, "|") != "docker" || s.TaskNetwork != "host" || s.TaskMemory != 0 ||
		s.TaskCPUs != 0 || len(s.AllowedImages) != 0 {
		t.Errorf("defaults: %+v", s)
	}
	for _, bad := range []string{"container_runtime = --privileged docker", "task_memory = 1MiB", "task_network = --privileged",
		"task_network = a b", "task_network = -x", "task_cpus = -1", "task_cpus = many", "task_cpus = NaN", "task_memory = -5"} {
		key, _, _ := strings.Cut(bad, " ")
		_, err := Load(writeFile(t, "[slave]\n"+bad+"\n"), envOf(nil))
		if err == nil || !strings.Contains(err.Error(), "[slave] "+key) {
			t.Errorf("%s: %v; want an error naming the key", bad, err)
		}
	}
}
