package slave

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/slave/artifacts"
	"github.com/dist-test/dist_test/slave/process"
	"github.com/dist-test/dist_test/slave/taskuser"
)

// outcome is how a run left its slot.
type outcome int

const (
	reported  outcome = iota // the master has the result
	dropped                  // the master no longer counts this run
	abandoned                // the slave is shutting down; the run was given back
	pending                  // the result waits in the spool for the master
	requeued                 // could not run here; the entry went back for another slave
)

// attempt is one run's files: the sandbox the task sees, and beside it
// what the slave keeps out of the task's reach.
type attempt struct {
	dir     string // holds everything below; removed at the end
	sandbox string // the inputs and the task's own files
	tmp     string // TEST_TMPDIR, TMPDIR and HOME, inside the sandbox
	stdout  string
	stderr  string
	zip     string
	user    *taskuser.User // the task's, or nil: the slave's own
	pull    time.Duration  // making the task's container image present
}

// newAttempt makes an attempt's folder in root, with a sandbox that u, the
// task's user, owns and alone may enter.
func newAttempt(root string, u *taskuser.User) (*attempt, error) {
	dir, err := os.MkdirTemp(root, "task-")
	if err != nil {
		return nil, fmt.Errorf("making a sandbox: %w", err)
	}
	a := &attempt{dir: dir, sandbox: filepath.Join(dir, "sandbox"), user: u,
		stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"), zip: filepath.Join(dir, "artifacts.zip")}
	a.tmp = filepath.Join(a.sandbox, "test-tmp")
	if err := os.Mkdir(a.sandbox, 0o700); err != nil {
		return a, fmt.Errorf("making a sandbox: %w", err)
	}
	if u != nil {
		// The task's user passes through to its sandbox; the logs beside
		// it stay the slave's.
		if err := os.Chmod(dir, 0o711); err != nil {
			return a, fmt.Errorf("making a sandbox: %w", err)
		}
		if err := os.Chown(a.sandbox, int(u.UID), int(u.GID)); err != nil {
			return a, fmt.Errorf("making a sandbox: %w", err)
		}
	}
	return a, nil
}

// placement is whom the inputs are laid out for.
func (a *attempt) placement() Placement {
	if a.user == nil {
		return Placement{Copy: true}
	}
	return Placement{Owner: &a.user.User}
}

// userOf is the user of slot n, nil when tasks run as the slave's user.
func (s *Slave) userOf(slot int) *taskuser.User {
	if slot < len(s.cfg.Users) {
		return &s.cfg.Users[slot]
	}
	return nil
}

// infraError: the task could not be run at all, through no fault of its own.
type infraError struct{ err error }

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

// execute runs one started attempt and spools its result. When there is
// a result to send it returns deliver, which sends it and tells the
// outcome: the slot may run its next task meanwhile. Otherwise it returns
// the outcome.
func (s *Slave) execute(ctx context.Context, c queue.Consumer, entry uint64, slot int, st protocol.Started) (o outcome, deliver func() outcome) {
	spec := st.Spec
	log := s.log.With("job", spec.JobID, "task", spec.TaskID, "attempt", spec.Attempt, "slot", slot)
	runCtx, cancel := context.WithCancel(ctx)
	r := s.add(st.Lease, cancel)
	var tree Tree
	a, err := newAttempt(s.sandboxes, s.userOf(slot))
	if err == nil {
		s.follow(r, a.stdout, a.stderr)
	}
	// done ends the run, once its result is delivered (or there is none).
	done := func() {
		cancel()
		s.remove(st.Lease)
		if a == nil {
			return
		}
		if !s.cfg.KeepSandboxes {
			s.remover.discard(a.dir, tree.Release, log)
		} else if tree.Release != nil {
			tree.Release()
		}
	}
	later := func(d delivery) func() outcome {
		return func() outcome {
			defer done()
			return s.deliver(ctx, c, entry, r, d, log)
		}
	}
	if err != nil {
		f := protocol.Finish{ExitCode: -1, Infra: true, Error: err.Error()}
		s.cfg.Metrics.Ran(f.ExitCode, false, true, model.Inputs{})
		return 0, later(delivery{lease: st.Lease, finish: f})
	}
	var res process.Result
	var runErr error
	s.whileTouching(ctx, c, entry, func() {
		tree, res, runErr = s.runTask(runCtx, a, spec)
	})
	if s.isDropped(r) {
		log.Info("run stopped at the master's word; not reporting it")
		done()
		return dropped, nil
	}
	if ctx.Err() != nil {
		s.abort(st.Lease, "the slave shut down", log)
		done()
		return abandoned, nil
	}
	f := protocol.Finish{ExitCode: res.ExitCode, TimedOut: res.TimedOut, DurationMS: res.Duration.Milliseconds(),
		Inputs: protocol.InputsFrom(tree.Inputs), CPUMS: res.CPUTime.Milliseconds(), PeakMemoryBytes: res.PeakMemory,
		PullMS: a.pull.Milliseconds()}
	if runErr != nil {
		// The task could not run at all: say why, where users look first.
		var infra infraError
		f.ExitCode, f.Error, f.Infra = -1, runErr.Error(), errors.As(runErr, &infra)
		log.Warn("task could not run", "err", runErr, "infrastructure", f.Infra)
		writeNote(a.stderr, runErr)
	} else if res.TimedOut {
		// As the original dist_test's slave did: a timed-out test always
		// has a stderr log that says so, even when it printed nothing.
		appendLog(a.stderr, timeoutNote(spec.TimeoutMS))
	}
	s.cfg.Metrics.Ran(f.ExitCode, f.TimedOut, f.Infra, tree.Inputs)
	d := delivery{lease: st.Lease, finish: f, files: map[string]string{}}
	s.whileTouching(ctx, c, entry, func() { s.collectOutputs(ctx, a, spec, &d, log) })
	if err := s.spool.save(report{Lease: d.lease, Finish: d.finish}, d.files); err != nil {
		// The result is still sent, from the attempt's folder; it just
		// would not survive a restart.
		log.Error("could not spool the result", "err", err)
		return 0, later(d)
	}
	for name := range d.files {
		d.files[name] = s.spool.path(d.lease, name)
	}
	d.spooled = true
	if !s.cfg.KeepSandboxes {
		// The outputs are in the spool: the sandbox can go now.
		s.remover.discard(a.dir, tree.Release, log)
		a = nil
	}
	return 0, later(d)
}

// runTask fetches the inputs and runs the command. Failing to place the
// inputs is an infraError, unless the inputs themselves are invalid; a
// command that cannot start is the task's own failure.
func (s *Slave) runTask(ctx context.Context, a *attempt, spec protocol.Spec) (Tree, process.Result, error) {
	if spec.DockerImage != "" {
		// Before the inputs: a slave that cannot run the image should
		// not fetch them for nothing.
		start := time.Now()
		err := s.prepareImage(ctx, spec.DockerImage)
		a.pull = time.Since(start)
		if err != nil {
			return Tree{}, process.Result{}, err
		}
	}
	tree, err := s.inputs.Fetch(ctx, spec.IsolateHash, a.sandbox, a.placement())
	s.noteInputs(tree.Inputs)
	if errors.Is(err, ErrInvalidInputs) {
		return tree, process.Result{}, fmt.Errorf("inputs %s: %w", spec.IsolateHash, err)
	}
	if err != nil {
		return tree, process.Result{}, infraError{fmt.Errorf("fetching inputs %s: %w", spec.IsolateHash, err)}
	}
	if len(tree.Command) == 0 {
		return tree, process.Result{}, fmt.Errorf("inputs %s name no command to run", spec.IsolateHash)
	}
	if err := a.makeTmp(); err != nil {
		return tree, process.Result{}, infraError{fmt.Errorf("making TEST_TMPDIR: %w", err)}
	}
	cmd := process.Command{
		Args: tree.Command, Dir: filepath.Join(a.sandbox, filepath.FromSlash(tree.RelativeCwd)), Env: s.environment(a, spec),
		Timeout: time.Duration(spec.TimeoutMS) * time.Millisecond, KillGrace: s.cfg.KillGrace,
		Stdout: a.stdout, Stderr: a.stderr, LogLimits: s.cfg.LogLimits, Tag: newRunID(), MemoryLimit: s.cfg.MemoryLimit,
	}
	if a.user != nil {
		cmd.User, cmd.Namespaces = &a.user.User, s.cfg.Namespaces
	}
	var res process.Result
	if spec.DockerImage != "" {
		res, err = s.runContainer(ctx, a, spec.DockerImage, s.containerEnvironment(a, spec), tree, cmd)
	} else {
		res, err = s.runCommand(ctx, cmd)
	}
	if err != nil && res.Canceled {
		return tree, res, nil // a killed run is judged by the caller
	}
	return tree, res, err
}

// makeTmp makes TEST_TMPDIR, the task's user's, unless the inputs have it.
func (a *attempt) makeTmp() error {
	if err := os.Mkdir(a.tmp, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if a.user != nil {
		return os.Lchown(a.tmp, int(a.user.UID), int(a.user.GID))
	}
	return nil
}

// environment is a task's whole environment, built from an allowlist: the
// slave's PATH and LANG, HOME and the temporary folders inside the
// sandbox, the user's name, the operator's additions ([slave] task_env),
// and the task's identifiers. Nothing else of the slave's environment
// (credentials, the lease) reaches the task.
func (s *Slave) environment(a *attempt, spec protocol.Spec) []string {
	hostPath := s.cfg.Getenv("PATH")
	if hostPath == "" {
		hostPath = "/usr/local/bin:/usr/bin:/bin"
	}
	return append([]string{"PATH=" + hostPath}, s.taskEnv(a.tmp, a.user, spec)...)
}

// containerEnvironment is the environment of a task in a container: as on
// the host, with the sandbox's folders where the container sees them, and
// without the slave's PATH, which is the image's business.
func (s *Slave) containerEnvironment(a *attempt, spec protocol.Spec) []string {
	return s.taskEnv(path.Join(IsolateDir, filepath.Base(a.tmp)), a.user, spec)
}

// taskEnv is a task's environment but PATH, with tmp as its temporary
// folders and u (nil: the slave's) as its user.
func (s *Slave) taskEnv(tmp string, u *taskuser.User, spec protocol.Spec) []string {
	env := []string{"HOME=" + tmp, "TMPDIR=" + tmp, "TEST_TMPDIR=" + tmp}
	if lang := s.cfg.Getenv("LANG"); lang != "" {
		env = append(env, "LANG="+lang)
	}
	if u != nil {
		env = append(env, "USER="+u.Name, "LOGNAME="+u.Name)
	} else if name := s.cfg.Getenv("USER"); name != "" {
		env = append(env, "USER="+name, "LOGNAME="+name)
	}
	env = append(env, s.cfg.TaskEnv...)
	return append(env,
		"DIST_TEST_JOB_ID="+spec.JobID,
		"DIST_TEST_TASK_ID="+spec.TaskID,
		"DIST_TEST_ATTEMPT="+strconv.Itoa(spec.Attempt),
	)
}

// newRunID names a run among the processes of the host (process.TagVar).
// It is not a secret, unlike the lease: the task sees it.
func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// writeNote puts why a task could not run into its stderr log.
func writeNote(path string, err error) {
	appendLog(path, fmt.Sprintf("\n[dist_test] the task could not run: %v\n", err))
}

// timeoutNote is the line the original dist_test's slave added to the
// stderr of a task it killed for its timeout; users and their scripts
// look for it. A timeout in a whole number of seconds is written as one.
func timeoutNote(timeoutMS int64) string {
	secs := strconv.FormatFloat(float64(timeoutMS)/1000, 'f', -1, 64)
	return "\n------\nKilling task after " + secs + " seconds\n"
}

// appendLog adds text at the end of a log file, after the task's own
// output. The log is the slave's, so the task cannot have swapped it for a
// link; a failure only loses the note.
func appendLog(path, text string) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return
	}
	defer f.Close()
	_, _ = f.WriteString(text)
}

// collectOutputs picks what the master keeps: the logs of a run that did
// not pass (of every run with KeepPassedLogs), and the artifacts of any run.
func (s *Slave) collectOutputs(ctx context.Context, a *attempt, spec protocol.Spec, d *delivery, log *slog.Logger) {
	keep := func(name, path string) {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			d.files[name] = path
		}
	}
	if d.finish.ExitCode != 0 || d.finish.TimedOut || s.cfg.KeepPassedLogs {
		keep(protocol.OutputStdout, a.stdout)
		keep(protocol.OutputStderr, a.stderr)
	}
	if len(spec.ArtifactGlobs) == 0 {
		return
	}
	if err := s.zipArtifacts(ctx, a, spec.ArtifactGlobs); err != nil {
		log.Warn("collecting artifacts failed", "err", err)
		d.finish.Missing = append(d.finish.Missing, protocol.OutputArtifacts)
		return
	}
	keep(protocol.OutputArtifacts, a.zip)
}

func (s *Slave) zipArtifacts(ctx context.Context, a *attempt, globs []string) error {
	f, err := os.OpenFile(a.zip, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	sum, err := artifacts.Zip(ctx, a.sandbox, globs, f, artifacts.Options{MaxBytes: s.cfg.MaxArtifactBytes})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || sum.Files == 0 {
		os.Remove(a.zip)
	}
	return err
}

// abort tells the master that this slave gives a run back unfinished.
func (s *Slave) abort(lease, why string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.master.Abort(ctx, lease, why); err != nil {
		log.Warn("could not tell the master the run was aborted; deregistering will", "err", err)
	}
}
