package cli

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// pollInterval is how often watch asks for the job's counters, as the
// original client did.
const pollInterval = 500 * time.Millisecond

// watchOptions are the flags of submit and watch about watching.
type watchOptions struct {
	failFast bool
	tail     int
	// cancelOnInterrupt: Ctrl-C cancels the job (submit); otherwise it
	// only stops watching (watch).
	cancelOnInterrupt bool
}

func (o *watchOptions) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.failFast, "fail-fast", false, "cancel the job as soon as a test has failed for good (no retries left)")
	cmd.Flags().IntVar(&o.tail, "tail", 5, "lines of each failed test's stderr to print in the summary (0: none)")
}

func (o *watchOptions) check(*cobra.Command, []string) error {
	if o.tail < 0 || o.tail > 1000 {
		return fmt.Errorf("--tail %d: give 0 to 1000 lines", o.tail)
	}
	return nil
}

func watchCmd(env *Env) *cobra.Command {
	var (
		c    conn
		opts watchOptions
	)
	cmd := &cobra.Command{
		Use:   "watch [JOB_ID]",
		Short: "Watch a submitted job until it finishes",
		Long: `Watch a job (by default the last one submitted from here) until it finishes,
then say what failed. Exits 0 when every task passed and 88 when some failed.
Ctrl-C stops watching (exit 130) and leaves the job running.`,
		Args:    cobra.MaximumNArgs(1),
		PreRunE: opts.check,
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(c, false)
			if err != nil {
				return err
			}
			id, err := s.jobID(args, "watch")
			if err != nil {
				return err
			}
			env.logf("Watch your results at %s", s.dashboard(id))
			code, err := s.watch(ctx, id, opts)
			if err != nil {
				return err
			}
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		}),
	}
	opts.flags(cmd)
	c.flags(cmd)
	return cmd
}

// watch follows the job until it finishes, printing progress and then a
// summary of what failed, and returns the exit code of its result.
func (s *session) watch(ctx context.Context, id string, o watchOptions) (int, error) {
	p := s.newProgress()
	job, err := s.follow(ctx, id, o, p)
	if err != nil && errors.Is(context.Cause(ctx), ErrInterrupted) {
		p.interrupted()
		if !o.cancelOnInterrupt {
			s.env.logf("Stopped watching; job %s keeps running (dist_test watch %s, dist_test cancel %s)", id, id, id)
			return ExitInterrupted, nil
		}
		return s.cancelInterrupted(ctx, id, o, p)
	}
	if err != nil {
		return 1, err
	}
	s.summary(ctx, job, o)
	return resultCode(job), nil
}

// cancelInterrupted cancels a job whose submit was interrupted, and
// watches it end, unless a second Ctrl-C comes first.
func (s *session) cancelInterrupted(parent context.Context, id string, o watchOptions, p *progress) (int, error) {
	s.env.logf("Interrupted: canceling job %s (press Ctrl-C again to leave it running)", id)
	ctx, cancel := context.WithCancelCause(context.WithoutCancel(parent))
	defer cancel(nil)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-s.env.Interrupts:
			cancel(ErrInterrupted)
		case <-done:
		}
	}()
	if _, err := s.api.Cancel(ctx, id); err != nil {
		if ctx.Err() != nil {
			s.env.logf("Left job %s as it was", id)
			return ExitInterrupted, nil
		}
		s.env.logf("could not cancel job %s: %v", id, err)
		return ExitInterrupted, nil
	}
	o.failFast = false
	job, err := s.follow(ctx, id, o, p)
	if err != nil {
		if ctx.Err() != nil {
			s.env.logf("Stopped watching job %s, which was canceled", id)
		} else {
			s.env.logf("%v", err)
		}
		return ExitInterrupted, nil
	}
	s.summary(ctx, job, o)
	return ExitInterrupted, nil
}

// follow polls the job until it finishes or ctx ends, showing progress.
// With o.failFast it cancels the job once a test has failed for good.
func (s *session) follow(ctx context.Context, id string, o watchOptions, p *progress) (protocol.Job, error) {
	canceled := false
	for {
		job, err := s.api.GetJob(ctx, id)
		if errors.Is(err, model.ErrNotFound) {
			return job, fmt.Errorf("job %s is not known to the master at %s", id, s.api.BaseURL())
		}
		if err != nil {
			return job, err
		}
		done := job.Status == "finished"
		p.update(ctx, job, done)
		if done {
			return job, nil
		}
		if o.failFast && !canceled && !job.Canceled && job.FailedGroups > 0 {
			canceled = true
			s.env.logf("--fail-fast: a test failed; canceling job %s", id)
			if _, err := s.api.Cancel(ctx, id); err != nil {
				return job, err
			}
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return job, context.Cause(ctx)
		case <-t.C:
		}
	}
}

func resultCode(j protocol.Job) int {
	if j.FailedGroups > 0 {
		return ExitFailed
	}
	return 0
}
