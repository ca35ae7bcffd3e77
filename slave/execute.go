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

	"github.com/dist-test/dist_test/internal/model"
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
	abandoned                // the slave is shutting down
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

func newAttempt(scratch string, spec protocol.Spec) (*attempt, error) {
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

// execute runs one started attempt and reports it.
func (s *Slave) execute(ctx context.Context, c queue.Consumer, entry uint64, slot int, st protocol.Started) outcome {
	spec := st.Spec
	log := s.log.With("job", spec.JobID, "task", spec.TaskID, "attempt", spec.Attempt, "slot", slot)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := s.add(st.Lease, cancel)
	defer s.remove(st.Lease)

	a, err := newAttempt(s.cfg.ScratchDir, spec)
	if err != nil {
		return s.report(ctx, c, entry, st.Lease, r, protocol.Finish{ExitCode: -1, Error: err.Error()}, log)
	}
	if !s.cfg.KeepSandboxes {
		defer s.cleanup(a.dir, log)
	}
	var res process.Result
	var tree Tree
	var runErr error
	s.whileTouching(ctx, c, entry, func() {
		tree, res, runErr = s.runTask(runCtx, a, spec)
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
		// The task could not run at all (inputs, sandbox): say why.
		f.ExitCode, f.Error = -1, runErr.Error()
		log.Warn("task could not run", "err", runErr)
		writeNote(a.stderr, runErr)
	}
	failed := f.ExitCode != 0 || f.TimedOut
	s.whileTouching(ctx, c, entry, func() {
		f.Outputs, f.Missing = s.uploadOutputs(ctx, a, st, failed, log)
	})
	return s.report(ctx, c, entry, st.Lease, r, f, log)
}

// runTask fetches the inputs and runs the command.
func (s *Slave) runTask(ctx context.Context, a *attempt, spec protocol.Spec) (Tree, process.Result, error) {
	tree, err := s.inputs.Fetch(ctx, spec.IsolateHash, a.sandbox)
	if err != nil {
		return tree, process.Result{}, fmt.Errorf("fetching inputs %s: %w", spec.IsolateHash, err)
	}
	if len(tree.Command) == 0 {
		return tree, process.Result{}, fmt.Errorf("inputs %s name no command to run", spec.IsolateHash)
	}
	if err := os.MkdirAll(a.tmp, 0o755); err != nil {
		return tree, process.Result{}, fmt.Errorf("making TEST_TMPDIR: %w", err)
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
		Stdout: a.stdout, Stderr: a.stderr, LogLimits: s.cfg.LogLimits,
	})
	if err != nil && res.Canceled {
		return tree, res, nil // a killed run is judged by the caller
	}
	return tree, res, err
}

// writeNote puts why a task could not run into its stderr log, where users
// look first.
func writeNote(path string, err error) {
	f, ferr := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "\n[dist_test] the task could not run: %v\n", err)
}

// report sends the result until the master acknowledges it: a result is
// never given up while the slave lives.
func (s *Slave) report(ctx context.Context, c queue.Consumer, entry uint64, lease string, r *run, f protocol.Finish, log *slog.Logger) outcome {
	delay := 200 * time.Millisecond
	for {
		var out protocol.Finished
		var err error
		s.whileTouching(ctx, c, entry, func() { out, err = s.master.Finish(ctx, lease, f) })
		switch {
		case err == nil:
			if out.Retried {
				log.Info("task failed; the master queued a retry", "state", out.State)
			}
			return reported
		case errors.Is(err, model.ErrConflict):
			log.Info("the master refused the result: the run was canceled or superseded", "err", err)
			return dropped
		case s.isDropped(r):
			return dropped
		case ctx.Err() != nil:
			return abandoned
		}
		log.Warn("reporting the result failed; trying again", "err", err, "in", delay)
		if !sleep(ctx, delay) {
			return abandoned
		}
		delay = min(2*delay, 10*time.Second)
	}
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

// uploadOutputs uploads the logs of a failed run and the artifacts of any
// run. Each upload is tried a few times; one that keeps failing is reported
// missing rather than holding the result back.
func (s *Slave) uploadOutputs(ctx context.Context, a *attempt, st protocol.Started, failed bool, log *slog.Logger) (uploaded, missing []string) {
	try := func(name, path string) {
		fi, err := os.Stat(path)
		if err != nil || fi.Size() == 0 {
			return
		}
		if err := s.upload(ctx, st.Lease, name, path, fi.Size()); err != nil {
			log.Warn("upload failed; the result will say it is missing", "output", name, "err", err)
			missing = append(missing, name)
			return
		}
		uploaded = append(uploaded, name)
	}
	if failed {
		try(protocol.OutputStdout, a.stdout)
		try(protocol.OutputStderr, a.stderr)
	}
	if len(st.Spec.ArtifactGlobs) > 0 {
		if err := s.zipArtifacts(ctx, a, st.Spec.ArtifactGlobs); err != nil {
			log.Warn("collecting artifacts failed", "err", err)
			missing = append(missing, protocol.OutputArtifacts)
		} else {
			try(protocol.OutputArtifacts, a.zip)
		}
	}
	return uploaded, missing
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

func (s *Slave) upload(ctx context.Context, lease, name, path string, size int64) error {
	var err error
	delay := 500 * time.Millisecond
	for try := 0; try < s.cfg.UploadAttempts; try++ {
		if try > 0 && !sleep(ctx, delay) {
			return ctx.Err()
		}
		delay *= 2
		var f *os.File
		if f, err = os.Open(path); err != nil {
			return err
		}
		err = s.master.Upload(ctx, lease, name, f, size)
		f.Close()
		if err == nil || errors.Is(err, model.ErrConflict) || errors.Is(err, model.ErrTooLarge) || errors.Is(err, model.ErrInvalid) {
			return err
		}
	}
	return err
}
