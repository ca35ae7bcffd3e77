package process

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Run runs c in a new process group and waits until it has ended and its
// output is in the log files.
//
// On Timeout, or when ctx ends first, the whole group gets SIGTERM, then
// SIGKILL after KillGrace if the command is still alive. Once the command
// has exited, whatever is left in its group gets SIGKILL, so nothing the task
// forked outlives it. A process that left the group and holds the log pipes
// open delays Run by at most two seconds; its later output is lost.
//
// A non-zero exit is not an error. Run returns an error when the command
// cannot start (not found: exec.ErrNotFound or fs.ErrNotExist; not
// executable: fs.ErrPermission), with a message that names what is missing
// (the working folder, the program, its execute bit or the interpreter of
// its #! line), and when writing a log file fails; in the
// latter case the Result still tells how the command ended.
func Run(ctx context.Context, c Command) (Result, error) {
	if len(c.Args) == 0 {
		return Result{}, errors.New("no command to run: empty argument list")
	}
	if err := ctx.Err(); err != nil {
		return Result{Canceled: true}, fmt.Errorf("command not started: %w", err)
	}
	if c.Namespaces && c.User == nil {
		return Result{}, errors.New("namespaces need a user to run the command as")
	}
	path, err := c.program()
	if err != nil {
		return Result{}, err
	}
	grace := c.KillGrace
	if grace <= 0 {
		grace = DefaultKillGrace
	}
	streams, err := openStreams(c)
	if err != nil {
		return Result{}, err
	}
	env := c.Env
	if c.Tag != "" {
		if env == nil {
			env = os.Environ()
		}
		env = append(env[:len(env):len(env)], TagVar+"="+c.Tag)
	}
	var status *os.File // the init's answer, with Namespaces
	var extra []*os.File
	if c.Namespaces {
		r, w, err := os.Pipe()
		if err != nil {
			closeStreams(streams)
			return Result{}, fmt.Errorf("start task command: %w", err)
		}
		status = r
		defer r.Close()
		extra = []*os.File{w}
	}
	// newCmd makes the command, started into the cgroup cg unless nil.
	newCmd := func(cg *taskCgroup) *exec.Cmd {
		cmd := &exec.Cmd{
			Path:        path,
			Args:        c.Args,
			Dir:         c.Dir,
			Env:         env,
			Stdout:      streams[0].w,
			Stderr:      streams[len(streams)-1].w,
			SysProcAttr: &syscall.SysProcAttr{Setpgid: true},
		}
		if c.User != nil {
			cmd.SysProcAttr.Credential = &syscall.Credential{Uid: c.User.UID, Gid: c.User.GID, Groups: []uint32{}}
		}
		if c.Namespaces {
			cmd.Path, cmd.Args, cmd.ExtraFiles = "/proc/self/exe", initArgs(*c.User, path, c.Args), extra
			// The init is root in its namespaces; it starts the command as
			// the user.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Cloneflags: namespaceFlags}
		}
		if cg != nil {
			cmd.SysProcAttr.UseCgroupFD, cmd.SysProcAttr.CgroupFD = true, cg.fd
		}
		return cmd
	}
	var cg *taskCgroup
	if c.Tag != "" {
		cg = newTaskCgroup(c.Tag)
	}
	if c.MemoryLimit > 0 {
		err := CheckMemoryLimit()
		switch {
		case err == nil && cg == nil:
			err = errors.New("the command has no cgroup (it needs a Tag)")
		case err == nil:
			err = cg.limitMemory(c.MemoryLimit)
		}
		if err != nil {
			if cg != nil {
				cg.remove()
			}
			closeStreams(streams)
			return Result{}, fmt.Errorf("limit the task's memory: %w", err)
		}
	}
	start := time.Now()
	cmd := newCmd(cg)
	err = startOwned(func() error { return startNoNewPrivs(cmd) }, func() int { return cmd.Process.Pid })
	if err != nil && cg != nil && c.MemoryLimit <= 0 {
		// The kernel may refuse to start a process into a cgroup (clone3
		// filtered out): if it starts without, this host has the
		// subreaper alone. Not a command with a memory limit, which only
		// its cgroup enforces.
		cmd = newCmd(nil)
		if err = startOwned(func() error { return startNoNewPrivs(cmd) }, func() int { return cmd.Process.Pid }); err == nil {
			noCgroups()
		}
		cg.remove()
		cg = nil
	}
	for _, s := range streams {
		s.w.Close() // the child holds its own copies
	}
	for _, f := range extra {
		f.Close()
	}
	if err != nil {
		if cg != nil {
			cg.remove()
		}
		closeStreams(streams)
		return Result{}, fmt.Errorf("start task command: %w", err)
	}
	for _, s := range streams {
		go s.drain()
	}
	pid := cmd.Process.Pid
	var res Result
	var ready <-chan struct{} = closed
	var answer <-chan []byte
	if status != nil {
		ready, answer = watchInit(status)
	}
	res.Duration, res.TimedOut, res.Canceled = supervise(ctx, pid, start, c.Timeout, grace, ready)
	killGroup(pid, unix.SIGKILL)
	var errs []error
	switch {
	case cg != nil:
		cg.kill(&res)
	case c.User != nil:
		// The user is this command's alone: whatever still runs as it
		// was started by the task, setsid and a cleared environment
		// notwithstanding.
		if err := KillUser(*c.User); err != nil {
			errs = append(errs, err)
		}
		reapUser(c.User.UID)
	case c.Tag != "":
		killTagged(c.Tag)
	}
	if cg != nil && c.User != nil {
		// Belt and braces: the uid is the command's alone.
		if err := KillUser(*c.User); err != nil {
			errs = append(errs, err)
		}
	}
	err = cmd.Wait()
	waited(pid)
	if err != nil && cmd.ProcessState == nil {
		errs = append(errs, fmt.Errorf("wait for task command: %w", err))
	} else {
		res.ExitCode = exitCode(cmd.ProcessState)
	}
	if status != nil {
		ws, ok, err := initResult(bytes.NewReader(<-answer))
		switch {
		case err != nil:
			closeStreams(streams)
			return Result{}, fmt.Errorf("start task command: %w", err)
		case ok:
			res.ExitCode = waitCode(ws)
		}
	}
	waitStreams(streams)
	for _, s := range streams {
		if err := s.out.finish(); err != nil {
			errs = append(errs, err)
		}
	}
	res.StdoutBytes = streams[0].out.n
	if len(streams) > 1 {
		res.StderrBytes = streams[1].out.n
	}
	return res, errors.Join(errs...)
}

// program resolves the program to run and checks that it can start, as the
// command's user when it has one: the folders and PATH entries the task
// cannot reach are not the task's.
func (c Command) program() (path string, err error) {
	check := func() error {
		if path, err = resolve(c); err == nil {
			err = checkStart(c, path)
		}
		return err
	}
	if c.User == nil {
		return path, check()
	}
	if aerr := AsUser(*c.User, check); aerr != nil {
		return "", aerr
	}
	return path, nil
}

// closeStreams gives up streams whose command did not start.
func closeStreams(streams []*stream) {
	for _, s := range streams {
		s.r.Close()
		s.out.finish()
	}
}

// supervise waits until the process pid has exited, without reaping it, so
// that its process group id cannot be reused before the group is killed. It
// signals the group on timeout and when ctx ends. SIGTERM waits for ready
// (a task's init that passes it on); the kill grace runs from the timeout.
func supervise(ctx context.Context, pid int, start time.Time, timeout, grace time.Duration, ready <-chan struct{}) (took time.Duration, timedOut, canceled bool) {
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		waitExit(pid)
	}()

	var timeoutC, killC <-chan time.Time
	if timeout > 0 {
		t := time.NewTimer(timeout)
		defer t.Stop()
		timeoutC = t.C
	}
	var killTimer *time.Timer
	var termC <-chan struct{} // a SIGTERM held back until ready
	terminate := func() {
		timeoutC = nil
		if killTimer != nil {
			return
		}
		killTimer = time.NewTimer(grace)
		killC = killTimer.C
		select {
		case <-ready:
			killGroup(pid, unix.SIGTERM)
		default:
			termC = ready
		}
	}
	done := ctx.Done()
	for {
		select {
		case <-termC:
			termC = nil
			killGroup(pid, unix.SIGTERM)
		case <-exited:
			if killTimer != nil {
				killTimer.Stop()
			}
			return time.Since(start), timedOut, canceled
		case <-timeoutC:
			timedOut = true
			terminate()
		case <-done:
			canceled = true
			done = nil
			terminate()
		case <-killC:
			killC = nil
			killGroup(pid, unix.SIGKILL)
		}
	}
}

// closed is a channel that is always ready.
var closed = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// waitExit blocks until pid has exited, leaving it to be reaped by Wait.
func waitExit(pid int) {
	for {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return // on any other error Wait reports it
		}
	}
}

// killGroup signals the process group led by pid. A group already gone is
// fine: the goal is that nothing in it runs.
func killGroup(pid int, sig unix.Signal) {
	_ = unix.Kill(-pid, sig)
}

func exitCode(ps *os.ProcessState) int {
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return ps.ExitCode()
}

// waitCode is exitCode of a raw wait status.
func waitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return -int(ws.Signal())
	}
	return ws.ExitStatus()
}

// resolve finds the program to run: relative to Dir when Args[0] contains a
// slash, else in the PATH the command will see.
func resolve(c Command) (string, error) {
	name := c.Args[0]
	if !strings.Contains(name, "/") {
		return lookPath(c, name)
	}
	if filepath.IsAbs(name) || c.Dir == "" {
		return name, nil
	}
	return filepath.Join(c.Dir, name), nil
}

// envValue returns the last value of key in env, the one exec passes on.
func envValue(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(env[i], key+"="); ok {
			return v
		}
	}
	return ""
}

// stream is one output pipe of the command and the log it feeds.
type stream struct {
	r, w *os.File
	out  *capFile
	done chan struct{} // closed when drain returns
}

// openStreams returns the stdout stream, then the stderr stream unless both
// go to the same file.
func openStreams(c Command) (streams []*stream, err error) {
	defer func() {
		if err != nil {
			for _, s := range streams {
				s.r.Close()
				s.w.Close()
				s.out.finish()
			}
		}
	}()
	limits := c.LogLimits.withDefaults()
	paths := []string{c.Stdout}
	if c.Stderr == "" || c.Stderr != c.Stdout {
		paths = append(paths, c.Stderr)
	}
	for _, p := range paths {
		out, err := createCapFile(p, limits)
		if err != nil {
			return streams, err
		}
		r, w, err := os.Pipe()
		if err != nil {
			out.finish()
			return streams, fmt.Errorf("create output pipe: %w", err)
		}
		streams = append(streams, &stream{r: r, w: w, out: out, done: make(chan struct{})})
	}
	return streams, nil
}

// drain copies the pipe into the log until end of file or until the read
// end is closed by waitStreams.
func (s *stream) drain() {
	defer close(s.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := s.r.Read(buf)
		s.out.add(buf[:n])
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrClosed) && s.out.err == nil {
				s.out.err = fmt.Errorf("read task output: %w", err)
			}
			return
		}
	}
}

// waitStreams waits for the pipes to reach end of file, at most pipeWait,
// then closes them so their drains return.
func waitStreams(streams []*stream) {
	deadline := time.NewTimer(pipeWait)
	defer deadline.Stop()
	expired := false
	for _, s := range streams {
		if !expired {
			select {
			case <-s.done:
				continue
			case <-deadline.C:
				expired = true
				for _, s := range streams {
					s.r.Close()
				}
			}
		}
		<-s.done
	}
	for _, s := range streams {
		s.r.Close()
	}
}
