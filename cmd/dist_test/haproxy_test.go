package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/testenv"
	"github.com/dist-test/dist_test/internal/testlog"
)

// healthCheck is the request HAProxy sends each master to know it is up.
const healthCheck = "GET /healthz"

// haproxyConfig is infra/haproxy/haproxy.cfg's shape, with the test's
// addresses and faster checks: a master is out of the rotation after two
// failed checks 300 ms apart, and back after one good one. A request whose
// connection is refused goes to another master (retries, redispatch).
func haproxyConfig(listen string, masters []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, `global
	maxconn 4000
defaults
	mode http
	timeout connect 1s
	timeout client 2m
	timeout server 2m
	retries 3
	option redispatch
	option http-server-close
frontend dist_test
	bind %s
	default_backend masters
backend masters
	balance roundrobin
	option httpchk
	http-check send meth %s uri %s
	default-server inter 300ms fall 2 rise 1
`, listen, strings.Fields(healthCheck)[0], strings.Fields(healthCheck)[1])
	for i, m := range masters {
		fmt.Fprintf(&b, "\tserver master%d %s check\n", i, m)
	}
	return b.String()
}

// startHAProxy runs HAProxy in front of masters (host:port each) until the
// test ends and returns its URL.
func startHAProxy(t testing.TB, masters []string) string {
	t.Helper()
	bin := testenv.HAProxy(t)
	listen := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	cfg := filepath.Join(t.TempDir(), "haproxy.cfg")
	if err := os.WriteFile(cfg, []byte(haproxyConfig(listen, masters)), 0o644); err != nil {
		t.Fatal(err)
	}
	log := &testlog.Buffer{}
	cmd := exec.Command(bin, "-db", "-f", cfg)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", listen, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("HAProxy does not listen on %s:\n%s", listen, log)
		}
	}
	return "http://" + listen
}

// startMasters starts n-1 masters beside s.master, each with a data folder
// of its own and a fixed address, so that a restart serves where HAProxy
// looks, and returns the URL of the HAProxy in front of them all.
func (s *stack) startMasters(t testing.TB, dir string, env []string, n int) string {
	t.Helper()
	s.master.args = append(s.master.args, "--listen", strings.TrimPrefix(s.master.url, "http://"))
	s.masters = []*proc{s.master}
	addrs := []string{strings.TrimPrefix(s.master.url, "http://")}
	for i := 1; i < n; i++ {
		addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
		s.masters = append(s.masters, startProc(t, fmt.Sprintf("master-%d", i), env, true,
			"master", "--listen", addr, "--data-dir", filepath.Join(dir, fmt.Sprintf("master-%d", i))))
		addrs = append(addrs, addr)
	}
	return startHAProxy(t, addrs)
}
