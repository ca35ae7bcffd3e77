package process

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The init of Namespaces is this test binary, started again.
func TestMain(m *testing.M) {
	MaybeInit()
	os.Exit(m.Run())
}

// testUser is a uid no account and no other process on the machine has,
// so that killing all of its processes harms nothing else.
func testUser(t *testing.T) User {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running commands as another user needs root")
	}
	id := uint32(2_000_000_000 + os.Getpid()%100_000)
	return User{UID: id, GID: id}
}

// userDir is a folder the user owns, under folders anyone may traverse.
func userDir(t *testing.T, u User) string {
	t.Helper()
	root := t.TempDir()
	for d := root; d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(root, "sandbox")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, int(u.UID), int(u.GID)); err != nil {
		t.Fatal(err)
	}
	return dir
}

func userShell(t *testing.T, u User, script string) Command {
	t.Helper()
	dir := userDir(t, u)
	logs := t.TempDir()
	return Command{
		Args: []string{"sh", "-c", script}, Dir: dir, Env: []string{"PATH=/usr/bin:/bin"}, User: &u,
		Stdout: filepath.Join(logs, "stdout"), Stderr: filepath.Join(logs, "stderr"),
	}
}

// A command with a User runs as that uid and gid alone, with no_new_privs;
// a command without one has no_new_privs too.
func TestRunAsUser(t *testing.T) {
	u := testUser(t)
	c := userShell(t, u, `echo "$(id -u) $(id -g) [$(id -G)]"; grep NoNewPrivs /proc/self/status; stat -c %a /proc/self/status >/dev/null`)
	res := run(t, t.Context(), c)
	want := strconv.Itoa(int(u.UID)) + " " + strconv.Itoa(int(u.GID)) + " [" + strconv.Itoa(int(u.GID)) + "]\nNoNewPrivs:\t1\n"
	if got := readFile(t, c.Stdout); res.ExitCode != 0 || got != want {
		t.Errorf("got %+v, stdout %q; want %q\nstderr: %s", res, got, want, readFile(t, c.Stderr))
	}
	if fi, err := os.Stat(c.Stdout); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log file: %v, %v; want mode 0600", fi, err)
	}

	plain := shell(t, "grep NoNewPrivs /proc/self/status")
	run(t, t.Context(), plain)
	if got := readFile(t, plain.Stdout); got != "NoNewPrivs:\t1\n" {
		t.Errorf("a command without a user: %q; want no_new_privs set", got)
	}
	// The slave itself keeps its privileges.
	if b, _ := os.ReadFile("/proc/self/status"); !strings.Contains(string(b), "NoNewPrivs:\t0") {
		t.Errorf("no_new_privs leaked to the test process's main thread")
	}
}

// Once a user's command has ended, every process of that user is killed:
// a daemon that left the process group and cleared its environment (so
// that no tag finds it) too.
func TestRunAsUserKillsWhatTheTaskLeft(t *testing.T) {
	u := testUser(t)
	c := userShell(t, u, `setsid env -i sh -c 'echo $$ > daemon.pid; exec sleep 1000' </dev/null >/dev/null 2>&1 &
		while [ ! -s daemon.pid ]; do sleep 0.01; done; echo started`)
	res := run(t, t.Context(), c)
	daemon := readPid(t, filepath.Join(c.Dir, "daemon.pid"))
	t.Cleanup(func() { unix.Kill(daemon, unix.SIGKILL) })
	if res.ExitCode != 0 || readFile(t, c.Stdout) != "started\n" {
		t.Errorf("got %+v, stdout %q", res, readFile(t, c.Stdout))
	}
	if alive(daemon) {
		t.Errorf("daemon %d of the user outlived the command", daemon)
	}
}

// The program and its #! interpreter are looked up as the user: a PATH
// entry the user cannot reach does not count, and a working folder the
// user cannot enter is named.
func TestRunAsUserLooksUpAsTheUser(t *testing.T) {
	u := testUser(t)
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(private, "secret-tool"), []byte("#!/bin/sh\necho ran\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := userShell(t, u, "")
	c.Args = []string{"secret-tool"}
	c.Env = []string{"PATH=" + private + ":/usr/bin:/bin"}
	if _, err := Run(t.Context(), c); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("Run of a program only root can reach: %v; want not found", err)
	}
	c = userShell(t, u, "true")
	c.Dir = private
	_, err := Run(t.Context(), c)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), private) {
		t.Errorf("Run in a folder the user cannot enter: %v; want permission denied naming it", err)
	}
}

// AsUser judges file access as the user would meet it.
func TestAsUser(t *testing.T) {
	u := testUser(t)
	private := t.TempDir()
	if err := os.Chmod(private, 0o700); err != nil {
		t.Fatal(err)
	}
	err := AsUser(u, func() error {
		_, err := os.Stat(filepath.Join(private, "x"))
		return err
	})
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("stat under root's 0700 folder as the user: %v; want permission denied", err)
	}
	if err := AsUser(u, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Errorf("AsUser changed the credentials of the process")
	}
}

func TestCheckNamespaces(t *testing.T) {
	testUser(t)
	if err := CheckNamespaces(); err != nil {
		t.Fatalf("this machine allows namespaces (unshare works): %v", err)
	}
}

// With namespaces the task runs under the init, sees only its own
// processes, gets its exit status and signals through the init, and
// nothing it started outlives it.
func TestRunInNamespaces(t *testing.T) {
	u := testUser(t)
	if err := CheckNamespaces(); err != nil {
		t.Skipf("namespaces: %v", err)
	}
	c := userShell(t, u, `ls /proc | grep -c '^[0-9][0-9]*$'; id -u; grep NoNewPrivs /proc/self/status; exit 7`)
	c.Namespaces = true
	res := run(t, t.Context(), c)
	// The init, sh, ls and grep at most: ls may have read /proc before grep
	// was forked. The host's own processes are never seen.
	got := readFile(t, c.Stdout)
	procs, rest, _ := strings.Cut(got, "\n")
	n, _ := strconv.Atoi(procs)
	want := strconv.Itoa(int(u.UID)) + "\nNoNewPrivs:\t1\n"
	if res.ExitCode != 7 || n < 3 || n > 4 || rest != want {
		t.Errorf("got %+v, stdout %q; want exit 7, 3 or 4 processes, then %q\nstderr: %s", res, got, want, readFile(t, c.Stderr))
	}

	c = userShell(t, u, "kill -SEGV $$")
	c.Namespaces = true
	if res := run(t, t.Context(), c); res.ExitCode != -int(unix.SIGSEGV) {
		t.Errorf("a task killed by SIGSEGV: %+v", res)
	}

	// SIGTERM reaches the task through the init, which PID 1 would ignore.
	c = userShell(t, u, "trap 'echo cleaning up; exit 3' TERM; sleep 60 & wait")
	c.Namespaces = true
	c.Timeout, c.KillGrace = 300*time.Millisecond, time.Minute
	res = run(t, t.Context(), c)
	if !res.TimedOut || res.ExitCode != 3 || readFile(t, c.Stdout) != "cleaning up\n" {
		t.Errorf("timed out task: %+v, stdout %q; want exit 3 from its trap", res, readFile(t, c.Stdout))
	}

	// A timeout that comes before the init can pass signals on: the
	// SIGTERM waits for it instead of being dropped by PID 1, so the
	// command ends by it, not by the SIGKILL after the grace.
	c = userShell(t, u, "")
	c.Namespaces = true
	c.Args = []string{"/bin/sleep", "30"}
	c.Timeout, c.KillGrace = time.Nanosecond, time.Minute
	if res := run(t, t.Context(), c); !res.TimedOut || res.ExitCode != -int(unix.SIGTERM) {
		t.Errorf("a task timed out at once: %+v; want it ended by SIGTERM", res)
	}

	// A daemon that left the group, with its environment cleared; the
	// test marks it by its arguments to find it from outside.
	marker := strconv.Itoa(1_000_000 + os.Getpid())
	c = userShell(t, u, `setsid env -i sleep `+marker+` </dev/null >/dev/null 2>&1 & echo started`)
	c.Namespaces = true
	if res := run(t, t.Context(), c); res.ExitCode != 0 {
		t.Fatalf("got %+v", res)
	}
	if pids := processesRunning("sleep", marker); len(pids) > 0 {
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
		t.Errorf("the task's daemon %v outlived its namespace", pids)
	}

	// A command that cannot start is told by the init.
	c = userShell(t, u, "")
	c.Namespaces = true
	c.Args = []string{"/bin/sh", "-c", "exit 0"}
	if res := run(t, t.Context(), c); res.ExitCode != 0 {
		t.Errorf("a plain command: %+v", res)
	}
}

// processesRunning lists the pids whose command line is exactly args.
func processesRunning(args ...string) []int {
	want := strings.Join(args, "\x00") + "\x00"
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err == nil && string(b) == want && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}
