package config

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzConfig loads INI files, with one key also given by its environment
// variable (value), as every dist_test process starts. What loads must
// validate again, load the same a second time, and hold values its readers
// take as written (no zero or negative that a reader would silently replace).
// And a value written on one line of the file, as the original's Python
// ConfigParser reads it, must mean what it says: the same as handing that
// text to the key directly (and, for keys that have one, the same as its
// environment variable).
func FuzzConfig(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte, keyIndex uint8, value string) {
		dir := t.TempDir()
		file := filepath.Join(dir, "dist_test.cnf")
		if err := os.WriteFile(file, data, 0o600); err != nil {
			t.Fatal(err)
		}
		k := keys[int(keyIndex)%len(keys)]
		env := map[string]string{"HOME": dir}
		if k.env != "" {
			env[k.env] = value
		}
		c, err := Load(file, envOf(env))
		if err == nil {
			checkLoaded(t, c)
			again, err := Load(file, envOf(env))
			if err != nil || !reflect.DeepEqual(c, again) {
				t.Fatalf("loaded differently the second time: %v\n%+v\n%+v", err, c, again)
			}
		} else if !strings.HasPrefix(err.Error(), "configuration") {
			t.Fatalf("error %q does not say it is about the configuration", err)
		}

		// One line of a file, as ConfigParser reads it: the value is the
		// rest of the line, stripped of white space.
		if strings.ContainsAny(value, "\r\n") {
			return
		}
		line := filepath.Join(dir, "line.cnf")
		text := "[" + k.section + "]\n" + k.name + " = " + value + "\n"
		if err := os.WriteFile(line, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		home := map[string]string{"HOME": dir}
		fromFile, fileErr := Load(line, envOf(home))
		want, wantErr := withValue(k, strings.TrimSpace(value), dir)
		if (fileErr == nil) != (wantErr == nil) || fileErr == nil && !sameValues(fromFile, want) {
			t.Fatalf("%q read from the line %q:\n%+v %v\nwant\n%+v %v", k.id(), text, fromFile, fileErr, want, wantErr)
		}
		if fileErr == nil {
			checkLoaded(t, fromFile)
		}
		if k.env != "" { // the variable's value is taken as it is
			fromEnv, envErr := Load("", envOf(map[string]string{"HOME": dir, k.env: value}))
			want, wantErr := withValue(k, value, dir)
			if (envErr == nil) != (wantErr == nil) || envErr == nil && !sameValues(fromEnv, want) {
				t.Fatalf("%q from $%s=%q:\n%+v %v\nwant\n%+v %v", k.id(), k.env, value, fromEnv, envErr, want, wantErr)
			}
		}
	})
}

// withValue is the configuration of defaults in which key k is given v
// directly, as Load does with a value it found: "" means not set. home
// holds no .dist_test.cnf.
func withValue(k key, v, home string) (*Config, error) {
	c, err := Load("", envOf(map[string]string{"HOME": home}))
	if err != nil || v == "" {
		return c, err
	}
	if k.path {
		if v, err = expandHome(v, func() (string, error) { return home, nil }); err != nil {
			return nil, err
		}
	}
	if err := k.set(c, v); err != nil {
		return nil, err
	}
	return c, c.Validate()
}

// sameValues compares two configurations' values, not where they came from.
func sameValues(a, b *Config) bool {
	x, y := *a, *b
	x.file, y.file = "", ""
	x.sources, y.sources = nil, nil
	x.unknown, y.unknown = nil, nil
	return reflect.DeepEqual(x, y)
}

// checkLoaded asserts what every process may assume of a loaded
// configuration, independently of the checks that made it.
func checkLoaded(t *testing.T, c *Config) {
	t.Helper()
	if err := c.Validate(); err != nil {
		t.Fatalf("a loaded configuration does not validate: %v", err)
	}
	positive := map[string]time.Duration{
		"url_timeout": c.DistTest.URLTimeout, "link_ttl": c.AWS.LinkTTL,
		"heartbeat_interval": c.Master.HeartbeatInterval, "heartbeat_timeout": c.Master.HeartbeatTimeout,
		"ttr": c.Master.TTR, "reconcile_interval": c.Master.ReconcileInterval,
	}
	for name, d := range positive {
		if d <= 0 {
			t.Fatalf("%s = %v accepted", name, d)
		}
	}
	counts := map[string]int64{
		"queue_window": int64(c.Master.QueueWindow), "max_tasks_per_job": int64(c.Master.MaxTasksPerJob),
		"max_runs": int64(c.Master.MaxRuns), "slots": int64(c.Slave.Slots),
		"cache_max_bytes": c.Isolate.CacheMaxBytes, "cache_max_items": int64(c.Isolate.CacheMaxItems),
		"max_artifact_bytes": c.Slave.MaxArtifactBytes,
	}
	for name, n := range counts {
		if n < 1 {
			t.Fatalf("%s = %d accepted", name, n)
		}
	}
	if c.Slave.KillGrace < 0 || c.Slave.LogHeadBytes < 0 || c.Slave.LogTailBytes < 0 {
		t.Fatalf("negative slave value accepted: %+v", c.Slave)
	}
	if c.MySQL.Port < 1 || c.MySQL.Port > 65535 {
		t.Fatalf("mysql port %d accepted", c.MySQL.Port)
	}
	for _, p := range c.DistTest.AllowedIPRanges {
		if !p.IsValid() || p != p.Masked() {
			t.Fatalf("allowed_ip_ranges holds %v", p)
		}
	}
	if c.DistTest.Accounts == nil {
		t.Fatal("accounts is nil")
	}
	for _, k := range keys {
		if s := c.Source(k.id()); s != "default" && s != "file "+c.File() && s != "env "+k.env {
			t.Fatalf("%s comes from %q", k.id(), s)
		}
	}
	if u := c.Unknown(); !slices.IsSorted(u) {
		t.Fatalf("unknown keys not sorted: %q", u)
	}
}
