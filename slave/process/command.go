// Package process runs one task command of the dist_test slave in its own
// process group, caps what it writes to its log files and reports how it
// ended. It only works on Linux (process groups, namespaces, waitid,
// prctl, setresuid: the _linux.go files); elsewhere Run, AsUser and the
// others fail with ErrPlatform.
//
// Every command starts with no_new_privs set: nothing it runs gains
// privileges through setuid bits or file capabilities. Run as root, the
// slave gives each command an unprivileged User of its own, and optionally
// PID and mount namespaces under a small init (Namespaces).
package process

import (
	"errors"
	"time"
)

// Defaults applied to the zero values of Command and Limits.
const (
	DefaultKillGrace = 5 * time.Second
	DefaultHead      = 8 << 20
	DefaultTail      = 8 << 20

	// pipeWait bounds how long Run waits, once the command has exited and its
	// group was killed, for the log pipes to reach end of file. A process that
	// left the group (setsid) can hold them open forever.
	pipeWait = 2 * time.Second
)

// ErrPlatform is what the package's functions return off Linux.
var ErrPlatform = errors.New("task commands run on Linux only")

// User is the unprivileged account a command runs as: its uid and its one
// group. Supplementary groups are dropped.
type User struct{ UID, GID uint32 }

// Command describes one command to run.
type Command struct {
	// Args[0] is resolved relative to Dir if it contains a slash, otherwise
	// through the PATH of Env (or of the slave when Env has none).
	Args []string
	Dir  string
	// Env is the whole environment of the command; nil inherits the slave's.
	Env []string
	// Timeout of 0 means none.
	Timeout time.Duration
	// KillGrace is the time between SIGTERM and SIGKILL; 0 means
	// DefaultKillGrace.
	KillGrace time.Duration
	// Stdout and Stderr name the log files (created or truncated). An empty
	// name discards that stream, still counting its bytes. The same name for
	// both sends both streams through one pipe into one file, in the order
	// the command wrote them, and counts them all as StdoutBytes.
	Stdout, Stderr string
	// LogLimits applies to each stream.
	LogLimits Limits
	// Tag, when set, makes sure that a daemon that left the process group
	// (setsid) is killed with the rest: the command runs in a cgroup of its
	// own where cgroup v2 is writable; otherwise every process of the
	// command is marked through the environment variable TagVar and found
	// among the orphans re-parented to this process, its child subreaper
	// (see leftovers_linux.go). It must be unique to this run. It is not a
	// secret: the task can read it.
	Tag string
	// User, when set, runs the command as that uid and gid, without
	// supplementary groups; the caller must be root. The program is looked
	// up and checked as that user. Once the command has exited every
	// process running as User.UID is killed, so the uid must serve this
	// command alone.
	User *User
	// MemoryLimit, when positive, caps the memory of all the command's
	// processes together, in bytes: the kernel's OOM killer ends them
	// beyond it. It needs a Tag and a cgroup v2 with the memory controller
	// (CheckMemoryLimit); Run fails without.
	MemoryLimit int64
	// Namespaces runs the command, as User, under an init in new PID and
	// mount namespaces (see MaybeInit, which the program must call first
	// thing in main): the task sees only its own processes, and every
	// process it starts dies with it.
	Namespaces bool
}

// TagVar is the environment variable that carries a Command's Tag.
const TagVar = "DIST_TEST_RUN"

// Limits caps a log file: it keeps the first Head and the last Tail bytes.
// Zero means the default (8 MiB each); a negative value keeps nothing of that
// end. Run holds at most Tail bytes of memory per stream, and only once the
// command has written more than Head+Tail bytes.
type Limits struct{ Head, Tail int64 }

func (l Limits) withDefaults() Limits {
	if l.Head == 0 {
		l.Head = DefaultHead
	}
	if l.Tail == 0 {
		l.Tail = DefaultTail
	}
	l.Head = max(l.Head, 0)
	l.Tail = max(l.Tail, 0)
	return l
}

// Result tells how a command ended.
type Result struct {
	// ExitCode is the exit status, or -N when signal N ended the command.
	ExitCode int
	// TimedOut is true when Run signalled the command because it outlived
	// its Timeout, whatever signal (or exit) finally ended it.
	TimedOut bool
	// Canceled is true when ctx ended before the command did.
	Canceled bool
	// Duration runs from the start of the command to its exit.
	Duration time.Duration
	// StdoutBytes and StderrBytes count what the command wrote, before the
	// log files were capped.
	StdoutBytes, StderrBytes int64
	// CPUTime (user and system) and PeakMemory of all the command's
	// processes, when it ran in a cgroup of its own (a Tag, and a
	// writable cgroup v2); PeakMemory needs the memory controller too.
	// Zero when unknown.
	CPUTime    time.Duration
	PeakMemory int64
}
