package process

import (
	"errors"
	"fmt"
	"os/exec"
	"runtime"

	"golang.org/x/sys/unix"
)

// The main goroutine keeps the main thread to itself, so that no goroutine
// of AsUser or startNoNewPrivs ever runs there. A locked goroutine that ends
// takes its thread with it, except the main thread, which the Go runtime
// keeps, parked, with whatever it was given: and the kernel judges signals
// sent to the process by the main thread's credentials.
func init() { runtime.LockOSThread() }

// onMainThread guards the above.
func onMainThread() bool { return unix.Gettid() == unix.Getpid() }

var errMainThread = errors.New("the main thread may not change its credentials (process.init locks it to the main goroutine)")

// AsUser runs fn on an OS thread of its own whose credentials are u's
// alone, so that the kernel judges what fn does (a stat, a lookup, a
// kill) as it would judge the command's. The caller must be root. The
// thread never runs anything else: it ends with fn, and its credentials
// with it.
func AsUser(u User, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: when this goroutine returns, the Go runtime ends
		// the thread rather than hand it, with u's credentials, to other
		// goroutines. Threads the runtime starts meanwhile come from its
		// template thread, not from this one.
		runtime.LockOSThread()
		if onMainThread() {
			runtime.UnlockOSThread()
			errc <- errMainThread
			return
		}
		if err := setThreadCreds(u); err != nil {
			errc <- err
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// setThreadCreds makes the calling thread u. Raw system calls change the
// calling thread only, where the syscall package's Setuid and its kin
// change every thread of the process.
func setThreadCreds(u User) error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return fmt.Errorf("drop supplementary groups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("become gid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("become uid %d: %w", u.UID, e)
	}
	return nil
}

// KillUser kills every process running as u's uid. The uid must be the
// caller's to kill: one that serves a single task slot. It is one sweep
// of the kernel's process list, which a process forking as fast as it can
// does not escape; the caller's own process is spared.
func KillUser(u User) error {
	return AsUser(u, func() error {
		// kill(-1) signals every process this thread may signal: those of
		// u, since the thread has no capability left. ESRCH: there were none.
		if err := unix.Kill(-1, unix.SIGKILL); err != nil && err != unix.ESRCH {
			return fmt.Errorf("kill the processes of uid %d: %w", u.UID, err)
		}
		return nil
	})
}

// startNoNewPrivs starts cmd from an OS thread of its own that has set
// no_new_privs, which the command inherits across fork and exec: nothing
// the task runs can gain privileges (setuid programs, file capabilities).
// no_new_privs is a property of a thread, and Go forks from the thread of
// the goroutine that calls Start; the thread is thrown away afterwards so
// that the rest of the slave keeps its own.
func startNoNewPrivs(cmd *exec.Cmd) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see AsUser
		if onMainThread() {
			runtime.UnlockOSThread()
			errc <- errMainThread
			return
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			errc <- fmt.Errorf("set no_new_privs: %w", err)
			return
		}
		errc <- cmd.Start()
	}()
	return <-errc
}
