package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proc is one dist_test server process of a test.
type proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	url  string
}

// startProc runs `dist_test args...` with env; when the command serves, it
// is given --url-file and startProc waits for the URL.
func startProc(t testing.TB, name string, env []string, serves bool, args ...string) *proc {
	t.Helper()
	p := &proc{t: t, name: name, log: &bytes.Buffer{}}
	urlFile := filepath.Join(t.TempDir(), "url")
	if serves {
		args = append(args, "--listen", "127.0.0.1:0", "--url-file", urlFile)
	}
	p.cmd = exec.Command(binary, args...)
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.stop() })
	if !serves {
		return p
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(urlFile); err == nil && len(b) > 0 {
			p.url = strings.TrimSpace(string(b))
			return p
		}
		if p.cmd.ProcessState != nil || time.Now().After(deadline) {
			t.Fatalf("%s did not start:\n%s", name, p.log)
		}
		time.Sleep(50 * time.Millisecond)
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
