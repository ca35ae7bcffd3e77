package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// What a task leaves behind is found through the kernel rather than by
// reading the environment of every process on the host:
//
//   - where cgroup v2 is writable, each tagged command runs in a cgroup of
//     its own, and cgroup.kill ends every process in it, setsid or not;
//   - with a User, every process of that uid is killed (KillUser);
//   - otherwise this process is the child subreaper of its tasks: a
//     process whose parent dies is re-parented to the slave instead of the
//     host's init, so a daemon that left the task's process group is among
//     the slave's own children, found by the tag in its environment.
//
// Only when the kernel refuses to make the slave a subreaper does Run read
// the environment of every process of the host.
//
// A subreaper must reap its orphans. The slave reaps only those it knows
// to be its tasks' (by their tag, their uid or their cgroup), never a
// child that another part of the process started and will wait for: an
// orphan that cleared its environment, on a host with neither cgroups nor
// task users, is left to run, and once it ends, a zombie until the slave
// exits.

// kids is the state of this process as the subreaper of its tasks.
var kids struct {
	once sync.Once
	ok   bool   // a subreaper, whose children can be listed
	file string // lists the children of the main thread, to which orphans go

	// starting is read-locked while a command starts and is registered,
	// write-locked while orphans are reaped: a command between fork and
	// registration is never taken for an orphan.
	starting sync.RWMutex
	mu       sync.Mutex
	owned    map[int]bool // commands of Run, reaped by their exec.Cmd
	orphans  map[int]bool // task processes re-parented to this one, to reap
}

// subreaper makes this process the child subreaper of its tasks, once, and
// tells whether it is one.
func subreaper() bool {
	kids.once.Do(func() {
		kids.owned, kids.orphans = map[int]bool{}, map[int]bool{}
		// Orphans go to the first live thread of the subreaper: the main
		// thread, which this package keeps alive (see init).
		kids.file = fmt.Sprintf("/proc/%d/task/%d/children", os.Getpid(), os.Getpid())
		if _, err := os.ReadFile(kids.file); err != nil {
			return // a kernel without CONFIG_PROC_CHILDREN
		}
		kids.ok = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == nil
	})
	return kids.ok
}

// start starts cmd through startNoNewPrivs and registers it as Run's.
func startOwned(start func() error, pid func() int) error {
	subreaper()
	kids.starting.RLock()
	defer kids.starting.RUnlock()
	if err := start(); err != nil {
		return err
	}
	kids.mu.Lock()
	kids.owned[pid()] = true
	kids.mu.Unlock()
	return nil
}

// waited forgets a command of Run once its exec.Cmd has reaped it.
func waited(pid int) {
	kids.mu.Lock()
	delete(kids.owned, pid)
	kids.mu.Unlock()
}

// orphanSet lists the children of this process that Run did not start:
// orphans of tasks, and whatever else of this process is running.
func orphanSet() []int {
	b, err := os.ReadFile(kids.file)
	if err != nil {
		return nil
	}
	kids.mu.Lock()
	defer kids.mu.Unlock()
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if pid, err := strconv.Atoi(f); err == nil && !kids.owned[pid] {
			out = append(out, pid)
		}
	}
	return out
}

// killTagged kills the processes that carry tag in their environment and
// left the task's process group: among the subreaper's children, or,
// when this process cannot be one, among all the host's processes.
// Processes may change their environment, so this is a safety net behind
// the group kill, not a guarantee. It also reaps the orphans of earlier
// tasks that have ended since.
func killTagged(tag string) {
	needle := []byte("\x00" + TagVar + "=" + tag + "\x00")
	if !subreaper() {
		killTaggedHost(needle)
		return
	}
	any := []byte("\x00" + TagVar + "=")
	kids.starting.Lock()
	defer kids.starting.Unlock()
	// Rounds: a killed daemon's children are re-parented to this process
	// once it has died, and reaped.
	for range 16 {
		var killed []int
		for _, pid := range orphanSet() {
			env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
			if err != nil || len(env) == 0 {
				continue // a zombie: reaped below if it was a task's
			}
			env = append(append([]byte{0}, env...), 0)
			if !bytes.Contains(env, any) {
				continue // not a task's: never reaped here
			}
			kids.orphans[pid] = true
			if bytes.Contains(env, needle) {
				_ = unix.Kill(pid, unix.SIGKILL)
				killed = append(killed, pid)
			}
		}
		for _, pid := range killed {
			reap(pid, true)
		}
		if len(killed) == 0 {
			break
		}
	}
	reapOrphans()
}

// reapOrphans reaps the task processes re-parented to this process that
// have ended. The caller holds kids.starting.
func reapOrphans() {
	for pid := range kids.orphans {
		reap(pid, false)
	}
}

// reap waits for the orphan pid, blocking only when it was just killed.
func reap(pid int, block bool) {
	opts := unix.WNOHANG
	if block {
		opts = 0
	}
	for {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, opts, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil || got == pid:
			delete(kids.orphans, pid) // reaped, or not a child of this process
		}
		return
	}
}

// killTaggedHost is killTagged for a process that cannot be a subreaper: it
// reads the environment of every process of the host. A few rounds catch
// children forked while their parents were being killed.
func killTaggedHost(needle []byte) {
	for round := 0; round < 3; round++ {
		found := false
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil || !bytes.Contains(append(append([]byte{0}, env...), 0), needle) {
				continue
			}
			_ = unix.Kill(pid, unix.SIGKILL)
			found = true
		}
		if !found {
			return
		}
	}
}

// reapUser reaps the orphans of uid, which KillUser has just killed.
func reapUser(uid uint32) {
	if !subreaper() {
		return
	}
	kids.starting.Lock()
	defer kids.starting.Unlock()
	for _, pid := range orphanSet() {
		var st unix.Stat_t
		if unix.Stat("/proc/"+strconv.Itoa(pid), &st) == nil && st.Uid == uid {
			kids.orphans[pid] = true
		}
	}
	reapOrphans()
}

var errNoCgroup = errors.New("no writable cgroup v2")

// cgroups is the cgroup v2 folder of this process's task cgroups, made
// once; "" when there is none to write.
var cgroups struct {
	once sync.Once
	dir  string
	err  error
	off  atomic.Bool // the kernel refused to start a command into one
}

// cgroupRoot returns the folder under which each task gets a cgroup: a
// child of this process's own cgroup, named after this process.
func cgroupRoot() (string, error) {
	cgroups.once.Do(func() {
		cgroups.dir, cgroups.err = makeCgroupRoot()
	})
	return cgroups.dir, cgroups.err
}

func makeCgroupRoot() (string, error) {
	mnt, err := cgroup2Mount()
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", err
	}
	var own string
	for _, line := range strings.Split(string(b), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			own = p
		}
	}
	if own == "" {
		return "", errNoCgroup
	}
	parent := filepath.Join(mnt, filepath.Clean("/"+own))
	clearCgroups(parent)
	dir := filepath.Join(parent, "dist_test-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("%w: %v", errNoCgroup, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "cgroup.kill")); err != nil {
		os.Remove(dir)
		return "", fmt.Errorf("%w: no cgroup.kill (Linux 5.14 or later)", errNoCgroup)
	}
	return dir, nil
}

// clearCgroups removes the cgroups that slaves which ended without
// removing them (killed) left in parent, once empty: rmdir refuses a
// cgroup with processes. Those of live processes are theirs.
func clearCgroups(parent string) {
	olds, _ := filepath.Glob(filepath.Join(parent, "dist_test-*"))
	for _, old := range olds {
		pid, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(old), "dist_test-"))
		if err != nil || unix.Kill(pid, 0) != unix.ESRCH {
			continue
		}
		runs, _ := filepath.Glob(filepath.Join(old, "run-*"))
		for _, r := range runs {
			_ = unix.Rmdir(r)
		}
		_ = unix.Rmdir(old)
	}
}

// cgroup2Mount finds where the cgroup v2 hierarchy is mounted.
func cgroup2Mount() (string, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS... - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if ok && len(f) >= 5 && len(g) >= 1 && g[0] == "cgroup2" && f[3] == "/" {
			return f[4], nil
		}
	}
	return "", errNoCgroup
}

// taskCgroup is the cgroup of one command.
type taskCgroup struct {
	dir string
	fd  int
}

// newTaskCgroup makes the cgroup of a command, or returns nil when there is
// no cgroup v2 to write: the caller falls back to the subreaper.
func newTaskCgroup(tag string) *taskCgroup {
	root, err := cgroupRoot()
	if err != nil || cgroups.off.Load() {
		return nil
	}
	dir := filepath.Join(root, "run-"+tag)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		os.Remove(dir)
		return nil
	}
	return &taskCgroup{dir: dir, fd: fd}
}

// CheckMemoryLimit tells whether Run can enforce Command.MemoryLimit: a
// writable cgroup v2 whose memory controller this process may hand to its
// tasks' cgroups.
func CheckMemoryLimit() error {
	root, err := cgroupRoot()
	if err != nil {
		return err
	}
	if cgroups.off.Load() {
		return errNoCgroup
	}
	memory.once.Do(func() {
		// The tasks' cgroups get the controller from their parent.
		err := os.WriteFile(filepath.Join(root, "cgroup.subtree_control"), []byte("+memory"), 0)
		if err != nil {
			have, _ := os.ReadFile(filepath.Join(root, "cgroup.controllers"))
			memory.err = fmt.Errorf("the memory controller is not available to cgroup %s (it has %q): %w",
				root, strings.TrimSpace(string(have)), err)
		}
	})
	return memory.err
}

// memory is the outcome of enabling the memory controller, once.
var memory struct {
	once sync.Once
	err  error
}

// limitMemory sets the cgroup's memory.max.
func (cg *taskCgroup) limitMemory(n int64) error {
	if err := CheckMemoryLimit(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(cg.dir, "memory.max"), []byte(strconv.FormatInt(n, 10)), 0)
}

// noCgroups stops putting commands in cgroups: the kernel refuses.
func noCgroups() { cgroups.off.Store(true) }

// remove removes the cgroup of a command that did not start.
func (cg *taskCgroup) remove() {
	unix.Close(cg.fd)
	_ = unix.Rmdir(cg.dir)
}

// kill ends every process in the cgroup, reaps those re-parented to this
// process, records what the command used and removes the cgroup.
func (cg *taskCgroup) kill(res *Result) {
	defer unix.Close(cg.fd)
	procs, _ := os.ReadFile(filepath.Join(cg.dir, "cgroup.procs"))
	_ = os.WriteFile(filepath.Join(cg.dir, "cgroup.kill"), []byte("1"), 0)
	// The kill is done when the cgroup is empty; its processes may wait to
	// be reaped by their parents meanwhile.
	for range 200 {
		if ev, err := os.ReadFile(filepath.Join(cg.dir, "cgroup.events")); err != nil || bytes.Contains(ev, []byte("populated 0")) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.CPUTime, res.PeakMemory = cgroupUsage(cg.dir)
	if subreaper() && len(procs) > 0 {
		kids.starting.Lock()
		kids.mu.Lock()
		for _, f := range strings.Fields(string(procs)) {
			if pid, err := strconv.Atoi(f); err == nil && !kids.owned[pid] {
				kids.orphans[pid] = true
			}
		}
		kids.mu.Unlock()
		reapOrphans()
		kids.starting.Unlock()
	}
	// The cgroup may be removed once its last process has been reaped.
	for range 200 {
		if err := unix.Rmdir(cg.dir); err != unix.EBUSY {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// cgroupUsage reads the CPU time (user and system) of a cgroup and, when
// the memory controller is on, its peak memory.
func cgroupUsage(dir string) (cpu time.Duration, peak int64) {
	if b, err := os.ReadFile(filepath.Join(dir, "cpu.stat")); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
				us, _ := strconv.ParseInt(v, 10, 64)
				cpu = time.Duration(us) * time.Microsecond
			}
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "memory.peak")); err == nil {
		peak, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	}
	return cpu, peak
}
