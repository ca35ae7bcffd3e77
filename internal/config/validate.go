package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
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
// that did not parse, whose problem is already told).
func (c *Config) check(skip map[string]bool) []error {
	var errs []error
	bad := func(id string, value any, format string, args ...any) {
		if skip[id] {
			return
		}
		section, name, _ := strings.Cut(id, ".")
		errs = append(errs, fmt.Errorf("[%s] %s = %q (from %s): %s", section, name, fmt.Sprint(value), c.source(id), fmt.Sprintf(format, args...)))
	}

	if m := c.DistTest.Master; m != "" {
		if err := CheckURL(m); err != nil {
			bad("dist_test.master", m, "%v", err)
		}
	}
	if c.DistTest.URLTimeout <= 0 {
		bad("dist_test.url_timeout", c.DistTest.URLTimeout, "must be more than zero")
	}
	if s := c.Isolate.Server; s != "" {
		if err := CheckURL(s); err != nil {
			bad("isolate.server", s, "%v", err)
		}
	}
	if p := c.MySQL.Port; p < 1 || p > 65535 {
		bad("mysql.port", p, "must be a TCP port, 1 to 65535")
	}
	if c.MySQL.Host != "" && c.MySQL.Database == "" {
		bad("mysql.database", "", "must be set when [mysql] host is")
	}
	if t := c.Beanstalk.Tube; !validTube(t) {
		bad("beanstalk.tube", t, "must be 1 to 200 letters, digits or -+/;.$_() and not start with '-'")
	}
	if (c.AWS.AccessKey == "") != (c.AWS.SecretKey == "") {
		errs = append(errs, fmt.Errorf("[aws] access_key (from %s) and secret_key (from %s): set both or neither",
			c.source("aws.access_key"), c.source("aws.secret_key")))
	}
	if e := c.AWS.Endpoint; e != "" {
		if err := CheckURL(e); err != nil {
			bad("aws.endpoint", e, "%v", err)
		}
	}
	if d := c.AWS.LinkTTL; d <= 0 || d > maxLinkTTL {
		bad("aws.link_ttl", d, "must be more than zero and at most %s, the longest S3 presigns", maxLinkTTL)
	}
	if _, _, err := net.SplitHostPort(c.Master.Listen); err != nil {
		bad("master.listen", c.Master.Listen, "must be host:port, e.g. 127.0.0.1:8081 or :8081")
	}
	if d := c.Master.HeartbeatInterval; d <= 0 {
		bad("master.heartbeat_interval", d, "must be more than zero")
	} else if c.Master.HeartbeatTimeout < 2*d {
		bad("master.heartbeat_timeout", c.Master.HeartbeatTimeout,
			"must be at least twice [master] heartbeat_interval (%s), or a slave is declared lost between two heartbeats", d)
	}
	if n := c.Master.QueueWindow; n < 1 {
		bad("master.queue_window", n, "must be at least 1")
	}
	if n := c.Master.MaxTasksPerJob; n < 1 {
		bad("master.max_tasks_per_job", n, "must be at least 1")
	}
	if d := c.Master.TTR; d < time.Second {
		bad("master.ttr", d, "must be at least 1s (the queue counts it in whole seconds)")
	}
	for _, pair := range [][2]string{{"master.tls_cert", "master.tls_key"}, {"isolate.tls_cert", "isolate.tls_key"}} {
		cert, key := c.tlsFiles(pair[0])
		if (cert == "") != (key == "") {
			errs = append(errs, fmt.Errorf("[%s] tls_cert (from %s) and tls_key (from %s): set both or neither",
				strings.Split(pair[0], ".")[0], c.source(pair[0]), c.source(pair[1])))
		}
	}
	for _, a := range c.Master.Admins {
		if _, ok := c.DistTest.Accounts[a]; !ok {
			bad("master.admins", strings.Join(c.Master.Admins, ", "), "%q is not an account of [dist_test] accounts", a)
		}
	}
	if c.Master.OwnersOnly && len(c.DistTest.Accounts) == 0 {
		bad("master.owners_only", true, "jobs are owned by accounts: set [dist_test] accounts too")
	}
	if t := c.Slave.Token; t != "" && len(t) < MinTokenLength {
		bad("slave.token", "(hidden)", "%d characters is too short for a secret: use at least %d, e.g. the output of openssl rand -hex 32", len(t), MinTokenLength)
	}
	// Their readers would take zero or less for their default, not for
	// what it says.
	if d := c.Master.ReconcileInterval; d <= 0 {
		bad("master.reconcile_interval", d, "must be more than zero")
	}
	if n := c.Master.MaxRuns; n < 1 {
		bad("master.max_runs", n, "must be at least 1")
	}
	if n := c.Isolate.CacheMaxBytes; n < 1 {
		bad("isolate.cache_max_bytes", n, "must be more than zero")
	}
	if n := c.Isolate.CacheMaxItems; n < 1 {
		bad("isolate.cache_max_items", n, "must be at least 1")
	}
	if n := c.Slave.Slots; n < 1 {
		bad("slave.slots", n, "must be at least 1")
	}
	if d := c.Slave.KillGrace; d < 0 {
		bad("slave.kill_grace", d, "must not be negative")
	}
	for _, s := range []struct {
		id string
		n  int64
	}{
		{"slave.log_head_bytes", c.Slave.LogHeadBytes},
		{"slave.log_tail_bytes", c.Slave.LogTailBytes},
		{"master.retention_days", int64(c.Master.RetentionDays)},
		{"isolate.retention_days", int64(c.Isolate.RetentionDays)},
	} {
		if s.n < 0 {
			bad(s.id, s.n, "must not be negative")
		}
	}
	for _, s := range []struct {
		id string
		n  int64
	}{
		{"isolate.max_blob_bytes", c.Isolate.MaxBlobBytes},
		{"isolate.max_gzip_ratio", int64(c.Isolate.MaxGzipRatio)},
		{"master.max_large_bodies", int64(c.Master.MaxLargeBodies)},
		{"server.max_connections", int64(c.Server.MaxConnections)},
		{"server.min_rate", c.Server.MinRate},
	} {
		if s.n < 1 {
			bad(s.id, s.n, "must be at least 1")
		}
	}
	if n := c.Slave.MaxArtifactBytes; n < 1 {
		bad("slave.max_artifact_bytes", n, "must be more than zero")
	}
	if c.Isolate.MaxTempBytes < c.Isolate.MaxBlobBytes {
		bad("isolate.max_temp_bytes", c.Isolate.MaxTempBytes, "must be at least [isolate] max_blob_bytes (%d), or the largest blob could never be received", c.Isolate.MaxBlobBytes)
	}
	for _, s := range []struct {
		id string
		d  time.Duration
	}{
		{"server.idle_timeout", c.Server.IdleTimeout},
		{"server.read_timeout", c.Server.ReadTimeout},
		{"server.write_timeout", c.Server.WriteTimeout},
	} {
		if s.d <= 0 {
			bad(s.id, s.d, "must be more than zero")
		}
	}
	return errs
}

// MinTokenLength is the shortest [slave] token accepted.
const MinTokenLength = 16

func (c *Config) tlsFiles(id string) (cert, key string) {
	if id == "master.tls_cert" {
		return c.Master.TLSCert, c.Master.TLSKey
	}
	return c.Isolate.TLSCert, c.Isolate.TLSKey
}

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
