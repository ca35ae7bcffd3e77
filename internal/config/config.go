// Package config reads dist_test's INI configuration: the keys of the
// original dist_test (so that an existing ~/.dist_test.cnf keeps working)
// plus the settings of our master and slave. Values come from defaults, then
// the file, then environment variables; the caller applies its flags last and
// may call Validate again.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	osuser "os/user"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/ini.v1"
)

// Config is the whole configuration. Field comments name the INI key.
type Config struct {
	DistTest  DistTest
	Isolate   Isolate
	MySQL     MySQL
	Beanstalk Beanstalk
	AWS       AWS
	Master    Master
	Slave     Slave
	Server    Server
	Autoscale Autoscale

	file    string            // the file read, "" when none was
	sources map[string]string // "section.key" → where its value came from
	unknown []string          // keys of the file that nothing reads
}

// DistTest is the [dist_test] section, shared by the client and the master.
type DistTest struct {
	Master          string            // master: base URL of the master
	User            string            // user
	Password        string            // password
	JobPath         string            // job_path: file holding the last submitted job id
	URLTimeout      time.Duration     // url_timeout: how long a request to the master may stall
	CAFile          string            // ca_file: more CA certificates to trust
	AllowedIPRanges []netip.Prefix    // allowed_ip_ranges: addresses that may write without an account
	Accounts        map[string]string // accounts: user → HA1 or password, for HTTP Digest
}

// Isolate is the [isolate] section.
type Isolate struct {
	Server   string // server: URL of the isolate server
	CacheDir string // cache_dir
	// cache_max_bytes, cache_max_items: limits of the slave's input cache
	CacheMaxBytes int64
	CacheMaxItems int
	Listen        string // listen: address of `dist_test isolate-server`
	DataDir       string // data_dir: its folder of inputs when there is no S3 bucket
	// max_blob_bytes, max_gzip_ratio, max_temp_bytes: what the CAS accepts
	MaxBlobBytes  int64
	MaxGzipRatio  int
	MaxTempBytes  int64
	RetentionDays int    // retention_days: blobs no manifest used for this long are deleted; 0 keeps them
	TLSCert       string // tls_cert, tls_key: serve https
	TLSKey        string
}

// MySQL is the [mysql] section; an empty Host means the embedded SQLite store.
type MySQL struct {
	Host     string
	Port     int
	User     string
	Password string
	Database string
}

// Beanstalk is the [beanstalk] section; an empty Host means the in-process queue.
type Beanstalk struct {
	Host string
	Tube string
}

// AWS is the [aws] section; an empty TestResultBucket means the local blob folder.
type AWS struct {
	AccessKey        string
	SecretKey        string
	TestResultBucket string
	Endpoint         string        // endpoint: any S3 endpoint (MinIO, versitygw); "" for AWS
	Region           string        // region
	PathStyle        bool          // path_style: bucket in the path rather than the host name
	LinkTTL          time.Duration // link_ttl: lifetime of presigned links
}

// Master is the [master] section.
type Master struct {
	Listen            string
	DataDir           string
	AdminListen       string // admin_listen: pprof's listener, "" for none
	HeartbeatInterval time.Duration
	HeartbeatTimeout  time.Duration
	QueueWindow       int
	MaxTasksPerJob    int
	TTR               time.Duration
	ReconcileInterval time.Duration
	MaxRuns           int
	MaxFailures       int               // max_failures: failed tasks after which a job is canceled; 0: no cap
	Hedge             bool              // hedge: stragglers get a second run
	ReadAuth          bool              // read_auth: reads need authentication too
	MaxLargeBodies    int               // max_large_bodies: request bodies over 1 MiB read at once
	RetentionDays     int               // retention_days: jobs older than this are deleted; 0 keeps them
	OwnersOnly        bool              // owners_only: cancel and retry by the job's owner and admins only
	Admins            []string          // admins: accounts that may change any job
	SlaveAccounts     map[string]string // slave_accounts: slave → HA1 or password
	TLSCert           string            // tls_cert, tls_key: serve https
	TLSKey            string
}

// Server is the [server] section: the bounds of every HTTP listener
// (master, isolate-server, local).
type Server struct {
	MaxConnections int           // max_connections
	IdleTimeout    time.Duration // idle_timeout
	ReadTimeout    time.Duration // read_timeout
	WriteTimeout   time.Duration // write_timeout
	MinRate        int64         // min_rate, bytes per second
}

// Slave is the [slave] section.
type Slave struct {
	Token            string // token: the slaves' shared secret
	User             string // user, password: a slave account, when there is no token
	Password         string
	Slots            int
	ScratchDir       string
	MetricsListen    string // metrics_listen: "" serves no /metrics
	KillGrace        time.Duration
	LogHeadBytes     int64
	LogTailBytes     int64
	MaxArtifactBytes int64
	TaskUsers        []string // task_users: names or uid[:gid], one per slot
	TaskEnv          []string // task_env: NAME or NAME=VALUE
	Namespaces       bool     // namespaces
	MemoryLimit      int64    // memory_limit: 0 is none
	KeepPassedLogs   bool     // keep_passed_logs
	// Tasks that name a docker_image: the runtime's command and first
	// arguments (container_runtime), the containers' network, memory and
	// CPU caps (0: none), and the images allowed (globs; empty: any).
	ContainerRuntime []string
	TaskNetwork      string
	TaskMemory       int64
	TaskCPUs         float64
	AllowedImages    []string
}

// Autoscale is the [autoscale] section: `dist_test autoscale`.
type Autoscale struct {
	Provider       string        // provider: gce, exec or local
	MinSize        int           // min_size, max_size: bounds of the fleet, in slaves
	MaxSize        int           //
	TargetDrain    time.Duration // target_drain: finish the queued work within this
	ScaleDownDelay time.Duration // scale_down_delay: a surplus lasts this long before the fleet shrinks
	Interval       time.Duration // interval: between decisions
	UnknownRuntime time.Duration // unknown_runtime: work counted for a task with no history
	SlaveSlots     int           // slave_slots: slots of a new slave; 0: [slave] slots
	GCEProject     string        // gce_project, gce_zone, gce_group: the managed instance group
	GCEZone        string
	GCEGroup       string
	GCEEndpoint    string // gce_endpoint: Compute API base URL; "" for Google's
	ExecList       string // exec_list, exec_grow, exec_remove: command templates
	ExecGrow       string
	ExecRemove     string
	LocalDir       string // local_dir: scratch folders of the local provider's slaves
}

// TaskEnvironment is task_env with each bare NAME given its value from
// getenv (the slave's environment); a NAME the slave lacks is left out.
func (s Slave) TaskEnvironment(getenv func(string) (string, bool)) []string {
	var out []string
	for _, e := range s.TaskEnv {
		if strings.Contains(e, "=") {
			out = append(out, e)
		} else if v, ok := getenv(e); ok {
			out = append(out, e+"="+v)
		}
	}
	return out
}

// SlaveSecrets names the database and S3 credentials the configuration
// holds, with where each came from: a slave needs none of them.
func (c *Config) SlaveSecrets() []string {
	var out []string
	for _, s := range []struct {
		id  string
		set bool
	}{
		{"mysql.password", c.MySQL.Password != ""},
		{"aws.access_key", c.AWS.AccessKey != ""},
		{"aws.secret_key", c.AWS.SecretKey != ""},
	} {
		if s.set {
			section, name, _ := strings.Cut(s.id, ".")
			out = append(out, fmt.Sprintf("[%s] %s (from %s)", section, name, c.source(s.id)))
		}
	}
	return out
}

// Account returns the account a client logs in with: [dist_test] user and
// password, the user being the login name when unset. Without a password
// there is none ("", ""): a user alone only names job ids.
func (c *Config) Account() (user, password string) {
	if c.DistTest.Password == "" {
		return "", ""
	}
	user = c.DistTest.User
	if user == "" {
		if u, err := osuser.Current(); err == nil {
			user = u.Username
		}
	}
	return user, c.DistTest.Password
}

// File returns the path of the file that was read, or "" when none was.
func (c *Config) File() string { return c.file }

// Source tells where the value of key ("section.key", e.g. "dist_test.master")
// came from: "default", "file <path>" or "env <NAME>"; "" for an unknown key.
func (c *Config) Source(key string) string { return c.sources[key] }

// Unknown lists the keys ("section.key") of dist_test's own sections in the
// file that dist_test does not read: most likely typos worth a warning.
// Sections of other tools are not reported.
func (c *Config) Unknown() []string { return c.unknown }

// Load reads the configuration. path "" means $DIST_TEST_CNF, or else
// ~/.dist_test.cnf, which may be missing; a file named explicitly must exist.
// getenv supplies the environment (os.Getenv in production); an empty value
// counts as unset. Every bad value is reported, each naming its key, its
// value and where it came from; Load then returns no Config.
func Load(path string, getenv func(string) string) (*Config, error) {
	home := func() (string, error) {
		if h := getenv("HOME"); h != "" {
			return h, nil
		}
		return os.UserHomeDir()
	}
	explicit := path != ""
	if !explicit {
		path = getenv("DIST_TEST_CNF")
		explicit = path != ""
	}
	if !explicit {
		if h, err := home(); err == nil {
			path = filepath.Join(h, ".dist_test.cnf")
		}
	}

	c := &Config{sources: make(map[string]string)}
	var file *ini.File
	if path != "" {
		f, err := readFile(path)
		switch {
		case err == nil:
			file, c.file = f, path
		case explicit || !errors.Is(err, os.ErrNotExist):
			return nil, err
		}
	}

	var errs []error
	failed := make(map[string]bool) // keys whose text did not parse
	for _, k := range keys {
		value, source := k.def, "default"
		if file != nil {
			if v, ok := lookup(file, k.section, k.name); ok {
				value, source = v, "file "+path
			}
		}
		if k.env != "" {
			if v := getenv(k.env); v != "" {
				value, source = v, "env "+k.env
			}
		}
		c.sources[k.id()] = source
		if k.path {
			var err error
			if value, err = expandHome(value, home); err != nil {
				errs = append(errs, k.fail(value, source, err))
				failed[k.id()] = true
				continue
			}
		}
		if err := k.set(c, value); err != nil {
			errs = append(errs, k.fail(value, source, err))
			failed[k.id()] = true
		}
	}
	// Checks of the values that did parse come with the parse errors, so
	// that one run shows every problem.
	errs = append(errs, c.check(failed)...)
	if len(errs) > 0 {
		return nil, fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	if file != nil {
		c.unknown = unknownKeys(file)
	}
	return c, nil
}

func readFile(path string) (*ini.File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("configuration file: %w", err)
	}
	// Options that read a file the way the original's Python ConfigParser
	// did: case-insensitive keys, indented continuation lines (a long
	// accounts object), quotes kept, no inline comments, so that a
	// password may contain '#' or ';', and no backslash continuation, so
	// that a value may end in a backslash.
	f, err := ini.LoadSources(ini.LoadOptions{
		InsensitiveKeys:            true,
		AllowPythonMultilineValues: true,
		IgnoreInlineComment:        true,
		PreserveSurroundedQuote:    true,
		IgnoreContinuation:         true,
	}, quoteValues(data))
	if err != nil {
		return nil, fmt.Errorf("configuration file %s: %w", path, err)
	}
	return f, nil
}

// quoteValues has go-ini read a value that begins with a backtick or with
// three double quotes as ConfigParser does, as written. go-ini takes those
// for its own quotes, drops them, and reads on through the following lines
// to the closing one: a password "`x" would swallow the rest of the file.
// Wrapped in three double quotes, go-ini returns the value whole (it looks
// for the last three quotes of the line). Indented lines, which continue a
// value, go-ini leaves alone.
func quoteValues(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, l := range lines {
		if len(l) == 0 || bytes.IndexByte([]byte(" \t#;[\"`"), l[0]) >= 0 {
			continue
		}
		d := bytes.IndexAny(l, "=:")
		if d < 0 {
			continue
		}
		v := bytes.TrimSpace(l[d+1:])
		if !bytes.HasPrefix(v, []byte("`")) && !bytes.HasPrefix(v, []byte(`"""`)) {
			continue
		}
		end := l[len(bytes.TrimRight(l, "\r\n")):]
		lines[i] = slices.Concat(l[:d+1], []byte(` """`), v, []byte(`"""`), end)
	}
	return bytes.Join(lines, nil)
}

// lookup finds a key in its section or, as ConfigParser did, in [DEFAULT].
// An empty value counts as absent.
func lookup(f *ini.File, section, name string) (string, bool) {
	for _, s := range []string{section, ini.DefaultSection} {
		sec, err := f.GetSection(s)
		if err != nil {
			continue
		}
		if k, err := sec.GetKey(name); err == nil {
			v := strings.TrimSpace(k.String())
			return v, v != ""
		}
	}
	return "", false
}

func unknownKeys(f *ini.File) []string {
	known := make(map[string]bool)
	sections := make(map[string]bool)
	for _, k := range keys {
		known[k.id()] = true
		sections[k.section] = true
	}
	for _, id := range legacyKeys {
		known[id] = true
	}
	var out []string
	for _, sec := range f.Sections() {
		if !sections[sec.Name()] {
			continue
		}
		for _, k := range sec.Keys() {
			if id := sec.Name() + "." + k.Name(); !known[id] {
				out = append(out, id)
			}
		}
	}
	sort.Strings(out)
	return out
}

// expandHome turns a leading "~/" into the user's home folder, as the
// original's os.path.expanduser did.
func expandHome(p string, home func() (string, error)) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") {
		return p, nil
	}
	h, err := home()
	if err != nil {
		return "", fmt.Errorf("cannot expand ~: %w", err)
	}
	return filepath.Join(h, p[1:]), nil
}
