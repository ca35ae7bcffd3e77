package testenv

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Service is a server process of a test's own (its own data folder and
// port), so that a fault test may stop and restart it without touching the
// shared one.
type Service struct {
	t    testing.TB
	name string
	Addr string // 127.0.0.1:port
	args []string
	cmd  *exec.Cmd
	log  bytes.Buffer
}

// FreePort returns a loopback port nothing listens on now.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// OwnBeanstalkd starts a beanstalkd of the test's own, with a binlog in a
// folder of its own so that a restart keeps its entries (see Restart and
// WipeBinlog).
func OwnBeanstalkd(t testing.TB) *Service {
	t.Helper()
	bin, err := exec.LookPath("beanstalkd")
	if err != nil {
		missing(t, "beanstalkd (the program)", err)
	}
	port := FreePort(t)
	binlog := filepath.Join(t.TempDir(), "binlog")
	if err := os.MkdirAll(binlog, 0o755); err != nil {
		t.Fatal(err)
	}
	s := &Service{t: t, name: "beanstalkd", Addr: fmt.Sprintf("127.0.0.1:%d", port),
		args: []string{bin, "-l", "127.0.0.1", "-p", fmt.Sprint(port), "-b", binlog}}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// WipeBinlog deletes a stopped beanstalkd's binlog: the next start has lost
// every entry, as after a restart without persistence.
func (s *Service) WipeBinlog() {
	s.t.Helper()
	dir := s.args[len(s.args)-1]
	if err := os.RemoveAll(dir); err != nil {
		s.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		s.t.Fatal(err)
	}
}

// OwnMariaDB starts a MariaDB server of the test's own on a fresh data
// folder; root may connect over TCP without a password.
func OwnMariaDB(t testing.TB) *Service {
	t.Helper()
	install, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		missing(t, "MariaDB (mariadb-install-db)", err)
	}
	server := "/usr/sbin/mariadbd"
	if _, err := os.Stat(server); err != nil {
		missing(t, "MariaDB (mariadbd)", err)
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	out, err := exec.Command(install, "--no-defaults", "--datadir="+data, "--auth-root-authentication-method=normal",
		"--skip-test-db", "--user=root").CombinedOutput()
	if err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	port := FreePort(t)
	s := &Service{t: t, name: "mariadbd", Addr: fmt.Sprintf("127.0.0.1:%d", port),
		args: []string{server, "--no-defaults", "--datadir=" + data, fmt.Sprintf("--port=%d", port),
			"--bind-address=127.0.0.1", "--socket=" + filepath.Join(dir, "sock"), "--user=root",
			"--innodb-buffer-pool-size=32M", "--skip-log-bin"}}
	s.Start()
	t.Cleanup(s.Kill)
	return s
}

// Start starts the process and waits until it accepts connections.
func (s *Service) Start() {
	s.t.Helper()
	s.log.Reset()
	s.cmd = exec.Command(s.args[0], s.args[1:]...)
	s.cmd.Stdout, s.cmd.Stderr = &s.log, &s.log
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting %s: %v", s.name, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for reachable(s.Addr) != nil {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s did not come up on %s:\n%s", s.name, s.Addr, s.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends the process with SIGTERM and waits for it.
func (s *Service) Stop() { s.signal(syscall.SIGTERM) }

// Kill ends the process with SIGKILL and waits for it.
func (s *Service) Kill() { s.signal(syscall.SIGKILL) }

func (s *Service) signal(sig syscall.Signal) {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Wait()
	s.cmd = nil
}

// OwnS3 starts an S3 server (versitygw) of the test's own, with the access
// key and secret of S3Server, on a data folder of its own.
func OwnS3(t testing.TB) (*Service, S3Server) {
	t.Helper()
	bin, err := exec.LookPath("versitygw")
	if err != nil {
		if gopath, gerr := exec.Command("go", "env", "GOPATH").Output(); gerr == nil {
			bin = filepath.Join(string(bytes.TrimSpace(gopath)), "bin", "versitygw")
			_, err = os.Stat(bin)
		}
	}
	if err != nil {
		missing(t, "versitygw (the program)", err)
	}
	port := FreePort(t)
	s3 := S3Server{Endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), AccessKey: "own", SecretKey: "own_secret", Region: "us-east-1"}
	s := &Service{t: t, name: "versitygw", Addr: fmt.Sprintf("127.0.0.1:%d", port),
		args: []string{bin, "--access", s3.AccessKey, "--secret", s3.SecretKey, "--port", fmt.Sprintf("127.0.0.1:%d", port),
			"posix", t.TempDir()}}
	s.Start()
	t.Cleanup(s.Kill)
	return s, s3
}

// HAProxy returns the path of the haproxy program (Debian installs it in
// /usr/sbin, which a user's PATH may lack).
func HAProxy(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		if _, serr := os.Stat("/usr/sbin/haproxy"); serr == nil {
			return "/usr/sbin/haproxy"
		}
		missing(t, "haproxy (the program)", err)
	}
	return bin
}

// Pid is the process id of the running service, for the benchmarks that
// measure its CPU time.
func (s *Service) Pid() int { return s.cmd.Process.Pid }
