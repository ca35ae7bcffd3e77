package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// shell returns a command running script with sh in a fresh folder, with
// its logs in that folder.
func shell(t *testing.T, script string) Command {
	t.Helper()
	dir := t.TempDir()
	return Command{
		Args:   []string{"sh", "-c", script},
		Dir:    dir,
		Stdout: filepath.Join(dir, "stdout"),
		Stderr: filepath.Join(dir, "stderr"),
	}
}

func run(t *testing.T, ctx context.Context, c Command) Result {
	t.Helper()
	res, err := Run(ctx, c)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return res
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// readPid waits for the command to have written a pid to path.
func readPid(t *testing.T, path string) int {
	t.Helper()
	for range 500 {
		if b, err := os.ReadFile(path); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				return pid
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

// alive tells whether pid still runs. A zombie does not run: it waits for
// whichever process adopted it to reap it, which can take a moment.
func alive(pid int) bool {
	for range 100 {
		if unix.Kill(pid, 0) == unix.ESRCH {
			return false
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name.
		if fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:])); len(fields) > 0 && fields[0] == "Z" {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

func TestRunExitCodes(t *testing.T) {
	for _, code := range []int{0, 1, 42} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			c := shell(t, fmt.Sprintf("echo out; echo err >&2; exit %d", code))
			res := run(t, t.Context(), c)
			if res.ExitCode != code || res.TimedOut || res.Canceled {
				t.Errorf("got %+v, want exit code %d, not timed out or canceled", res, code)
			}
			if got := readFile(t, c.Stdout); got != "out\n" {
				t.Errorf("stdout %q, want %q", got, "out\n")
			}
			if got := readFile(t, c.Stderr); got != "err\n" {
				t.Errorf("stderr %q, want %q", got, "err\n")
			}
			if res.StdoutBytes != 4 || res.StderrBytes != 4 {
				t.Errorf("counted %d and %d bytes, want 4 and 4", res.StdoutBytes, res.StderrBytes)
			}
		})
	}
}

func TestRunKilledBySignal(t *testing.T) {
	for _, sig := range []unix.Signal{unix.SIGKILL, unix.SIGTERM, unix.SIGSEGV} {
		t.Run(unix.SignalName(sig), func(t *testing.T) {
			res := run(t, t.Context(), shell(t, fmt.Sprintf("kill -%d $$", sig)))
			if res.ExitCode != -int(sig) || res.TimedOut {
				t.Errorf("got %+v, want exit code %d", res, -int(sig))
			}
		})
	}
}

func TestRunTimeoutWhenTermIsIgnored(t *testing.T) {
	c := shell(t, "trap '' TERM; sleep 60")
	c.Timeout = 200 * time.Millisecond
	c.KillGrace = 300 * time.Millisecond
	res := run(t, t.Context(), c)
	if !res.TimedOut || res.Canceled || res.ExitCode != -9 {
		t.Errorf("got %+v, want timed out with exit code -9", res)
	}
	// Never before the grace is over; far sooner than the 60 s sleep.
	if res.Duration < c.Timeout+c.KillGrace || res.Duration > 30*time.Second {
		t.Errorf("ended after %s, want about %s", res.Duration, c.Timeout+c.KillGrace)
	}
}

func TestRunTimeoutWhenTermEndsIt(t *testing.T) {
	tests := []struct {
		name, script string
		code         int
		stdout       string
	}{
		{"default action", "exec sleep 60", -15, ""},
		{"trap exits", "trap 'echo cleaning up; exit 3' TERM; sleep 60 & wait", 3, "cleaning up\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := shell(t, tt.script)
			c.Timeout = 200 * time.Millisecond
			c.KillGrace = time.Minute // SIGKILL must not be what ended it
			res := run(t, t.Context(), c)
			if !res.TimedOut || res.ExitCode != tt.code {
				t.Errorf("got %+v, want timed out with exit code %d", res, tt.code)
			}
			if got := readFile(t, c.Stdout); got != tt.stdout {
				t.Errorf("stdout %q, want %q", got, tt.stdout)
			}
		})
	}
}

func TestRunCancelKillsGroup(t *testing.T) {
	c := shell(t, "sleep 1000 & echo $! > child.pid; wait")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	type outcome struct {
		res Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := Run(ctx, c)
		done <- outcome{res, err}
	}()
	child := readPid(t, filepath.Join(c.Dir, "child.pid"))
	cancel()
	o := <-done
	if o.err != nil {
		t.Fatal(o.err)
	}
	if !o.res.Canceled || o.res.TimedOut || o.res.ExitCode != -15 {
		t.Errorf("got %+v, want canceled with exit code -15", o.res)
	}
	if alive(child) {
		unix.Kill(child, unix.SIGKILL)
		t.Errorf("child %d of the canceled command still runs", child)
	}
}

func TestRunCanceledBeforeStart(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	c := shell(t, "touch ran")
	res, err := Run(ctx, c)
	if !errors.Is(err, context.Canceled) || !res.Canceled {
		t.Errorf("got %+v, %v; want canceled with context.Canceled", res, err)
	}
	if _, err := os.Stat(filepath.Join(c.Dir, "ran")); err == nil {
		t.Error("the command ran")
	}
}

func TestRunKillsDaemonLeftInGroup(t *testing.T) {
	// The daemon keeps stdout open: without the group kill Run would wait
	// for the pipe until pipeWait, and the daemon would outlive the task.
	c := shell(t, "sleep 1000 & echo $! > daemon.pid; echo started")
	start := time.Now()
	res := run(t, t.Context(), c)
	took := time.Since(start)
	daemon := readPid(t, filepath.Join(c.Dir, "daemon.pid"))
	if alive(daemon) {
		unix.Kill(daemon, unix.SIGKILL)
		t.Errorf("daemon %d outlived the task", daemon)
	}
	if res.ExitCode != 0 || readFile(t, c.Stdout) != "started\n" {
		t.Errorf("got %+v, stdout %q", res, readFile(t, c.Stdout))
	}
	if took >= pipeWait {
		t.Errorf("Run took %s: it waited for the pipe instead of killing the daemon", took)
	}
}

func TestRunBoundsWaitForEscapedDaemon(t *testing.T) {
	// setsid leaves the group, so the group kill misses it and it holds
	// stdout open; Run must still return.
	c := shell(t, `setsid sh -c 'echo $$ > daemon.pid; exec sleep 1000' &
		while [ ! -s daemon.pid ]; do sleep 0.01; done
		echo started`)
	res := run(t, t.Context(), c)
	daemon := readPid(t, filepath.Join(c.Dir, "daemon.pid"))
	t.Cleanup(func() { unix.Kill(daemon, unix.SIGKILL) })
	if res.ExitCode != 0 || readFile(t, c.Stdout) != "started\n" {
		t.Errorf("got %+v, stdout %q", res, readFile(t, c.Stdout))
	}
}

// With a Tag, a daemon that left the process group is found by the tag in
// its environment and killed with the task.
func TestRunKillsTaggedEscapedDaemon(t *testing.T) {
	c := shell(t, `setsid sh -c 'echo $$ > daemon.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 &
		while [ ! -s daemon.pid ]; do sleep 0.01; done
		echo started`)
	c.Tag = "run-" + strconv.Itoa(os.Getpid())
	res := run(t, t.Context(), c)
	daemon := readPid(t, filepath.Join(c.Dir, "daemon.pid"))
	t.Cleanup(func() { unix.Kill(daemon, unix.SIGKILL) })
	if res.ExitCode != 0 {
		t.Errorf("got %+v", res)
	}
	deadline := time.Now().Add(2 * time.Second)
	for alive(daemon) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if alive(daemon) {
		t.Errorf("the daemon %d that left the group outlived the task", daemon)
	}
}

func TestRunCapsLogs(t *testing.T) {
	limits := Limits{Head: 1000, Tail: 1000}
	for _, extra := range []int{-1, 0, 1, 12345} {
		t.Run(strconv.Itoa(extra), func(t *testing.T) {
			dir := t.TempDir()
			data := randomBytes(int(limits.Head+limits.Tail)+extra, uint64(extra+10))
			if err := os.WriteFile(filepath.Join(dir, "data"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			c := shell(t, "cat data; cat data >&2")
			c.Dir = dir
			c.LogLimits = limits
			res := run(t, t.Context(), c)
			want := capped(data, limits)
			for _, path := range []string{c.Stdout, c.Stderr} {
				if got := readFile(t, path); got != string(want) {
					t.Errorf("%s holds %d bytes, want %d; first difference at %d",
						filepath.Base(path), len(got), len(want), firstDiff([]byte(got), want))
				}
			}
			if res.StdoutBytes != int64(len(data)) || res.StderrBytes != int64(len(data)) {
				t.Errorf("counted %d and %d bytes, want %d", res.StdoutBytes, res.StderrBytes, len(data))
			}
		})
	}
	// The oracle itself, spelled out once.
	data := randomBytes(2003, 1)
	want := string(data[:1000]) + "\n[dist_test: 3 bytes omitted]\n" + string(data[1003:])
	if got := string(capped(data, limits)); got != want {
		t.Errorf("capped gives %q, want %q", got, want)
	}
}

func TestRunLargeOutputKeepsMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 200 MB through a pipe")
	}
	const size = 200 << 20
	c := shell(t, fmt.Sprintf("head -c %d /dev/zero", size))
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	res := run(t, t.Context(), c)
	runtime.ReadMemStats(&after)
	if res.ExitCode != 0 || res.StdoutBytes != size {
		t.Fatalf("got %+v, want exit 0 and %d bytes", res, size)
	}
	// The ring of one tail plus read buffers; buffering the output would
	// allocate at least its 200 MB.
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 32<<20 {
		t.Errorf("Run allocated %d bytes for %d bytes of output", allocated, size)
	}
	marker := fmt.Sprintf("\n[dist_test: %d bytes omitted]\n", size-DefaultHead-DefaultTail)
	fi, err := os.Stat(c.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(DefaultHead + len(marker) + DefaultTail); fi.Size() != want {
		t.Errorf("stdout holds %d bytes, want %d", fi.Size(), want)
	}
}

func TestRunPassesEnvAndDir(t *testing.T) {
	c := shell(t, `echo "$DIST_TEST_GREETING"; pwd; tool`)
	bin := filepath.Join(c.Dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "tool"), []byte("#!/bin/sh\necho tool ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.Env = []string{"PATH=/usr/bin:/bin:" + bin, "DIST_TEST_GREETING=hello"}
	res := run(t, t.Context(), c)
	dir, err := filepath.EvalSymlinks(c.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := "hello\n" + dir + "\ntool ran\n"; readFile(t, c.Stdout) != want || res.ExitCode != 0 {
		t.Errorf("got %+v, stdout %q, want %q", res, readFile(t, c.Stdout), want)
	}
}

func TestRunResolvesProgram(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "tool"), []byte("#!/bin/sh\necho \"$0 $1\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "plain"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "stdout")

	res, err := Run(t.Context(), Command{Args: []string{"bin/tool", "x"}, Dir: dir, Stdout: out})
	if err != nil || res.ExitCode != 0 || readFile(t, out) != filepath.Join(dir, "bin/tool")+" x\n" {
		t.Errorf("relative program: got %+v, %v, stdout %q", res, err, readFile(t, out))
	}
	// The program's folder in PATH, relative to Dir.
	env := []string{"PATH=bin"}
	res, err = Run(t.Context(), Command{Args: []string{"tool", "y"}, Dir: dir, Env: env, Stdout: out})
	if err != nil || res.ExitCode != 0 || readFile(t, out) != filepath.Join(dir, "bin/tool")+" y\n" {
		t.Errorf("program in PATH: got %+v, %v, stdout %q", res, err, readFile(t, out))
	}

	failures := []struct {
		args []string
		want error
	}{
		{[]string{"./plain"}, fs.ErrPermission},
		{[]string{"./missing"}, fs.ErrNotExist},
		{[]string{"dist-test-no-such-program"}, exec.ErrNotFound},
	}
	for _, f := range failures {
		_, err := Run(t.Context(), Command{Args: f.args, Dir: dir, Env: env})
		if !errors.Is(err, f.want) {
			t.Errorf("%v: got error %v, want %v", f.args, err, f.want)
		}
	}
	if _, err := Run(t.Context(), Command{}); err == nil {
		t.Error("empty argument list: no error")
	}
}

func TestRunSameFileForBothStreams(t *testing.T) {
	c := shell(t, "echo a; echo b >&2; echo c")
	c.Stderr = c.Stdout
	res := run(t, t.Context(), c)
	if got := readFile(t, c.Stdout); got != "a\nb\nc\n" {
		t.Errorf("log %q, want %q", got, "a\nb\nc\n")
	}
	if res.StdoutBytes != 6 || res.StderrBytes != 0 {
		t.Errorf("counted %d and %d bytes, want 6 and 0", res.StdoutBytes, res.StderrBytes)
	}
}

func TestRunDiscardsUnnamedStreams(t *testing.T) {
	res := run(t, t.Context(), Command{Args: []string{"sh", "-c", "echo out; echo error >&2"}, Dir: t.TempDir()})
	if res.ExitCode != 0 || res.StdoutBytes != 4 || res.StderrBytes != 6 {
		t.Errorf("got %+v, want exit 0 with 4 and 6 bytes", res)
	}
}
