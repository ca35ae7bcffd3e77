package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
)

// Start hands the attempt of a reserved queue entry to a slave slot. A
// stale entry (re-queued, canceled, already running from another entry) is
// model.ErrConflict: the slave deletes it and reserves the next. An unknown
// or lost slave is model.ErrNotFound: it gives the entry back and registers
// or resets.
func (m *Master) Start(ctx context.Context, req protocol.Start) (model.Attempt, model.Spec, error) {
	sl, err := m.store.GetSlave(ctx, req.SlaveID)
	if err != nil {
		return model.Attempt{}, model.Spec{}, fmt.Errorf("start: %w", err)
	}
	if sl.State == model.SlaveDraining {
		// It reserved the entry before its heartbeat told it to drain. Not
		// a conflict: the entry is good and goes back for another slave.
		return model.Attempt{}, model.Spec{}, fmt.Errorf("%w: slave %s is draining: it takes no new task", model.ErrNotFound, sl.ID)
	}
	if sl.State != model.SlaveAlive {
		// A slave the master lost must reset before it runs anything again.
		// Not a conflict: the entry is good and the slave must give it back.
		return model.Attempt{}, model.Spec{}, fmt.Errorf("%w: slave %s is %s; heartbeat to reset", model.ErrNotFound, sl.ID, sl.State)
	}
	sr := lifecycle.StartRequest{
		AttemptID: req.Entry.AttemptID, Token: req.Entry.Token, EntryID: req.EntryID,
		SlaveID: sl.ID, Slot: req.Slot, Hostname: sl.Hostname,
	}
	a, spec, err := m.store.StartAttempt(ctx, sr, m.now())
	var avoid *lifecycle.AvoidError
	if errors.As(err, &avoid) {
		// The task's previous run failed on this slave: its retry goes to
		// another, unless none is alive. The slave gives the entry back
		// with a delay, for another slave to reserve it.
		if m.otherSlaveAlive(ctx, sl.ID) {
			return a, spec, fmt.Errorf("start: %w", err)
		}
		sr.Anywhere = true
		a, spec, err = m.store.StartAttempt(ctx, sr, m.now())
	}
	var held *lifecycle.HeldError
	if errors.As(err, &held) {
		// The queue handed the entry on while its holder ran it: the
		// holder's connection to the queue dropped (its process died), its
		// lease ran out, or the queue restarted (beanstalkd with its binlog
		// does that to every reserved entry). While the holder is alive it
		// still runs the task: refuse, so that no task runs twice. A dead
		// holder's run is taken over.
		if !m.holderGone(ctx, held.SlaveID) {
			return a, spec, fmt.Errorf("start: %w", err)
		}
		sr.Takeover = true
		a, spec, err = m.store.StartAttempt(ctx, sr, m.now())
	}
	if err != nil {
		return a, spec, fmt.Errorf("start: %w", err)
	}
	if a.Runs > m.cfg.MaxRuns {
		// Every earlier run of this attempt ended without a word: the task
		// most likely takes its slave down. Fail it (a retry, if the task
		// has one left, gets a fresh entry) and have this entry buried.
		reason := fmt.Sprintf("started %d times and never reported a result: the task may crash its slave", a.Runs-1)
		out, err := m.store.FinishAttempt(ctx, a.Lease, model.Result{ExitCode: -1, Error: reason}, m.now())
		if err != nil {
			return model.Attempt{}, model.Spec{}, fmt.Errorf("start: %w", err)
		}
		if out.Next == nil {
			m.capFailures(ctx, a.JobID)
		}
		if !out.Duplicate {
			m.metrics.Finished(out.Attempt, 0, model.Inputs{}, out.Next != nil)
		}
		m.log.WarnContext(ctx, "attempt failed: it never reported", "job", a.JobID, "task", a.TaskID, "attempt", a.Attempt, "runs", a.Runs-1)
		m.poke()
		return model.Attempt{}, model.Spec{}, fmt.Errorf("%w: %s", model.ErrPoison, reason)
	}
	var enqueued time.Time
	if req.Entry.EnqueuedMS > 0 {
		enqueued = time.UnixMilli(req.Entry.EnqueuedMS)
	}
	if a.Hedge.Token == "" || a.Hedge.Token != req.Entry.Token {
		// A hedge is a second run of an attempt counted at its first.
		m.metrics.Started(a, enqueued)
	}
	if a.Runs > 1 {
		m.log.InfoContext(ctx, "attempt started again", "job", a.JobID, "task", a.TaskID, "attempt", a.Attempt, "run", a.Runs, "slave", sl.ID)
	}
	return a, spec, nil
}

// holderGone reports whether the slave that holds a run whose queue entry
// came back is gone, so that the run may be taken over. A slave is gone if
// it is lost, has ended, or has been silent past the heartbeat timeout.
//
// The entry coming back is evidence already (the queue ended the holder's
// reservation), so less silence is asked of the holder than of a slave the
// reaper declares lost: a live slave heartbeats every interval, so a holder
// silent for one and a half intervals is taken to be dead, and its run
// starts elsewhere seconds after a SIGKILL rather than after the heartbeat
// timeout. If the holder has not been silent that long yet, Start waits
// until it has, and looks again: a holder that heartbeats meanwhile is
// alive, and the entry is refused. Were a live holder taken for dead (a
// heartbeat very late), the task would run twice but count once: the
// superseded run's lease is no longer current, its result is refused, and
// its slave is told to kill it at its next heartbeat.
//
// Within StartGrace of the master's start or of a store outage, heartbeats
// may not have been recorded, and only the heartbeat timeout counts.
func (m *Master) holderGone(ctx context.Context, id string) bool {
	for waited := false; ; waited = true {
		s, err := m.store.GetSlave(ctx, id)
		if err != nil || !s.State.Live() {
			return true
		}
		silent := m.now().Sub(s.LastHeartbeat)
		if silent > m.cfg.HeartbeatTimeout {
			return true
		}
		if m.inGrace() {
			return false
		}
		wait := m.cfg.HeartbeatInterval*3/2 - silent
		if wait < 0 {
			return true
		}
		if waited {
			return false
		}
		t := time.NewTimer(wait + 10*time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// otherSlaveAlive reports whether a slave other than id, with slots, is
// alive (a draining one takes no task). An error says no: the retry then
// runs where it can.
func (m *Master) otherSlaveAlive(ctx context.Context, id string) bool {
	alive, err := m.store.ListSlaves(ctx, true)
	if err != nil {
		return false
	}
	for _, s := range alive {
		if s.ID != id && s.State == model.SlaveAlive && s.Slots > 0 && m.now().Sub(s.LastHeartbeat) <= m.cfg.HeartbeatTimeout {
			return true
		}
	}
	return false
}

// OutputKey is where an output of a run is stored. The lease makes it
// unique per run, so a late upload from a superseded run never overwrites
// the output of the run that counts.
func OutputKey(a model.Attempt, name string) string {
	ext := name
	if name == protocol.OutputArtifacts {
		ext = "zip"
	}
	return fmt.Sprintf("outputs/%s/%s.%d.%s.%s", keySafe(a.JobID), keySafe(a.TaskID), a.Attempt, a.Lease[:12], ext)
}

// keySafe maps the characters a job id may have but a blob key may not.
func keySafe(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '-', r == '_':
			return r
		}
		return '_'
	}, s)
}

// Upload stores one output of the current run holding lease. size is the
// body's length or -1.
func (m *Master) Upload(ctx context.Context, lease, name string, body io.Reader, size int64) (string, error) {
	var limit int64
	switch name {
	case protocol.OutputStdout, protocol.OutputStderr:
		limit = m.cfg.MaxLogBytes
	case protocol.OutputArtifacts:
		limit = m.cfg.MaxArtifactBytes
	default:
		return "", fmt.Errorf("%w: unknown output %q (stdout, stderr or artifacts)", model.ErrInvalid, name)
	}
	if size > limit {
		return "", fmt.Errorf("%w: %s of %d bytes is over the limit of %d", model.ErrTooLarge, name, size, limit)
	}
	a, err := m.store.RunningByLease(ctx, lease)
	if err != nil {
		return "", fmt.Errorf("upload %s: %w", name, err)
	}
	key := OutputKey(a, name)
	lr := &limitedReader{r: body, left: limit}
	if err := m.blobs.Put(ctx, key, lr, size); err != nil {
		if lr.over {
			return "", fmt.Errorf("%w: %s is over the limit of %d bytes", model.ErrTooLarge, name, limit)
		}
		return "", fmt.Errorf("%w: storing %s: %v", model.ErrUnavailable, name, err)
	}
	return key, nil
}

// checkOutputNames refuses names other than the outputs a run may have,
// and repeats: the store keeps the list in a short column.
func checkOutputNames(names []string) error {
	seen := map[string]bool{}
	for _, n := range names {
		switch n {
		case protocol.OutputStdout, protocol.OutputStderr, protocol.OutputArtifacts:
		default:
			return fmt.Errorf("%w: unknown output %q (stdout, stderr or artifacts)", model.ErrInvalid, model.Clip(n, 60))
		}
		if seen[n] {
			return fmt.Errorf("%w: output %q named twice", model.ErrInvalid, n)
		}
		seen[n] = true
	}
	return nil
}

// limitedReader fails a read past its limit instead of truncating, so an
// oversized upload stores nothing.
type limitedReader struct {
	r    io.Reader
	left int64
	over bool
}

func (l *limitedReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		l.over = true
		return 0, errors.New("upload over its size limit")
	}
	return n, err
}

// Finish records how the run holding lease ended. The outputs it names must
// have been uploaded under the same lease; those that are not there are
// recorded as missing. Sent again, a finish is acknowledged again (slaves
// resend until they hear back). An infrastructure failure (the task could
// not run at all) is not a result while the attempt has runs left: the
// attempt is queued again with its entry, for another slave, and requeued
// is true.
func (m *Master) Finish(ctx context.Context, lease string, f protocol.Finish) (out store.FinishOutcome, requeued bool, err error) {
	if err := checkOutputNames(f.Outputs); err != nil {
		return out, false, fmt.Errorf("finish: outputs: %w", err)
	}
	if err := checkOutputNames(f.Missing); err != nil {
		return out, false, fmt.Errorf("finish: missing: %w", err)
	}
	f.Error = model.Clip(f.Error, model.MaxErrorBytes)
	// The run as it stands, to name its outputs; a lease that is not
	// current is refused by FinishAttempt (or acknowledged, if the same
	// finish was recorded already).
	a, runErr := m.store.RunningByLease(ctx, lease)
	if f.Infra {
		if runErr == nil && a.Runs < m.cfg.MaxRuns {
			reason := model.Clip(fmt.Sprintf("infrastructure failure on %s (run %d): %s", a.Hostname, a.Runs, f.Error), model.MaxErrorBytes)
			if err := m.store.RequeueRun(ctx, lease, reason, true, m.now()); err != nil {
				return out, false, fmt.Errorf("finish: %w", err)
			}
			m.log.WarnContext(ctx, "task could not run; queued again for another slave", "job", a.JobID, "task", a.TaskID, "reason", f.Error)
			m.metrics.InfraRequeued()
			m.metrics.Inputs(f.Inputs.Model())
			return out, true, nil
		}
	}
	r := model.Result{
		ExitCode: f.ExitCode, TimedOut: f.TimedOut, Infra: f.Infra,
		Duration: time.Duration(f.DurationMS) * time.Millisecond,
		Error:    f.Error, Outputs: model.Outputs{Missing: f.Missing},
		Inputs: f.Inputs.Model(), Usage: usage(f),
	}
	if runErr == nil {
		for _, name := range f.Outputs {
			key := OutputKey(a, name)
			if _, err := m.blobs.Stat(ctx, key); err != nil {
				r.Outputs.Missing = append(r.Outputs.Missing, name)
				continue
			}
			switch name {
			case protocol.OutputStdout:
				r.Outputs.Stdout = key
			case protocol.OutputStderr:
				r.Outputs.Stderr = key
			case protocol.OutputArtifacts:
				r.Outputs.Artifacts = key
			}
		}
	}
	out, err = m.store.FinishAttempt(ctx, lease, r, m.now())
	if err != nil {
		return out, false, fmt.Errorf("finish: %w", err)
	}
	if out.Next != nil || m.sharing.Load() {
		m.poke()
	}
	if !out.Duplicate && out.Next == nil && out.Attempt.State != model.Passed {
		m.capFailures(ctx, out.Attempt.JobID)
	}
	if !out.Duplicate {
		a := out.Attempt
		m.metrics.Finished(a, r.Duration, r.Inputs, out.Next != nil)
		m.log.DebugContext(ctx, "attempt finished", "job", a.JobID, "task", a.TaskID, "attempt", a.Attempt, "state", a.State, "retry", out.Next != nil)
	}
	return out, false, nil
}

// Bounds of the usage a slave reports: a figure outside them (negative, or
// beyond any run) is a slave's mistake, recorded as unknown.
const (
	maxCPUMS      = int64(100 * 365 * 24 * time.Hour / time.Millisecond)
	maxPeakMemory = int64(1) << 50 // a pebibyte
)

// usage is what a finish says the run used, each figure that cannot be
// true dropped.
func usage(f protocol.Finish) model.Usage {
	var u model.Usage
	if f.CPUMS > 0 && f.CPUMS <= maxCPUMS {
		u.CPUTime = time.Duration(f.CPUMS) * time.Millisecond
	}
	if f.PeakMemoryBytes > 0 && f.PeakMemoryBytes <= maxPeakMemory {
		u.PeakMemory = f.PeakMemoryBytes
	}
	if f.PullMS > 0 && f.PullMS <= maxCPUMS {
		u.ImagePull = time.Duration(f.PullMS) * time.Millisecond
	}
	return u
}

// Abort takes back a run that its slave gives up unfinished (it is shutting
// down): the attempt is queued again with its token and queue entry, which
// the slave releases, and no retry is used.
func (m *Master) Abort(ctx context.Context, lease, reason string) error {
	if reason == "" {
		reason = "aborted by its slave"
	}
	reason = model.Clip(reason, model.MaxErrorBytes)
	if err := m.store.RequeueRun(ctx, lease, reason, true, m.now()); err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	m.metrics.Requeued(1)
	return nil
}

// OpenOutput opens a stored output for reading.
func (m *Master) OpenOutput(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	if !strings.HasPrefix(key, "outputs/") || !blob.ValidKey(key) {
		return nil, blob.Info{}, fmt.Errorf("output %q: %w", model.Clip(key, 200), model.ErrNotFound)
	}
	rc, info, err := m.blobs.Get(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, info, fmt.Errorf("output %s: %w", key, model.ErrNotFound)
	}
	return rc, info, err
}

// OutputLink returns a link to a stored output that a plain GET can fetch,
// for LinkTTL, without logging in: a presigned URL where the blob store can
// make one, else the master's own /outputs/ path under base (the URL the
// caller reached the master by), signed.
func (m *Master) OutputLink(ctx context.Context, base, key string) string {
	if key == "" {
		return ""
	}
	if p, ok := m.blobs.(blob.Presigner); ok {
		if u, err := p.PresignGet(ctx, key, m.cfg.LinkTTL); err == nil {
			return u
		}
	}
	return strings.TrimSuffix(base, "/") + protocol.PathOutputs + strings.TrimPrefix(key, "outputs/") +
		"?" + m.links.Query(key, m.now().Add(m.cfg.LinkTTL))
}

// CheckOutputLink checks the signature of a link to the output key made by
// OutputLink (on this master or another of the deployment): nil when it is
// valid and not expired; linksign.ErrUnsigned when it carries none.
func (m *Master) CheckOutputLink(key string, query url.Values) error {
	return m.links.Verify(key, query, m.now())
}
