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

	"github.com/dist-test/dist_test/internal/model"
)

// key is one configuration key: where it lives, its environment variable,
// its default and how its text becomes a field of Config.
type key struct {
	section, name string
	env           string // "" when no variable overrides it
	def           string
	path          bool // a leading "~/" means the home folder
	secret        bool // never shown in messages
	set           func(c *Config, v string) error
	doc           string // one line for config.example.ini
}

func (k key) id() string { return k.section + "." + k.name }

func (k key) fail(value, source string, err error) error {
	if k.secret {
		value = "(hidden)"
	}
	return fmt.Errorf("[%s] %s = %q (from %s): %w", k.section, k.name, value, source, err)
}

// keys lists every key, in the order of config.example.ini.
var keys = []key{
	{section: "dist_test", name: "master", env: "DIST_TEST_MASTER", set: str(func(c *Config) *string { return &c.DistTest.Master }),
		doc: "base URL of the master that clients talk to, e.g. http://dist-test.example.com:8081"},
	{section: "dist_test", name: "user", env: "DIST_TEST_USER", set: str(func(c *Config) *string { return &c.DistTest.User }),
		doc: "user name for the master and in job ids (default: $USER)"},
	{section: "dist_test", name: "password", secret: true, env: "DIST_TEST_PASSWORD", set: str(func(c *Config) *string { return &c.DistTest.Password }),
		doc: "password of that user on the master"},
	{section: "dist_test", name: "job_path", env: "DIST_TEST_JOB_PATH", def: "~/.dist-test-last-job", path: true,
		set: str(func(c *Config) *string { return &c.DistTest.JobPath }),
		doc: "file where submit keeps the last job id, for watch/fetch/cancel without one"},
	{section: "dist_test", name: "url_timeout", env: "DIST_TEST_URL_TIMEOUT", def: "60s", set: dur(func(c *Config) *time.Duration { return &c.DistTest.URLTimeout }),
		doc: "how long a request to the master may stall before it is retried"},
	{section: "dist_test", name: "ca_file", env: "DIST_TEST_CA_FILE", path: true, set: str(func(c *Config) *string { return &c.DistTest.CAFile }),
		doc: "PEM file of CA certificates to trust, besides the system's, for https masters and isolate servers"},
	{section: "dist_test", name: "allowed_ip_ranges", def: "127.0.0.0/8, ::1/128", set: setPrefixes,
		doc: "(master, isolate-server) comma-separated CIDRs whose clients may submit, cancel, retry and upload inputs without an account"},
	{section: "dist_test", name: "accounts", secret: true, def: "{}", set: accountsOf(func(c *Config) *map[string]string { return &c.DistTest.Accounts }),
		doc: `(master, isolate-server) JSON object of user names to HA1 hashes (dist_test passwd USER prints one) or passwords (warned about), for HTTP Digest in realm "dist_test"`},

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
	{section: "isolate", name: "max_blob_bytes", def: "8GiB", set: size(func(c *Config) *int64 { return &c.Isolate.MaxBlobBytes }),
		doc: "(isolate server) largest input file accepted"},
	{section: "isolate", name: "max_gzip_ratio", def: "100", set: integer(func(c *Config) *int { return &c.Isolate.MaxGzipRatio }),
		doc: "(isolate server) a compressed upload may unpack to at most this many times its size (beyond 1 MiB); clients then send it plain"},
	{section: "isolate", name: "max_temp_bytes", def: "16GiB", set: size(func(c *Config) *int64 { return &c.Isolate.MaxTempBytes }),
		doc: "(isolate server) temporary disk that uploads being verified may hold at once; more are refused with 503 until it frees"},
	{section: "isolate", name: "retention_days", def: "30", set: integer(func(c *Config) *int { return &c.Isolate.RetentionDays }),
		doc: "(isolate server) inputs that no submitted job used for this many days are deleted (within twice that); 0 keeps them"},
	{section: "isolate", name: "tls_cert", path: true, set: str(func(c *Config) *string { return &c.Isolate.TLSCert }),
		doc: "(isolate-server) PEM certificate (chain) to serve https with; needs tls_key"},
	{section: "isolate", name: "tls_key", path: true, set: str(func(c *Config) *string { return &c.Isolate.TLSKey }),
		doc: "(isolate-server) PEM private key of tls_cert"},

	{section: "mysql", name: "host", env: "MYSQL_HOST", set: str(func(c *Config) *string { return &c.MySQL.Host }),
		doc: "(master) MySQL host; empty: the embedded SQLite store in [master] data_dir"},
	{section: "mysql", name: "port", env: "MYSQL_PORT", def: "3306", set: integer(func(c *Config) *int { return &c.MySQL.Port }),
		doc: "(master) MySQL port"},
	{section: "mysql", name: "user", env: "MYSQL_USER", set: str(func(c *Config) *string { return &c.MySQL.User }),
		doc: "(master) MySQL user"},
	{section: "mysql", name: "password", secret: true, env: "MYSQL_PWD", set: str(func(c *Config) *string { return &c.MySQL.Password }),
		doc: "(master) MySQL password"},
	{section: "mysql", name: "database", env: "MYSQL_DB", set: str(func(c *Config) *string { return &c.MySQL.Database }),
		doc: "(master) MySQL database"},

	{section: "beanstalk", name: "host", env: "BEANSTALK_HOST", set: str(func(c *Config) *string { return &c.Beanstalk.Host }),
		doc: "(master, slave) beanstalkd host[:port]; empty: the master's in-process queue"},
	{section: "beanstalk", name: "tube", def: "dist_test", set: str(func(c *Config) *string { return &c.Beanstalk.Tube }),
		doc: "(master, slave) beanstalkd tube of task entries"},

	{section: "aws", name: "access_key", env: "AWS_ACCESS_KEY", set: str(func(c *Config) *string { return &c.AWS.AccessKey }),
		doc: "(master) S3 access key"},
	{section: "aws", name: "secret_key", secret: true, env: "AWS_SECRET_KEY", set: str(func(c *Config) *string { return &c.AWS.SecretKey }),
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
		doc: "(master) lifetime of the links to logs and artifacts it hands out (presigned by S3, or signed by the master)"},

	{section: "master", name: "listen", def: "127.0.0.1:8081", set: str(func(c *Config) *string { return &c.Master.Listen }),
		doc: "address the master serves on"},
	{section: "master", name: "data_dir", path: true, set: str(func(c *Config) *string { return &c.Master.DataDir }),
		doc: "folder of the embedded SQLite store and local blobs"},
	{section: "master", name: "admin_listen", set: str(func(c *Config) *string { return &c.Master.AdminListen }),
		doc: "(master, local) loopback address of a second listener serving Go's profiles (/debug/pprof/) and /metrics, e.g. 127.0.0.1:6060; off when empty"},
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
	{section: "master", name: "max_failures", def: "0", set: integer(func(c *Config) *int { return &c.Master.MaxFailures }),
		doc: "a job whose tasks fail this many times, retries used up, starts nothing more and ends with the rest canceled; 0: no cap. A job's max_failures overrides it"},
	{section: "master", name: "hedge", def: "false", set: boolean(func(c *Config) *bool { return &c.Master.Hedge }),
		doc: "a task running past max(2 × p90, p90 + 30 s) of its history while the queue is empty gets a second run on an idle slot, the first result wins; a job's hedge overrides it"},
	{section: "master", name: "read_auth", def: "false", set: boolean(func(c *Config) *bool { return &c.Master.ReadAuth }),
		doc: "(master, isolate-server) reads (dashboard, status, task lists, logs, inputs) need an account, an allowed address or slave credentials too"},
	{section: "master", name: "max_large_bodies", def: "2", set: integer(func(c *Config) *int { return &c.Master.MaxLargeBodies }),
		doc: "request bodies over 1 MiB (job submissions) read into memory at once; more wait their turn"},
	{section: "master", name: "retention_days", def: "30", set: integer(func(c *Config) *int { return &c.Master.RetentionDays }),
		doc: "jobs submitted more than this many days ago are deleted with their logs and artifacts; 0 keeps them"},
	{section: "master", name: "owners_only", def: "false", set: boolean(func(c *Config) *bool { return &c.Master.OwnersOnly }),
		doc: "only the account that submitted a job, and admins, may cancel or retry it"},
	{section: "master", name: "admins", set: list(func(c *Config) *[]string { return &c.Master.Admins }),
		doc: "comma-separated accounts of [dist_test] accounts that may cancel and retry any job"},
	{section: "master", name: "slave_accounts", secret: true, def: "{}", set: accountsOf(func(c *Config) *map[string]string { return &c.Master.SlaveAccounts }),
		doc: "(master, isolate-server) JSON object of slave account names to HA1 hashes or passwords; slaves log in with [slave] user and password"},
	{section: "master", name: "tls_cert", path: true, set: str(func(c *Config) *string { return &c.Master.TLSCert }),
		doc: "PEM certificate (chain) to serve https with; needs tls_key"},
	{section: "master", name: "tls_key", path: true, set: str(func(c *Config) *string { return &c.Master.TLSKey }),
		doc: "PEM private key of tls_cert"},

	{section: "slave", name: "token", secret: true, set: str(func(c *Config) *string { return &c.Slave.Token }),
		doc: "(master, slave, isolate-server) shared secret of the slaves, the same on the master and every slave (at least 16 characters, e.g. from openssl rand -hex 32)"},
	{section: "slave", name: "user", set: str(func(c *Config) *string { return &c.Slave.User }),
		doc: "(slave) account of [master] slave_accounts the slave logs in with, when there is no token"},
	{section: "slave", name: "password", secret: true, set: str(func(c *Config) *string { return &c.Slave.Password }),
		doc: "(slave) password of that account"},
	{section: "slave", name: "slots", set: setSlots,
		doc: "tasks a slave runs at once (default: the number of CPUs)"},
	{section: "slave", name: "scratch_dir", path: true, set: setScratch,
		doc: "folder of the tasks' working trees and results, locked for the life of a slave (default: <temp dir>/dist_test-slave; more slaves on a host take dist_test-slave.1, .2, ...)"},
	{section: "slave", name: "metrics_listen", set: str(func(c *Config) *string { return &c.Slave.MetricsListen }),
		doc: "address on which a slave serves /metrics, /healthz and /readyz, e.g. :9105; off when empty"},
	{section: "slave", name: "kill_grace", def: "5s", set: dur(func(c *Config) *time.Duration { return &c.Slave.KillGrace }),
		doc: "time between SIGTERM and SIGKILL when a task is stopped"},
	{section: "slave", name: "log_head_bytes", def: "8MiB", set: size(func(c *Config) *int64 { return &c.Slave.LogHeadBytes }),
		doc: "bytes kept from the start of a task's stdout and of its stderr"},
	{section: "slave", name: "log_tail_bytes", def: "8MiB", set: size(func(c *Config) *int64 { return &c.Slave.LogTailBytes }),
		doc: "bytes kept from the end of each (the middle of a longer log is dropped)"},
	{section: "slave", name: "max_artifact_bytes", def: "200MiB", set: size(func(c *Config) *int64 { return &c.Slave.MaxArtifactBytes }),
		doc: "largest artifact archive uploaded"},
	{section: "slave", name: "task_users", set: list(func(c *Config) *[]string { return &c.Slave.TaskUsers }),
		doc: "(root) the users tasks run as, one per slot, each serving this slot alone (every process of it is killed after each task): " +
			"names or uid[:gid], separated by commas; slaves of one host may share a list (default: dist_test-slot-0, dist_test-slot-1, ..., created when missing)"},
	{section: "slave", name: "task_env", set: setTaskEnv,
		doc: "more environment for tasks, separated by commas or new lines: NAME passes the slave's value on, NAME=VALUE sets one " +
			"(tasks get only PATH, LANG, HOME, TMPDIR, TEST_TMPDIR, USER, LOGNAME, DIST_TEST_* and these)"},
	{section: "slave", name: "namespaces", def: "false", set: boolean(func(c *Config) *bool { return &c.Slave.Namespaces }),
		doc: "(root) run each task in PID and mount namespaces of its own: it sees only its own processes, and they all die with it"},
	{section: "slave", name: "keep_passed_logs", def: "false", set: boolean(func(c *Config) *bool { return &c.Slave.KeepPassedLogs }),
		doc: "upload the stdout and stderr of tasks that passed too (as the original, only failed tasks' logs are kept by default)"},
	{section: "slave", name: "memory_limit", def: "0", set: size(func(c *Config) *int64 { return &c.Slave.MemoryLimit }),
		doc: "most memory a task's processes may use together (0: no limit); enforced in the task's cgroup (memory.max), " +
			"which needs a writable cgroup v2 with the memory controller: the slave refuses to start when it cannot enforce it"},
	{section: "slave", name: "container_runtime", def: "docker", set: setContainerRuntime,
		doc: "command that runs tasks naming a docker_image, with its own first arguments separated by spaces (docker; " +
			"podman takes the same commands, e.g. podman --runtime runc); a slave without it gives such tasks to other slaves"},
	{section: "slave", name: "task_network", def: "host", set: setTaskNetwork,
		doc: "network of task containers (--network): host, none, or a network the runtime knows (the slave refuses to start otherwise)"},
	{section: "slave", name: "task_memory", def: "0", set: size(func(c *Config) *int64 { return &c.Slave.TaskMemory }),
		doc: "most memory a task container may use (--memory; 0: memory_limit, if any; else at least 6MiB)"},
	{section: "slave", name: "task_cpus", def: "0", set: setTaskCPUs,
		doc: "CPUs a task container may use, e.g. 1.5 (--cpus; 0: no limit)"},
	{section: "slave", name: "allowed_images", set: list(func(c *Config) *[]string { return &c.Slave.AllowedImages }),
		doc: "container images tasks may name, as globs separated by commas, * matching any characters, slashes too " +
			"(e.g. registry.example.com/ci/*); a task naming another fails at once (default: any)"},

	{section: "server", name: "max_connections", def: "1024", set: integer(func(c *Config) *int { return &c.Server.MaxConnections }),
		doc: "(master, isolate server) connections served at once; more wait until one closes"},
	{section: "server", name: "idle_timeout", def: "60s", set: dur(func(c *Config) *time.Duration { return &c.Server.IdleTimeout }),
		doc: "(master, isolate server) a kept-alive connection with no new request for this long is closed"},
	{section: "server", name: "read_timeout", def: "30s", set: dur(func(c *Config) *time.Duration { return &c.Server.ReadTimeout }),
		doc: "(master, isolate server) time a request body may take, plus 1 s per min_rate bytes of it"},
	{section: "server", name: "write_timeout", def: "30s", set: dur(func(c *Config) *time.Duration { return &c.Server.WriteTimeout }),
		doc: "(master, isolate server) time an answer may take to send, plus 1 s per min_rate bytes of it"},
	{section: "server", name: "min_rate", def: "64KiB", set: size(func(c *Config) *int64 { return &c.Server.MinRate }),
		doc: "(master, isolate server) slowest transfer, in bytes per second, that a long upload or download may keep up"},

	{section: "autoscale", name: "provider", set: str(func(c *Config) *string { return &c.Autoscale.Provider }),
		doc: "(autoscale) what adds and removes slaves: gce (a managed instance group), exec (shell commands) or local (slave processes on this host)"},
	{section: "autoscale", name: "min_size", def: "0", set: integer(func(c *Config) *int { return &c.Autoscale.MinSize }),
		doc: "(autoscale) fewest slaves, even with nothing to do"},
	{section: "autoscale", name: "max_size", def: "10", set: integer(func(c *Config) *int { return &c.Autoscale.MaxSize }),
		doc: "(autoscale) most slaves, whatever the work"},
	{section: "autoscale", name: "target_drain", def: "10m", set: dur(func(c *Config) *time.Duration { return &c.Autoscale.TargetDrain }),
		doc: "(autoscale) enough slaves to finish the queued and running work (by the tasks' expected runtimes) within this"},
	{section: "autoscale", name: "scale_down_delay", def: "10m", set: dur(func(c *Config) *time.Duration { return &c.Autoscale.ScaleDownDelay }),
		doc: "(autoscale) the fleet shrinks once it has been larger than needed for this long, draining idle slaves only"},
	{section: "autoscale", name: "interval", def: "10s", set: dur(func(c *Config) *time.Duration { return &c.Autoscale.Interval }),
		doc: "(autoscale) time between decisions"},
	{section: "autoscale", name: "unknown_runtime", def: "1m", set: dur(func(c *Config) *time.Duration { return &c.Autoscale.UnknownRuntime }),
		doc: "(autoscale) work counted for a task that has no runtime history yet"},
	{section: "autoscale", name: "slave_slots", def: "0", set: integer(func(c *Config) *int { return &c.Autoscale.SlaveSlots }),
		doc: "(autoscale) slots of a new slave, counted while no slave is alive and given to the local provider's slaves (0: [slave] slots)"},
	{section: "autoscale", name: "gce_project", set: str(func(c *Config) *string { return &c.Autoscale.GCEProject }),
		doc: "(autoscale, gce) project of the slaves' managed instance group"},
	{section: "autoscale", name: "gce_zone", set: str(func(c *Config) *string { return &c.Autoscale.GCEZone }),
		doc: "(autoscale, gce) zone of the group"},
	{section: "autoscale", name: "gce_group", set: str(func(c *Config) *string { return &c.Autoscale.GCEGroup }),
		doc: "(autoscale, gce) name of the group; its VMs' names are the hostnames their slaves register with"},
	{section: "autoscale", name: "gce_endpoint", set: str(func(c *Config) *string { return &c.Autoscale.GCEEndpoint }),
		doc: "(autoscale, gce) base URL of the Compute API, for a proxy (default: Google's)"},
	{section: "autoscale", name: "exec_list", set: str(func(c *Config) *string { return &c.Autoscale.ExecList }),
		doc: "(autoscale, exec) sh command that prints the fleet's hostnames, one a line"},
	{section: "autoscale", name: "exec_grow", set: str(func(c *Config) *string { return &c.Autoscale.ExecGrow }),
		doc: "(autoscale, exec) sh command that adds slaves: {n} is how many, {size} the fleet's size after"},
	{section: "autoscale", name: "exec_remove", set: str(func(c *Config) *string { return &c.Autoscale.ExecRemove }),
		doc: "(autoscale, exec) sh command that deletes the machines {hosts} (quoted words), whose slaves have left"},
	{section: "autoscale", name: "local_dir", def: "~/.dist_test/autoscale", path: true, set: str(func(c *Config) *string { return &c.Autoscale.LocalDir }),
		doc: "(autoscale, local) folder of the scratch folders of the slaves it starts"},
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

// ParseSize reads a number of bytes, optionally with a KiB, MiB or GiB
// suffix, as size keys and flags take them.
func ParseSize(v string) (int64, error) { return parseSize(v) }

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

func accountsOf(field func(*Config) *map[string]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		var m map[string]string
		if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
			return fmt.Errorf(`not a JSON object of user names to HA1 hashes or passwords, e.g. {"alice": "<the hash dist_test passwd alice prints>"}`)
		}
		*field(c) = m
		return nil
	}
}

// list reads words separated by commas or new lines.
func list(field func(*Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error {
		*field(c) = words(v)
		return nil
	}
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

// words splits a value on commas and new lines, dropping empty entries.
func words(v string) []string {
	var out []string
	for _, line := range strings.Split(v, "\n") {
		for _, e := range strings.Split(line, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

// setTaskEnv reads NAME and NAME=VALUE entries. A value runs to the next
// comma or the end of its line.
func setTaskEnv(c *Config, v string) error {
	c.Slave.TaskEnv = nil
	for _, e := range words(v) {
		name, _, _ := strings.Cut(e, "=")
		if !validEnvName(name) {
			return fmt.Errorf("%q: want NAME or NAME=VALUE, NAME made of letters, digits and _ and not starting with a digit", e)
		}
		c.Slave.TaskEnv = append(c.Slave.TaskEnv, e)
	}
	return nil
}

// setContainerRuntime reads a command and its first arguments, separated
// by spaces; the runtime's subcommands follow them.
func setContainerRuntime(c *Config, v string) error {
	f := strings.Fields(v)
	if len(f) == 0 {
		return fmt.Errorf("want a command, e.g. docker or podman")
	}
	if strings.HasPrefix(f[0], "-") {
		return fmt.Errorf("want a command first, not an option")
	}
	c.Slave.ContainerRuntime = f
	return nil
}

func setTaskNetwork(c *Config, v string) error {
	if !networkName(v) {
		return fmt.Errorf("want host, none or a network name (letters, digits, _ . -)")
	}
	c.Slave.TaskNetwork = v
	return nil
}

func networkName(s string) bool {
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case i > 0 && (r == '_' || r == '.' || r == '-'):
		default:
			return false
		}
	}
	return s != ""
}

func setTaskCPUs(c *Config, v string) error {
	n, err := strconv.ParseFloat(v, 64)
	if err != nil || n < 0 || math.IsInf(n, 0) || math.IsNaN(n) {
		return fmt.Errorf("want a number of CPUs, 0 or more, e.g. 1.5")
	}
	c.Slave.TaskCPUs = n
	return nil
}

func validEnvName(s string) bool {
	if s == "" || s[0] >= '0' && s[0] <= '9' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Closest returns the known key ("section.key") of the same section that
// an unknown one (as Unknown lists it) most likely misspells, or "".
func Closest(id string) string {
	section, name, _ := strings.Cut(id, ".")
	var names []string
	for _, k := range keys {
		if k.section == section {
			names = append(names, k.name)
		}
	}
	if near := model.Closest(name, names); near != "" {
		return section + "." + near
	}
	return ""
}
