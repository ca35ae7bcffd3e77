package slave

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/slave/artifacts"
	"github.com/dist-test/dist_test/slave/process"
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
	tmp     string // TEST_TMPDIR, inside the sandbox
	stdout  string
	stderr  string
	zip     string
}

func newAttempt(scratch string) (*attempt, error) {
	dir, err := os.MkdirTemp(scratch, "task-")
	if err != nil {
		return nil, fmt.Errorf("making a sandbox: %w", err)
	}
	a := &attempt{dir: dir, sandbox: filepath.Join(dir, "sandbox"),
		stdout: filepath.Join(dir, "stdout"), stderr: filepath.Join(dir, "stderr"), zip: filepath.Join(dir, "artifacts.zip")}
	a.tmp = filepath.Join(a.sandbox, "test-tmp")
	if err := os.Mkdir(a.sandbox, 0o755); err != nil {
		return nil, fmt.Errorf("making a sandbox: %w", err)
	}
	return a, nil
}

// infraError: the task could not be run at all, through no fault of its own.
type infraError struct{ err error }

func (e infraError) Error() string { return e.err.Error() }
func (e infraError) Unwrap() error { return e.err }

// execute runs one started attempt, spools its result and delivers it.
func (s *Slave) execute(ctx context.Context, c queue.Consumer, entry uint64, slot int, st protocol.Started) outcome {
	spec := st.Spec
	log := s.log.With("job", spec.JobID, "task", spec.TaskID, "attempt", spec.Attempt, "slot", slot)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := s.add(st.Lease, cancel)
	defer s.remove(st.Lease)

	a, err := newAttempt(s.cfg.ScratchDir)
	if err != nil {
		f := protocol.Finish{ExitCode: -1, Infra: true, Error: err.Error()}
		return s.deliver(ctx, c, entry, r, delivery{lease: st.Lease, finish: f}, log)
	}
	if !s.cfg.KeepSandboxes {
		defer s.cleanup(a.dir, log)
	}
	var res process.Result
	var tree Tree
	var runErr error
	s.whileTouching(ctx, c, entry, func() {
		tree, res, runErr = s.runTask(runCtx, a, spec, st.Lease)
	})
	if s.isDropped(r) {
		log.Info("run stopped at the master's word; not reporting it")
		return dropped
	}
	if ctx.Err() != nil {
		s.abort(st.Lease, "the slave shut down", log)
		return abandoned
	}
	f := protocol.Finish{ExitCode: res.ExitCode, TimedOut: res.TimedOut, DurationMS: res.Duration.Milliseconds(),
		Inputs: protocol.InputsFrom(tree.Inputs)}
	if runErr != nil {
		// The task could not run at all: say why, where users look first.
		var infra infraError
		f.ExitCode, f.Error, f.Infra = -1, runErr.Error(), errors.As(runErr, &infra)
		log.Warn("task could not run", "err", runErr, "infrastructure", f.Infra)
		writeNote(a.stderr, runErr)
	}
	d := delivery{lease: st.Lease, finish: f, files: map[string]string{}}
	s.whileTouching(ctx, c, entry, func() { s.collectOutputs(ctx, a, spec, &d, log) })
	if err := s.spool.save(report{Lease: d.lease, Finish: d.finish}, d.files); err != nil {
		// The result is still sent; it just would not survive a restart.
		log.Error("could not spool the result", "err", err)
	} else {
		for name := range d.files {
			d.files[name] = s.spool.path(d.lease, name)
		}
		d.spooled = true
	}
	return s.deliver(ctx, c, entry, r, d, log)
}

// runTask fetches the inputs and runs the command. Failing to place the
// inputs is an infraError; a command that cannot start is the task's own.
func (s *Slave) runTask(ctx context.Context, a *attempt, spec protocol.Spec, lease string) (Tree, process.Result, error) {
	tree, err := s.inputs.Fetch(ctx, spec.IsolateHash, a.sandbox)
	if err != nil {
		return tree, process.Result{}, infraError{fmt.Errorf("fetching inputs %s: %w", spec.IsolateHash, err)}
	}
	if len(tree.Command) == 0 {
		return tree, process.Result{}, fmt.Errorf("inputs %s name no command to run", spec.IsolateHash)
	}
	if err := os.MkdirAll(a.tmp, 0o755); err != nil {
		return tree, process.Result{}, infraError{fmt.Errorf("making TEST_TMPDIR: %w", err)}
	}
	env := append(os.Environ(),
		"TEST_TMPDIR="+a.tmp,
		"DIST_TEST_JOB_ID="+spec.JobID,
		"DIST_TEST_TASK_ID="+spec.TaskID,
		"DIST_TEST_ATTEMPT="+strconv.Itoa(spec.Attempt),
	)
	res, err := process.Run(ctx, process.Command{
		Args: tree.Command, Dir: filepath.Join(a.sandbox, filepath.FromSlash(tree.RelativeCwd)), Env: env,
		Timeout: time.Duration(spec.TimeoutMS) * time.Millisecond, KillGrace: s.cfg.KillGrace,
		Stdout: a.stdout, Stderr: a.stderr, LogLimits: s.cfg.LogLimits, Tag: lease,
	})
	if err != nil && res.Canceled {
		return tree, res, nil // a killed run is judged by the caller
	}
	return tree, res, err
}

// writeNote puts why a task could not run into its stderr log.
func writeNote(path string, err error) {
	f, ferr := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "\n[dist_test] the task could not run: %v\n", err)
}

// collectOutputs picks what the master keeps: the logs of a run that did
// not pass, and the artifacts of any run.
func (s *Slave) collectOutputs(ctx context.Context, a *attempt, spec protocol.Spec, d *delivery, log *slog.Logger) {
	keep := func(name, path string) {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			d.files[name] = path
		}
	}
	if d.finish.ExitCode != 0 || d.finish.TimedOut {
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
	f, err := os.Create(a.zip)
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

func (s *Slave) cleanup(dir string, log *slog.Logger) {
	// A task may leave read-only folders behind; make them writable first.
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("could not remove a sandbox", "dir", dir, "err", err)
	}
}
