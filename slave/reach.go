package slave

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// probeEvery is how often the heartbeat loop asks a master that does not
// answer: the waits of the slots and of the results end on its first
// answer, so that work resumes within about this long of the master's
// return rather than at the next step of each one's backoff.
const probeEvery = 400 * time.Millisecond

// reach follows whether the master answers: every call tells it, and the
// retry loops wait on it.
type reach struct {
	log   *slog.Logger
	mu    sync.Mutex
	down  bool
	since time.Time
	back  chan struct{} // closed when the master answers again
}

// note records the outcome of a call to the master: an answer, whatever
// it says, or none (the network, or the master's own 503).
func (r *reach) note(err error) {
	if err != nil && errors.Is(err, context.Canceled) {
		return
	}
	none := err != nil && !answered(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case none && !r.down:
		r.down, r.since, r.back = true, time.Now(), make(chan struct{})
		r.log.Warn("the master does not answer; results wait in the spool", "err", err)
	case !none && r.down:
		r.down = false
		close(r.back)
		r.log.Info("the master answers again", "after", time.Since(r.since).Round(time.Millisecond))
	}
}

// answered tells the master's answers (a refusal is one) from its silence.
func answered(err error) bool {
	for _, kind := range []error{model.ErrConflict, model.ErrNotFound, model.ErrInvalid, model.ErrExists,
		model.ErrTooLarge, model.ErrPoison} {
		if errors.Is(err, kind) {
			return true
		}
	}
	var st *protocol.StatusError
	return errors.As(err, &st) && st.Status < 500
}

// isDown tells whether the last call found the master silent.
func (r *reach) isDown() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.down
}

// wait is the pause of a loop after a call to the master failed with err:
// d after an answer (a refusal), and after silence until the master
// answers again (to whichever call), at most d. False when ctx ended.
func (r *reach) wait(ctx context.Context, err error, d time.Duration) bool {
	var back chan struct{}
	if err != nil && !answered(err) {
		r.mu.Lock()
		down := r.down
		back = r.back
		r.mu.Unlock()
		if !down {
			return ctx.Err() == nil // it answered since: go on at once
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-back:
	case <-t.C:
	}
	return true
}

// observed is the master as the slave calls it: each call's outcome goes
// to reach.
type observed struct {
	m Master
	r *reach
}

func (o observed) Register(ctx context.Context, req protocol.Register) (protocol.Registered, error) {
	v, err := o.m.Register(ctx, req)
	o.r.note(err)
	return v, err
}

func (o observed) Heartbeat(ctx context.Context, id string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
	v, err := o.m.Heartbeat(ctx, id, hb)
	o.r.note(err)
	return v, err
}

func (o observed) Deregister(ctx context.Context, id string) error {
	err := o.m.Deregister(ctx, id)
	o.r.note(err)
	return err
}

func (o observed) Start(ctx context.Context, s protocol.Start) (protocol.Started, error) {
	v, err := o.m.Start(ctx, s)
	o.r.note(err)
	return v, err
}

func (o observed) Upload(ctx context.Context, lease, name string, body io.Reader, size int64) error {
	// An upload's 5xx may be the blob store's trouble behind the master,
	// which does not make the master silent.
	err := o.m.Upload(ctx, lease, name, body, size)
	if err == nil || unreachable(err) {
		o.r.note(err)
	}
	return err
}

func (o observed) Finish(ctx context.Context, lease string, f protocol.Finish) (protocol.Finished, error) {
	v, err := o.m.Finish(ctx, lease, f)
	o.r.note(err)
	return v, err
}

func (o observed) Abort(ctx context.Context, lease, reason string) error {
	err := o.m.Abort(ctx, lease, reason)
	o.r.note(err)
	return err
}
