package process

import (
	"context"
	"errors"
	"github.com/dist-test/dist_test/internal/testenv"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// doubleFork is a task that leaves a daemon the classic way: fork, setsid
// in the child, fork again, and the middle process exits, so that the
// daemon is orphaned and outside the task's session and group. env -i
// clears its environment as well when clearEnv. The task waits until the
// daemon has been re-parented and writes its pid and its new parent's.
func doubleFork(t *testing.T, clearEnv bool) Command {
	env := ""
	if clearEnv {
		env = "env -i PATH=$PATH "
	}
	return shell(t, `sh -c 'echo $$ > middle.pid; setsid `+env+`sh -c "echo \$\$ > daemon.pid; exec sleep 1000" </dev/null >/dev/null 2>&1 &' &
		while [ ! -s daemon.pid ] || [ ! -s middle.pid ]; do sleep 0.01; done
		d=$(cat daemon.pid) m=$(cat middle.pid)
		# The middle process has exited once the daemon has a new parent.
		while :; do
			p=$(sed 's/.*) //' /proc/$d/stat | cut -d' ' -f2)
			[ "$p" != "$m" ] && break
			sleep 0.01
		done
		echo $p > parent.pid
		echo started`)
}

// gone waits until pid has no process left, not even a zombie: it was
// killed and reaped.
func gone(pid int) bool {
	for range 200 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// withoutCgroups runs the test as on a host without a writable cgroup v2.
func withoutCgroups(t testing.TB) {
	cgroupRoot()
	was := cgroups.off.Swap(true)
	t.Cleanup(func() { cgroups.off.Store(was) })
}

// The slave is the child subreaper: a daemon that double-forked out of the
// task is re-parented to it, and killed and reaped by pid.
func TestRunKillsDoubleForkedDaemonThroughSubreaper(t *testing.T) {
	withoutCgroups(t)
	c := doubleFork(t, false)
	c.Tag = "sub-" + strconv.Itoa(os.Getpid())
	res := run(t, t.Context(), c)
	daemon := readPid(t, filepath.Join(c.Dir, "daemon.pid"))
	t.Cleanup(func() { unix.Kill(daemon, unix.SIGKILL) })
	if res.ExitCode != 0 || readFile(t, c.Stdout) != "started\n" {
		t.Fatalf("got %+v, stdout %q, stderr %q", res, readFile(t, c.Stdout), readFile(t, c.Stderr))
	}
	if parent := readPid(t, filepath.Join(c.Dir, "parent.pid")); parent != os.Getpid() {
		t.Errorf("the daemon was re-parented to %d, not to this process %d", parent, os.Getpid())
	}
	if !gone(daemon) {
		t.Errorf("the double-forked daemon %d outlived the task (or was left a zombie)", daemon)
	}
	if res.CPUTime != 0 {
		t.Errorf("CPU time %s without a cgroup", res.CPUTime)
	}
}

// A daemon of another task, still running, is not killed by the end of
// this one.
func TestRunSparesOtherTasksDaemons(t *testing.T) {
	withoutCgroups(t)
	other := doubleFork(t, false)
	other.Tag = "other-" + strconv.Itoa(os.Getpid())
	// Started by hand, as a task that runs on: its daemon is its own.
	other.Args = []string{"sh", "-c", other.Args[2] + "\nsleep 1000"}
	otherCtx, stop := context.WithCancel(t.Context())
	otherDone := make(chan Result, 1)
	go func() { res, _ := Run(otherCtx, other); otherDone <- res }()
	readPid(t, filepath.Join(other.Dir, "parent.pid")) // re-parented already
	daemon := readPid(t, filepath.Join(other.Dir, "daemon.pid"))
	t.Cleanup(func() { unix.Kill(daemon, unix.SIGKILL) })

	c := doubleFork(t, false)
	c.Tag = "mine-" + strconv.Itoa(os.Getpid())
	run(t, t.Context(), c)
	mine := readPid(t, filepath.Join(c.Dir, "daemon.pid"))
	if !gone(mine) {
		t.Errorf("this task's daemon %d outlived it", mine)
	}
	if unix.Kill(daemon, 0) != nil {
		t.Errorf("the daemon %d of a task still running was killed", daemon)
	}
	stop()
	<-otherDone
	if !gone(daemon) {
		t.Errorf("the other task's daemon %d outlived it", daemon)
	}
}

// With a writable cgroup v2, the task runs in a cgroup of its own: a
// daemon that left the group and cleared its environment is killed all
// the same, and the task's CPU time is measured.
func TestRunKillsDaemonThroughCgroup(t *testing.T) {
	root, err := cgroupRoot()
	if err != nil {
		t.Skipf("no writable cgroup v2 here: %v", err)
	}
	c := doubleFork(t, true)
	c.Args[2] += "\ni=0; while [ $i -lt 20000 ]; do i=$((i+1)); done"
	c.Tag = "cg-" + strconv.Itoa(os.Getpid())
	res := run(t, t.Context(), c)
	daemon := readPid(t, filepath.Join(c.Dir, "daemon.pid"))
	t.Cleanup(func() { unix.Kill(daemon, unix.SIGKILL) })
	if res.ExitCode != 0 {
		t.Fatalf("got %+v, stderr %q", res, readFile(t, c.Stderr))
	}
	if !gone(daemon) {
		t.Errorf("the daemon %d with a cleared environment outlived the task", daemon)
	}
	if res.CPUTime <= 0 {
		t.Errorf("CPU time %s: not measured", res.CPUTime)
	}
	if _, err := os.Stat(filepath.Join(root, "run-"+c.Tag)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the task's cgroup is left: %v", err)
	}
}

// BenchmarkRunSubreaper is BenchmarkRun/tagged on a host without a
// writable cgroup v2: the slave finds leftovers among its own children.
func BenchmarkRunSubreaper(b *testing.B) {
	withoutCgroups(b)
	dir := b.TempDir()
	c := Command{Args: []string{"/bin/true"}, Dir: dir,
		Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr")}
	cpu := testenv.CPUTimeWithChildren()
	for i := range b.N {
		c.Tag = "bench-" + strconv.Itoa(i)
		if _, err := Run(b.Context(), c); err != nil {
			b.Fatal(err)
		}
	}
	testenv.ReportChildCPU(b, cpu)
}

// A memory limit is enforced in the command's cgroup where the memory
// controller can be had, and refused where it cannot: never ignored.
func TestRunMemoryLimit(t *testing.T) {
	c := shell(t, `touch ran; x=$(head -c 200000000 /dev/zero | tr '\0' a); echo survived`)
	c.Tag = "mem-" + strconv.Itoa(os.Getpid())
	c.MemoryLimit = 32 << 20
	res, err := Run(t.Context(), c)
	if cerr := CheckMemoryLimit(); cerr != nil {
		if err == nil || !strings.Contains(err.Error(), "memory") {
			t.Errorf("Run = %+v, %v; want an error about the memory limit (%v)", res, err, cerr)
		}
		if _, serr := os.Stat(filepath.Join(c.Dir, "ran")); serr == nil {
			t.Error("the command ran without its memory limit")
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if out := readFile(t, c.Stdout); strings.Contains(out, "survived") || res.PeakMemory <= 0 || res.PeakMemory > 40<<20 {
		t.Errorf("got %+v, stdout %q; want the command killed at 32 MiB", res, out)
	}
}
