package slave

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"sort"
	"syscall"
	"time"

	"github.com/dist-test/dist_test/internal/backoff"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
)

// delivery is a result on its way to the master.
type delivery struct {
	lease   string
	finish  protocol.Finish
	files   map[string]string // output name → file
	spooled bool
}

// deliver uploads a result's outputs and reports it, keeping the promises
// each message makes when the master or the blob store is away:
//   - the result waits and is sent again until the master answers; it is in
//     the spool meanwhile, so a restart of either side loses nothing;
//   - an output is retried while the master cannot be reached, but when the
//     master answers that it cannot store it (S3 is down), it is tried a few
//     times and then reported missing, so that the result still lands.
//
// c may be nil for a result from the spool of an earlier life, whose queue
// entry is gone.
func (s *Slave) deliver(ctx context.Context, c queue.Consumer, entry uint64, r *run, d delivery, log *slog.Logger) outcome {
	names := make([]string, 0, len(d.files))
	for name := range d.files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		var err error
		s.whileTouching(ctx, c, entry, func() { err = s.uploadOutput(ctx, d.lease, name, d.files[name]) })
		switch {
		case err == nil:
			d.finish.Outputs = append(d.finish.Outputs, name)
		case errors.Is(err, model.ErrConflict):
			return s.forget(d, dropped, log, "the master refused the output: the run was canceled or superseded")
		case ctx.Err() != nil:
			return pending
		default:
			log.Warn("giving up on an output; the result will say it is missing", "output", name, "err", err)
			d.finish.Missing = append(d.finish.Missing, name)
		}
	}
	// The entry is touched while the result waits for the master, however
	// long: were its lease to run out, the queue would hand the task to
	// another slot to run a second time.
	var o outcome
	s.whileTouching(ctx, c, entry, func() { o = s.report(ctx, r, d, log) })
	if o == requeued && c != nil {
		s.avoidFor(entry)
		s.release(c, entry, model.RetryBase, time.Second)
	}
	return o
}

// report sends the result until the master answers it, the run is
// dropped, or ctx ends.
func (s *Slave) report(ctx context.Context, r *run, d delivery, log *slog.Logger) outcome {
	retry := backoff.Backoff{Policy: finishRetry}
	for {
		out, err := s.master.Finish(ctx, d.lease, d.finish)
		switch {
		case err == nil && out.Requeued:
			return s.forget(d, requeued, log, "could not run here; queued again for another slave")
		case err == nil:
			if out.Retried {
				log.Info("task failed; the master queued a retry", "state", out.State)
			}
			return s.forget(d, reported, nil, "")
		case errors.Is(err, model.ErrConflict):
			return s.forget(d, dropped, log, "the master refused the result: the run was canceled or superseded")
		case r != nil && s.isDropped(r):
			return s.forget(d, dropped, nil, "")
		case ctx.Err() != nil:
			return pending
		}
		delay := retry.Next()
		log.Warn("reporting the result failed; trying again", "err", err, "in", delay)
		// Sooner if the master answers again meanwhile.
		if !s.reach.wait(ctx, err, delay) {
			return pending
		}
	}
}

func (s *Slave) forget(d delivery, o outcome, log *slog.Logger, why string) outcome {
	if log != nil {
		log.Info(why)
	}
	if d.spooled {
		s.spool.done(d.lease)
	}
	return o
}

// uploadOutput sends one output file. While the master cannot be reached
// it waits for it; answers of the master's own trouble (5xx: its blob store
// is down) count against UploadAttempts.
func (s *Slave) uploadOutput(ctx context.Context, lease, name, path string) error {
	failures := 0
	retry := backoff.Backoff{Policy: uploadRetry}
	for {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		var size int64 = -1
		if fi, err := f.Stat(); err == nil {
			size = fi.Size()
		}
		err = s.master.Upload(ctx, lease, name, f, size)
		f.Close()
		switch {
		case err == nil, errors.Is(err, model.ErrConflict), errors.Is(err, model.ErrTooLarge),
			errors.Is(err, model.ErrInvalid), ctx.Err() != nil:
			return err
		case !unreachable(err):
			failures++
			if failures >= s.cfg.UploadAttempts {
				return err
			}
		}
		// A master that does not answer at all ends the wait when it
		// answers again; the blob store's trouble behind it takes the
		// backoff.
		wait := backoff.Sleep
		if unreachable(err) && s.reach.isDown() {
			wait = func(ctx context.Context, d time.Duration) bool { return s.reach.wait(ctx, err, d) }
		}
		if !wait(ctx, retry.Next()) {
			return ctx.Err()
		}
	}
}

// unreachable: the error is about reaching the master, not an answer of it.
func unreachable(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE)
}

// replay delivers the results a previous life of this slave spooled and
// could not report. Their queue entries are gone; the master still counts
// them if their runs were not handed to another slave meanwhile.
func (s *Slave) replay(ctx context.Context, reports []report) error {
	for _, rep := range reports {
		files := map[string]string{}
		for name, file := range rep.Outputs {
			files[name] = s.spool.path(rep.Lease, file)
		}
		log := s.log.With("lease", leaseTag(rep.Lease), "from", "spool")
		log.Info("sending a result spooled before the slave restarted")
		if s.deliver(ctx, nil, 0, nil, delivery{lease: rep.Lease, finish: rep.Finish, files: files, spooled: true}, log) == pending {
			return nil // shutting down; it stays in the spool
		}
	}
	return nil
}
