package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/testlog"
)

// proc is one dist_test server process of a test.
type proc struct {
	t      testing.TB
	name   string
	args   []string
	env    []string
	serves bool
	cmd    *exec.Cmd
	log    *testlog.Buffer
	url    string
}

// startProc runs `dist_test args...` with env; when the command serves, it
// is given --url-file (and --listen 127.0.0.1:0 unless args name one) and
// startProc waits for the URL.
func startProc(t testing.TB, name string, env []string, serves bool, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, log: &testlog.Buffer{}, args: args, env: env, serves: serves}
	p.start()
	t.Cleanup(func() { p.stop() })
	return p
}

// start starts the process (again).
func (p *proc) start() {
	t := p.t
	t.Helper()
	args := p.args
	urlFile := filepath.Join(t.TempDir(), "url")
	if p.serves {
		if !slices.Contains(args, "--listen") {
			args = append(args, "--listen", "127.0.0.1:0")
		}
		args = append(args, "--url-file", urlFile)
	}
	p.log = &testlog.Buffer{}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = p.env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if !p.serves {
		return
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(urlFile); err == nil && len(b) > 0 {
			p.url = strings.TrimSpace(string(b))
			return
		}
		if p.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("%s did not start:\n%s", p.name, p.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// signal sends sig to the process.
func (p *proc) signal(sig syscall.Signal) {
	if p.cmd != nil {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill ends the process with SIGKILL and waits for it.
func (p *proc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.cmd = nil
}

// exitCode waits for the process to exit by itself (within timeout) and
// returns its exit code, or -1 if it did not exit.
func (p *proc) exitCode(timeout time.Duration) int {
	done := make(chan error, 1)
	cmd := p.cmd
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		p.cmd = nil
		return cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// stop sends SIGTERM and expects a clean exit within 20 s.
func (p *proc) stop() {
	if p.cmd == nil {
		return
	}
	cmd := p.cmd
	p.cmd = nil
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			p.t.Errorf("%s exited with %v:\n%s", p.name, err, p.log)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		p.t.Errorf("%s did not stop within 20 s of SIGTERM:\n%s", p.name, p.log)
	}
}
