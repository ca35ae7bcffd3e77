package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// maxLinkTTL is the longest lifetime S3 allows a presigned link.
const maxLinkTTL = 7 * 24 * time.Hour

// Validate checks the values together and reports every problem at once,
// each naming its key, its value and where the value came from. Load runs
// the same checks; call Validate after changing fields (from flags, say).
func (c *Config) Validate() error {
	if errs := c.check(nil); len(errs) > 0 {
		return fmt.Errorf("configuration: %w", errors.Join(errs...))
	}
	return nil
}

// check returns the problems of the values, leaving out keys in skip (those
// that did not parse, whose problem is already told). The phases run in a
// fixed order, so that a file with several problems is told them in the same
// order each time.
func (c *Config) check(skip map[string]bool) []error {
	p := &problems{c: c, skip: skip}
	p.checkServices()
	p.checkScheduling()
	p.checkTLS()
	p.checkAccess()
	p.checkDefaulted()
	p.checkLimits()
	p.checkServerTimeouts()
	return p.errs
}

// problems collects what check finds.
type problems struct {
	c    *Config
	skip map[string]bool
	errs []error
}

// bad tells that the key id holds a value it must not, unless the key did
// not parse (its problem is told already).
func (p *problems) bad(id string, value any, format string, args ...any) {
	if p.skip[id] {
		return
	}
	section, name, _ := strings.Cut(id, ".")
	p.errs = append(p.errs, fmt.Errorf("[%s] %s = %q (from %s): %s", section, name, fmt.Sprint(value), p.c.source(id), fmt.Sprintf(format, args...)))
}

// both tells that one of two keys of a section that go together is set
// without the other. The values are left out: one of the pairs is a secret.
func (p *problems) both(first, second string, setFirst, setSecond bool) {
	if setFirst == setSecond {
		return
	}
	section, a, _ := strings.Cut(first, ".")
	_, b, _ := strings.Cut(second, ".")
	p.errs = append(p.errs, fmt.Errorf("[%s] %s (from %s) and %s (from %s): set both or neither",
		section, a, p.c.source(first), b, p.c.source(second)))
}

// checkServices checks how the client and the master reach the master, the
// isolate server, the database, the queue and S3.
func (p *problems) checkServices() {
	c := p.c
	if m := c.DistTest.Master; m != "" {
		if err := CheckURL(m); err != nil {
			p.bad("dist_test.master", m, "%v", err)
		}
	}
	if c.DistTest.URLTimeout <= 0 {
		p.bad("dist_test.url_timeout", c.DistTest.URLTimeout, "must be more than zero")
	}
	if s := c.Isolate.Server; s != "" {
		if err := CheckURL(s); err != nil {
			p.bad("isolate.server", s, "%v", err)
		}
	}
	if n := c.MySQL.Port; n < 1 || n > 65535 {
		p.bad("mysql.port", n, "must be a TCP port, 1 to 65535")
	}
	if c.MySQL.Host != "" && c.MySQL.Database == "" {
		p.bad("mysql.database", "", "must be set when [mysql] host is")
	}
	if t := c.Beanstalk.Tube; !validTube(t) {
		p.bad("beanstalk.tube", t, "must be 1 to 200 letters, digits or -+/;.$_() and not start with '-'")
	}
	p.both("aws.access_key", "aws.secret_key", c.AWS.AccessKey != "", c.AWS.SecretKey != "")
	if e := c.AWS.Endpoint; e != "" {
		if err := CheckURL(e); err != nil {
			p.bad("aws.endpoint", e, "%v", err)
		}
	}
	if d := c.AWS.LinkTTL; d <= 0 || d > maxLinkTTL {
		p.bad("aws.link_ttl", d, "must be more than zero and at most %s, the longest S3 presigns", maxLinkTTL)
	}
}

// checkScheduling checks where the master listens and the timings and
// windows by which it hands tasks out and notices lost slaves.
func (p *problems) checkScheduling() {
	m := p.c.Master
	if _, _, err := net.SplitHostPort(m.Listen); err != nil {
		p.bad("master.listen", m.Listen, "must be host:port, e.g. 127.0.0.1:8081 or :8081")
	}
	if a := m.AdminListen; a != "" {
		if err := CheckLoopback(a); err != nil {
			p.bad("master.admin_listen", a, "%v", err)
		}
	}
	if a := p.c.Slave.MetricsListen; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			p.bad("slave.metrics_listen", a, "must be host:port, e.g. :9105")
		}
	}
	if d := m.HeartbeatInterval; d <= 0 {
		p.bad("master.heartbeat_interval", d, "must be more than zero")
	} else if m.HeartbeatTimeout < 2*d {
		p.bad("master.heartbeat_timeout", m.HeartbeatTimeout,
			"must be at least twice [master] heartbeat_interval (%s), or a slave is declared lost between two heartbeats", d)
	}
	if n := m.QueueWindow; n < 1 {
		p.bad("master.queue_window", n, "must be at least 1")
	}
	if n := m.MaxTasksPerJob; n < 1 {
		p.bad("master.max_tasks_per_job", n, "must be at least 1")
	}
	if d := m.TTR; d < time.Second {
		p.bad("master.ttr", d, "must be at least 1s (the queue counts it in whole seconds)")
	}
}

// checkTLS checks that each server given a certificate is given its key.
func (p *problems) checkTLS() {
	c := p.c
	p.both("master.tls_cert", "master.tls_key", c.Master.TLSCert != "", c.Master.TLSKey != "")
	p.both("isolate.tls_cert", "isolate.tls_key", c.Isolate.TLSCert != "", c.Isolate.TLSKey != "")
}

// checkAccess checks that the roles name accounts that exist and that the
// slaves' secret is long enough to be one.
func (p *problems) checkAccess() {
	c := p.c
	for _, a := range c.Master.Admins {
		if _, ok := c.DistTest.Accounts[a]; !ok {
			p.bad("master.admins", strings.Join(c.Master.Admins, ", "), "%q is not an account of [dist_test] accounts", a)
		}
	}
	if c.Master.OwnersOnly && len(c.DistTest.Accounts) == 0 {
		p.bad("master.owners_only", true, "jobs are owned by accounts: set [dist_test] accounts too")
	}
	if t := c.Slave.Token; t != "" && len(t) < MinTokenLength {
		p.bad("slave.token", "(hidden)", "%d characters is too short for a secret: use at least %d, e.g. the output of openssl rand -hex 32", len(t), MinTokenLength)
	}
}

// checkDefaulted checks values whose readers would take zero or less for
// their default, not for what it says.
func (p *problems) checkDefaulted() {
	c := p.c
	if d := c.Master.ReconcileInterval; d <= 0 {
		p.bad("master.reconcile_interval", d, "must be more than zero")
	}
	if n := c.Master.MaxRuns; n < 1 {
		p.bad("master.max_runs", n, "must be at least 1")
	}
	if n := c.Master.MaxFailures; n < 0 || n > protocol.MaxFailures {
		p.bad("master.max_failures", n, "must be from 0 (no cap) to %d", protocol.MaxFailures)
	}
	if n := c.Isolate.CacheMaxBytes; n < 1 {
		p.bad("isolate.cache_max_bytes", n, "must be more than zero")
	}
	if n := c.Isolate.CacheMaxItems; n < 1 {
		p.bad("isolate.cache_max_items", n, "must be at least 1")
	}
	if n := c.Slave.Slots; n < 1 {
		p.bad("slave.slots", n, "must be at least 1")
	}
	if d := c.Slave.KillGrace; d < 0 {
		p.bad("slave.kill_grace", d, "must not be negative")
	}
}

// checkLimits checks the sizes, counts and ages that bound what the
// services keep and accept.
func (p *problems) checkLimits() {
	c := p.c
	type limit struct {
		id string
		n  int64
	}
	for _, s := range []limit{
		{"slave.log_head_bytes", c.Slave.LogHeadBytes},
		{"slave.log_tail_bytes", c.Slave.LogTailBytes},
		{"master.retention_days", int64(c.Master.RetentionDays)},
		{"isolate.retention_days", int64(c.Isolate.RetentionDays)},
	} {
		if s.n < 0 {
			p.bad(s.id, s.n, "must not be negative")
		}
	}
	for _, s := range []limit{
		{"isolate.max_blob_bytes", c.Isolate.MaxBlobBytes},
		{"isolate.max_gzip_ratio", int64(c.Isolate.MaxGzipRatio)},
		{"master.max_large_bodies", int64(c.Master.MaxLargeBodies)},
		{"server.max_connections", int64(c.Server.MaxConnections)},
		{"server.min_rate", c.Server.MinRate},
	} {
		if s.n < 1 {
			p.bad(s.id, s.n, "must be at least 1")
		}
	}
	if n := c.Slave.MemoryLimit; n < 0 {
		p.bad("slave.memory_limit", n, "must be 0 (no limit) or more")
	}
	if n := c.Slave.TaskMemory; n != 0 && n < 6<<20 {
		// Below 6 MiB docker refuses to make the container: every task
		// would fail.
		p.bad("slave.task_memory", n, "must be 0 (no limit) or at least 6MiB")
	}
	if n := c.Slave.MaxArtifactBytes; n < 1 {
		p.bad("slave.max_artifact_bytes", n, "must be more than zero")
	}
	if c.Isolate.MaxTempBytes < c.Isolate.MaxBlobBytes {
		p.bad("isolate.max_temp_bytes", c.Isolate.MaxTempBytes, "must be at least [isolate] max_blob_bytes (%d), or the largest blob could never be received", c.Isolate.MaxBlobBytes)
	}
}

// checkServerTimeouts checks the [server] timeouts every listener applies.
func (p *problems) checkServerTimeouts() {
	c := p.c
	for _, s := range []struct {
		id string
		d  time.Duration
	}{
		{"server.idle_timeout", c.Server.IdleTimeout},
		{"server.read_timeout", c.Server.ReadTimeout},
		{"server.write_timeout", c.Server.WriteTimeout},
	} {
		if s.d <= 0 {
			p.bad(s.id, s.d, "must be more than zero")
		}
	}
}

// MinTokenLength is the shortest [slave] token accepted.
const MinTokenLength = 16

// CheckURL checks that s is an absolute http or https URL with a host, the
// form the address of a master, an isolate server or an S3 endpoint takes.
func CheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("must be an http:// or https:// URL, e.g. http://dist-test.example.com:8081")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("must not have a query or fragment")
	}
	return nil
}

// validTube follows beanstalkd's rule for tube names.
func validTube(t string) bool {
	if t == "" || len(t) > 200 || t[0] == '-' {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-+/;.$_()", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// source is Source for messages: values set by the caller have none.
func (c *Config) source(id string) string {
	if s := c.sources[id]; s != "" {
		return s
	}
	return "caller"
}

// CheckLoopback refuses an address that is not host:port on a loopback
// host. The admin listener serves profiles and the process's memory to
// anyone who reaches it, without accounts: it is reached by an SSH tunnel
// or kubectl port-forward, never from the network.
func CheckLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("must be host:port, e.g. 127.0.0.1:6060")
	}
	if host == "localhost" {
		return nil
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.IsLoopback() {
		return nil
	}
	return errors.New("must be a loopback address (127.0.0.1:6060, [::1]:6060 or localhost:6060): profiles need no account, so reach them through an SSH tunnel or kubectl port-forward")
}
