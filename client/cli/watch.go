package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// pollInterval is how often watch asks for the job's counters, as the
// original client did.
const pollInterval = 500 * time.Millisecond

func watchCmd(env *Env) *cobra.Command {
	var master string
	cmd := &cobra.Command{
		Use:   "watch [JOB_ID]",
		Short: "Watch a submitted job until it finishes",
		Long: `Watch a job (by default the last one submitted from here) until it finishes.
Exits 0 when every task passed and 88 when some failed.`,
		Args: cobra.MaximumNArgs(1),
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(master)
			if err != nil {
				return err
			}
			id, err := s.jobID(args, "watch")
			if err != nil {
				return err
			}
			env.logf("Watch your results at %s", s.dashboard(id))
			code, err := s.watch(ctx, id)
			if err != nil {
				return err
			}
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		}),
	}
	masterFlag(cmd, &master)
	return cmd
}

// watch polls the job until it finishes, printing progress, and returns
// the exit code of its result.
func (s *session) watch(ctx context.Context, id string) (int, error) {
	p := progress{w: s.env.Stdout, tty: s.env.terminal(s.env.Stdout), start: s.env.now()}
	for {
		job, err := s.api.GetJob(ctx, id)
		if errors.Is(err, model.ErrNotFound) {
			return 1, fmt.Errorf("job %s is not known to the master at %s", id, s.api.BaseURL())
		}
		if err != nil {
			return 1, err
		}
		done := job.Status == "finished"
		code := resultCode(job)
		p.show(job, s.env.now(), done, code)
		if done {
			return code, nil
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return 1, context.Cause(ctx)
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

// Terminal escapes of the original client.
const (
	red       = "\x1b[31m"
	yellow    = "\x1b[33m"
	green     = "\x1b[32m"
	reset     = "\x1b[m"
	lineAbove = "\x1b[F\x1b[2K" // move up a line and clear it
)

// progress prints the progress line. On a terminal it rewrites one line
// in colour at every poll; elsewhere (a CI log) it adds a line only when
// the number of finished groups changes, and the final line.
type progress struct {
	w       io.Writer
	tty     bool
	start   time.Time
	printed bool
	last    int // finished groups on the last line printed
}

func (p *progress) show(j protocol.Job, now time.Time, final bool, code int) {
	if !p.tty && p.printed && !final && j.FinishedGroups == p.last {
		return
	}
	on := func(esc string) string {
		if p.tty {
			return esc
		}
		return ""
	}
	line := ""
	if p.printed {
		line += on(lineAbove)
	}
	if final {
		if code == 0 {
			line += on(green)
		} else {
			line += on(red)
		}
	}
	line += fmt.Sprintf(" %.1fs\t %d/%d tests complete", now.Sub(p.start).Seconds(), j.FinishedGroups, j.TotalGroups)
	if final {
		line += on(reset)
	}
	if j.FailedGroups > 0 {
		line += on(red) + fmt.Sprintf(" (%d failed)", j.FailedGroups) + on(reset)
	}
	if j.RetriedTasks > 0 {
		line += on(yellow) + fmt.Sprintf(" (%d retries)", j.RetriedTasks) + on(reset)
	}
	io.WriteString(p.w, line+"\n")
	p.printed, p.last = true, j.FinishedGroups
}
