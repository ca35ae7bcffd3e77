package config

import (
	"encoding/json"
	"fmt"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// key is one configuration key: where it lives, its environment variable,
// its default and how its text becomes a field of Config.
type key struct {
	section, name string
	env           string // "" when no variable overrides it
	def           string
	path          bool // a leading "~/" means the home folder
	set           func(c *Config, v string) error
	doc           string // one line for config.example.ini
}

func (k key) id() string { return k.section + "." + k.name }

func (k key) fail(value, source string, err error) error {
	return fmt.Errorf("[%s] %s = %q (from %s): %w", k.section, k.name, value, source, err)
}

// keys lists every key, in the order of config.example.ini.
var keys = []key{
	{section: "dist_test", name: "master", env: "DIST_TEST_MASTER", set: str(func(c *Config) *string { return &c.DistTest.Master }),
		doc: "base URL of the master that clients talk to, e.g. http://dist-test.example.com:8081"},
	{section: "dist_test", name: "user", env: "DIST_TEST_USER", set: str(func(c *Config) *string { return &c.DistTest.User }),
		doc: "user name for the master and in job ids (default: $USER)"},
	{section: "dist_test", name: "password", env: "DIST_TEST_PASSWORD", set: str(func(c *Config) *string { return &c.DistTest.Password }),
		doc: "password of that user on the master"},
	{section: "dist_test", name: "job_path", env: "DIST_TEST_JOB_PATH", def: "~/.dist-test-last-job", path: true,
		set: str(func(c *Config) *string { return &c.DistTest.JobPath }),
		doc: "file where submit keeps the last job id, for watch/fetch/cancel without one"},
	{section: "dist_test", name: "url_timeout", env: "DIST_TEST_URL_TIMEOUT", def: "60s", set: dur(func(c *Config) *time.Duration { return &c.DistTest.URLTimeout }),
		doc: "how long a request to the master may stall before it is retried"},
	{section: "dist_test", name: "allowed_ip_ranges", def: "127.0.0.0/8, ::1/128", set: setPrefixes,
		doc: "(master) comma-separated CIDRs that may submit and cancel without a password"},
	{section: "dist_test", name: "accounts", def: "{}", set: setAccounts,
		doc: `(master) JSON object of user names to passwords, e.g. {"alice": "secret"}`},

	{section: "isolate", name: "server", env: "ISOLATE_SERVER", set: str(func(c *Config) *string { return &c.Isolate.Server }),
		doc: "URL of the isolate server holding task inputs"},
	{section: "isolate", name: "cache_dir", env: "ISOLATE_CACHE_DIR", path: true, set: str(func(c *Config) *string { return &c.Isolate.CacheDir }),
		doc: "(slave) cache of task inputs shared by the slots of the slaves of this host (default: <scratch_dir>/cache)"},
	{section: "isolate", name: "cache_max_bytes", def: "20GiB", set: size(func(c *Config) *int64 { return &c.Isolate.CacheMaxBytes }),
		doc: "(slave) size of the input cache; least recently used inputs are evicted beyond it"},
	{section: "isolate", name: "cache_max_items", def: "100000", set: integer(func(c *Config) *int { return &c.Isolate.CacheMaxItems }),
		doc: "(slave) number of files the input cache holds at most"},
	{section: "isolate", name: "listen", def: "127.0.0.1:4242", set: str(func(c *Config) *string { return &c.Isolate.Listen }),
		doc: "(isolate-server) address the isolate server serves on"},
	{section: "isolate", name: "data_dir", path: true, set: str(func(c *Config) *string { return &c.Isolate.DataDir }),
		doc: "(isolate-server) folder of the inputs when [aws] test_result_bucket is empty (default: ~/.dist_test/isolate)"},

	{section: "mysql", name: "host", env: "MYSQL_HOST", set: str(func(c *Config) *string { return &c.MySQL.Host }),
		doc: "(master) MySQL host; empty: the embedded SQLite store in [master] data_dir"},
	{section: "mysql", name: "port", env: "MYSQL_PORT", def: "3306", set: integer(func(c *Config) *int { return &c.MySQL.Port }),
		doc: "(master) MySQL port"},
	{section: "mysql", name: "user", env: "MYSQL_USER", set: str(func(c *Config) *string { return &c.MySQL.User }),
		doc: "(master) MySQL user"},
	{section: "mysql", name: "password", env: "MYSQL_PWD", set: str(func(c *Config) *string { return &c.MySQL.Password }),
		doc: "(master) MySQL password"},
	{section: "mysql", name: "database", env: "MYSQL_DB", set: str(func(c *Config) *string { return &c.MySQL.Database }),
		doc: "(master) MySQL database"},

	{section: "beanstalk", name: "host", env: "BEANSTALK_HOST", set: str(func(c *Config) *string { return &c.Beanstalk.Host }),
		doc: "(master, slave) beanstalkd host[:port]; empty: the master's in-process queue"},
	{section: "beanstalk", name: "tube", def: "dist_test", set: str(func(c *Config) *string { return &c.Beanstalk.Tube }),
		doc: "(master, slave) beanstalkd tube of task entries"},

	{section: "aws", name: "access_key", env: "AWS_ACCESS_KEY", set: str(func(c *Config) *string { return &c.AWS.AccessKey }),
		doc: "(master) S3 access key"},
	{section: "aws", name: "secret_key", env: "AWS_SECRET_KEY", set: str(func(c *Config) *string { return &c.AWS.SecretKey }),
		doc: "(master) S3 secret key"},
	{section: "aws", name: "test_result_bucket", env: "TEST_RESULT_BUCKET", set: str(func(c *Config) *string { return &c.AWS.TestResultBucket }),
		doc: "(master) S3 bucket of logs and artifacts; empty: files under [master] data_dir"},
	{section: "aws", name: "endpoint", set: str(func(c *Config) *string { return &c.AWS.Endpoint }),
		doc: "(master) S3 endpoint URL for MinIO, versitygw and the like; empty: AWS"},
	{section: "aws", name: "region", set: str(func(c *Config) *string { return &c.AWS.Region }),
		doc: "(master) S3 region"},
	{section: "aws", name: "path_style", def: "false", set: boolean(func(c *Config) *bool { return &c.AWS.PathStyle }),
		doc: "(master) address the bucket in the URL path, as most non-AWS servers need"},
	{section: "aws", name: "link_ttl", def: "24h", set: dur(func(c *Config) *time.Duration { return &c.AWS.LinkTTL }),
		doc: "(master) lifetime of the presigned links to logs and artifacts"},

	{section: "master", name: "listen", def: "127.0.0.1:8081", set: str(func(c *Config) *string { return &c.Master.Listen }),
		doc: "address the master serves on"},
	{section: "master", name: "data_dir", path: true, set: str(func(c *Config) *string { return &c.Master.DataDir }),
		doc: "folder of the embedded SQLite store and local blobs"},
	{section: "master", name: "heartbeat_interval", def: "5s", set: dur(func(c *Config) *time.Duration { return &c.Master.HeartbeatInterval }),
		doc: "how often slaves heartbeat"},
	{section: "master", name: "heartbeat_timeout", def: "15s", set: dur(func(c *Config) *time.Duration { return &c.Master.HeartbeatTimeout }),
		doc: "silence after which a slave is lost and its tasks run elsewhere"},
	{section: "master", name: "queue_window", def: "500", set: integer(func(c *Config) *int { return &c.Master.QueueWindow }),
		doc: "tasks of one job kept in the queue at once, so that jobs share the slaves"},
	{section: "master", name: "max_tasks_per_job", def: "100000", set: integer(func(c *Config) *int { return &c.Master.MaxTasksPerJob }),
		doc: "largest job accepted"},
	{section: "master", name: "ttr", def: "120s", set: dur(func(c *Config) *time.Duration { return &c.Master.TTR }),
		doc: "queue time-to-run: a reserved entry not touched for this long is handed out again"},
	{section: "master", name: "reconcile_interval", def: "15s", set: dur(func(c *Config) *time.Duration { return &c.Master.ReconcileInterval }),
		doc: "how often queued tasks are checked against the queue; a task whose entry the queue lost is put again"},
	{section: "master", name: "max_runs", def: "5", set: integer(func(c *Config) *int { return &c.Master.MaxRuns }),
		doc: "runs of one attempt without a result (slave lost, inputs unfetchable) before it ends as failed"},
	{section: "master", name: "read_auth", def: "false", set: boolean(func(c *Config) *bool { return &c.Master.ReadAuth }),
		doc: "require the same authentication for reads (dashboard, status) as for writes"},

	{section: "slave", name: "slots", set: setSlots,
		doc: "tasks a slave runs at once (default: the number of CPUs)"},
	{section: "slave", name: "scratch_dir", path: true, set: setScratch,
		doc: "folder of the tasks' working trees (default: <temp dir>/dist_test-slave)"},
	{section: "slave", name: "kill_grace", def: "5s", set: dur(func(c *Config) *time.Duration { return &c.Slave.KillGrace }),
		doc: "time between SIGTERM and SIGKILL when a task is stopped"},
	{section: "slave", name: "log_head_bytes", def: "8MiB", set: size(func(c *Config) *int64 { return &c.Slave.LogHeadBytes }),
		doc: "bytes kept from the start of a task's stdout and of its stderr"},
	{section: "slave", name: "log_tail_bytes", def: "8MiB", set: size(func(c *Config) *int64 { return &c.Slave.LogTailBytes }),
		doc: "bytes kept from the end of each (the middle of a longer log is dropped)"},
	{section: "slave", name: "max_artifact_bytes", def: "200MiB", set: size(func(c *Config) *int64 { return &c.Slave.MaxArtifactBytes }),
		doc: "largest artifact archive uploaded"},
}

// legacyKeys are keys of the original's configuration that dist_test
// ignores; Unknown does not report them.
var legacyKeys = []string{
	"isolate.home", "dist_test.result_server", "dist_test.temp_dir",
	"dist_test.log_dir", "dist_test.submit_gce_metrics",
}

func str(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

func integer(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("not a whole number")
		}
		*field(c) = n
		return nil
	}
}

func boolean(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		switch strings.ToLower(v) {
		case "1", "true", "yes", "on":
			*field(c) = true
		case "0", "false", "no", "off":
			*field(c) = false
		default:
			return fmt.Errorf("not a boolean: use true or false")
		}
		return nil
	}
}

func dur(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := parseDuration(v)
		if err != nil {
			return err
		}
		*field(c) = d
		return nil
	}
}

// parseDuration reads Go syntax ("90s", "1m30s") or a bare number of seconds,
// the form of the original's url_timeout.
func parseDuration(v string) (time.Duration, error) {
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if math.IsNaN(secs) || math.IsInf(secs, 0) || math.Abs(secs*float64(time.Second)) >= math.MaxInt64 {
			return 0, fmt.Errorf("not a duration: use seconds (90) or Go syntax (90s, 2m)")
		}
		return time.Duration(secs * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("not a duration: use seconds (90) or Go syntax (90s, 2m)")
	}
	return d, nil
}

func size(field func(*Config) *int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseSize(v)
		if err != nil {
			return err
		}
		*field(c) = n
		return nil
	}
}

// parseSize reads a number of bytes, optionally with a KiB, MiB or GiB suffix.
func parseSize(v string) (int64, error) {
	num, unit := v, int64(1)
	for _, u := range []struct {
		suffix string
		n      int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if strings.HasSuffix(v, u.suffix) {
			num, unit = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.n
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/unit {
		return 0, fmt.Errorf("not a size: use a number of bytes, optionally with KiB, MiB or GiB (8MiB)")
	}
	return n * unit, nil
}

func setPrefixes(c *Config, v string) error {
	c.DistTest.AllowedIPRanges = nil
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			// A bare address stands for itself, as it did in the original.
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return fmt.Errorf("%q is not a CIDR range such as 10.0.0.0/8 or an IP address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		c.DistTest.AllowedIPRanges = append(c.DistTest.AllowedIPRanges, p.Masked())
	}
	return nil
}

func setAccounts(c *Config, v string) error {
	var m map[string]string
	if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
		return fmt.Errorf(`not a JSON object of user names to passwords, e.g. {"alice": "secret"}`)
	}
	c.DistTest.Accounts = m
	return nil
}

func setSlots(c *Config, v string) error {
	if v == "" {
		c.Slave.Slots = runtime.NumCPU()
		return nil
	}
	return integer(func(c *Config) *int { return &c.Slave.Slots })(c, v)
}

func setScratch(c *Config, v string) error {
	if v == "" {
		v = filepath.Join(os.TempDir(), "dist_test-slave")
	}
	c.Slave.ScratchDir = v
	return nil
}
