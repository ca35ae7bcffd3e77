package process

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// InitArg is the first argument with which Run starts its own program
// (/proc/self/exe) as the init of a command's PID and mount namespaces.
// A program that runs commands with Namespaces calls MaybeInit first thing
// in main.
const InitArg = "__dist_test_task_init"

// MaybeInit does the init's job and exits when the process was started as
// one by Run; otherwise it returns at once.
//
// The init is PID 1 of a new PID namespace, root in a new mount namespace:
// it mounts a /proc of its own (so that the task sees only its own
// processes), starts the command as the task's user in a process group of
// its own, passes SIGTERM, SIGINT, SIGHUP and SIGQUIT on to that group
// (PID 1 ignores the signals it has no handler for), reaps every orphan,
// and once the command has exited kills whatever is left in the namespace.
// It tells Run how the command ended through file descriptor 3. When the
// init dies (SIGKILL after the kill grace), the kernel kills every process
// of the namespace with it: nothing the task started outlives it.
func MaybeInit() {
	if len(os.Args) < 2 || os.Args[1] != InitArg {
		return
	}
	os.Exit(initMain(os.Args[2:]))
}

// initArgs are the init's arguments: "probe", or "run UID GID PATH ARGV...".
func initArgs(u User, path string, args []string) []string {
	return append([]string{"dist_test-task-init", InitArg, "run", strconv.FormatUint(uint64(u.UID), 10),
		strconv.FormatUint(uint64(u.GID), 10), path}, args...)
}

func initMain(args []string) int {
	status := os.NewFile(3, "status")
	fail := func(format string, a ...any) int {
		fmt.Fprintf(status, "error "+format, a...)
		return 1
	}
	if status == nil || len(args) == 0 {
		fmt.Fprintln(os.Stderr, "dist_test: the task init is started by the slave only")
		return 2
	}
	if err := mountProc(); err != nil {
		return fail("%v", err)
	}
	if args[0] == "probe" {
		fmt.Fprint(status, "ok")
		return 0
	}
	if args[0] != "run" || len(args) < 5 {
		return fail("bad arguments %q", args)
	}
	uid, err1 := strconv.ParseUint(args[1], 10, 32)
	gid, err2 := strconv.ParseUint(args[2], 10, 32)
	if err1 != nil || err2 != nil {
		return fail("bad uid or gid %q %q", args[1], args[2])
	}
	// Before the command starts, so that no signal meant for it is lost.
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT)
	// Until now a SIGTERM was dropped (PID 1 ignores the signals it has
	// no handler for): Run holds back its signals until it reads this.
	fmt.Fprint(status, readyLine)
	pid, err := syscall.ForkExec(args[3], args[4:], &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
		Sys: &syscall.SysProcAttr{Setpgid: true,
			Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}},
	})
	if err != nil {
		return fail("start task command: %v", err)
	}
	go func() {
		for s := range sigs {
			_ = unix.Kill(-pid, s.(syscall.Signal))
		}
	}()
	var ws unix.WaitStatus
	for {
		var w unix.WaitStatus
		got, err := unix.Wait4(-1, &w, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			break // ECHILD: nothing left
		}
		if got == pid {
			ws = w
			// From PID 1, kill(-1) reaches every other process of the
			// namespace: the task's leftovers, setsid or not.
			_ = unix.Kill(-1, unix.SIGKILL)
		}
	}
	fmt.Fprintf(status, "status %d", uint32(ws))
	return 0
}

func mountProc() error {
	// Private: nothing mounted here reaches the slave's namespace.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the task's mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount the task's /proc: %w", err)
	}
	return nil
}

// namespaceFlags are the namespaces a task's init gets.
const namespaceFlags = unix.CLONE_NEWPID | unix.CLONE_NEWNS

// CheckNamespaces tells whether this process may run commands with
// Namespaces: it starts an init that mounts its /proc and exits. The
// error says what the kernel refused.
func CheckNamespaces() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	var stderr bytes.Buffer
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        []string{"dist_test-task-init", InitArg, "probe"},
		ExtraFiles:  []*os.File{w},
		Stderr:      &stderr,
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: namespaceFlags},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("new PID and mount namespaces: %w", err)
	}
	out, _ := io.ReadAll(io.LimitReader(r, 4096))
	werr := cmd.Wait()
	if msg, ok := strings.CutPrefix(string(out), "error "); ok {
		return fmt.Errorf("new PID and mount namespaces: %s", msg)
	}
	if string(out) != "ok" {
		return fmt.Errorf("new PID and mount namespaces: the probe ended with %v without an answer (does main call process.MaybeInit?) %s",
			werr, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// initResult reads what the init said of the command: its wait status, or
// why it could not start it. ok is false when the init said nothing: it
// was killed first.
// readyLine is what the init writes once it passes signals on.
const readyLine = "ready\n"

// watchInit reads the init's answer from r: ready is closed once the init
// passes signals on (or has said something else, or is gone), and result
// gets the whole answer for initResult.
func watchInit(r io.Reader) (ready <-chan struct{}, result <-chan []byte) {
	readyC, resultC := make(chan struct{}), make(chan []byte, 1)
	go func() {
		head := make([]byte, len(readyLine))
		n, _ := io.ReadFull(r, head)
		close(readyC)
		rest, _ := io.ReadAll(io.LimitReader(r, 4096))
		resultC <- append(head[:n], rest...)
	}()
	return readyC, resultC
}

func initResult(r io.Reader) (ws unix.WaitStatus, ok bool, err error) {
	out, _ := io.ReadAll(io.LimitReader(r, 4096))
	s := strings.TrimPrefix(string(out), readyLine)
	if msg, found := strings.CutPrefix(s, "error "); found {
		return 0, false, errors.New(msg)
	}
	if v, found := strings.CutPrefix(s, "status "); found {
		n, err := strconv.ParseUint(v, 10, 32)
		if err == nil {
			return unix.WaitStatus(n), true, nil
		}
	}
	return 0, false, nil
}
