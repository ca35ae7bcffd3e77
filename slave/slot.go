package slave

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/dist-test/dist_test/internal/backoff"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
)

// reserveWait bounds one Reserve so that the slot notices shutdown soon.
const reserveWait = time.Second

// silentWait bounds a slot's wait for a silent master: the master's first
// answer to any call ends it sooner.
const silentWait = 10 * time.Second

// maxInFlight bounds the results of one slot on their way to the master
// at once. Each holds the queue consumer that reserved its entry (an entry
// is deleted by its consumer) and touches it meanwhile.
const maxInFlight = 4

// inFlight is a result being delivered beside the slot's next tasks.
type inFlight struct {
	done chan struct{} // closed once delivered (or given up)
	c    queue.Consumer
}

// slot runs tasks one after another until ctx ends. A result is sent to
// the master while the slot reserves, starts and runs its next tasks, on
// the consumer that reserved its entry: the slot does not wait for the
// master between tasks, nor for a result held up by an outage of the
// master or of its blob store, unless maxInFlight of them are.
func (s *Slave) slot(ctx context.Context, n int) error {
	var c queue.Consumer
	var spares []queue.Consumer
	var flying []inFlight
	// reap takes the delivered results off the list, the oldest first if
	// wait, and keeps their consumers for the next tasks.
	reap := func(wait bool) {
		if wait && len(flying) > 0 {
			<-flying[0].done
		}
		kept := flying[:0]
		for _, f := range flying {
			select {
			case <-f.done:
				spares = append(spares, f.c)
			default:
				kept = append(kept, f)
			}
		}
		flying = kept
	}
	defer func() {
		for _, f := range flying {
			<-f.done
			spares = append(spares, f.c)
		}
		if c != nil {
			c.Close()
		}
		for _, sc := range spares {
			sc.Close()
		}
	}()
	retry := backoff.Backoff{Policy: queueRetry}
	for ctx.Err() == nil && !s.isDraining() {
		if c == nil && len(spares) > 0 {
			c, spares = spares[len(spares)-1], spares[:len(spares)-1]
		}
		if c == nil {
			var err error
			if c, err = s.queue.NewConsumer(ctx); err != nil {
				s.log.Warn("cannot reach the queue", "slot", n, "err", err)
				retry.Wait(ctx)
				continue
			}
		}
		res, err := c.Reserve(ctx, reserveWait)
		switch {
		case errors.Is(err, queue.ErrTimeout), ctx.Err() != nil:
			reap(false)
			continue
		case err != nil:
			// The connection may be gone: make a new consumer.
			s.log.Warn("reserve failed", "slot", n, "err", err)
			c.Close()
			c = nil
			retry.Wait(ctx)
			continue
		}
		retry.Reset()
		if s.isDraining() {
			// Reserved as the drain came: back at once, as it was.
			s.release(c, res.ID, entryPriority(res.Body), 0)
			break
		}
		tail := s.handle(ctx, c, n, res)
		reap(false)
		if tail == nil {
			continue
		}
		for len(flying) >= maxInFlight {
			reap(true)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			tail()
		}()
		flying = append(flying, inFlight{done: done, c: c})
		c = nil
	}
	return nil
}

// handle takes one reserved entry through its life on this slot. When the
// run has a result to deliver, handle returns tail, which delivers it and
// settles the entry, and which alone uses c meanwhile.
func (s *Slave) handle(ctx context.Context, c queue.Consumer, slot int, res queue.Reserved) (tail func()) {
	var e protocol.Entry
	if err := json.Unmarshal(res.Body, &e); err != nil || e.AttemptID == 0 || e.Token == "" {
		s.log.Warn("burying an entry that is not a dist_test task", "entry", res.ID)
		_ = c.Bury(ctx, res.ID, 0)
		return nil
	}
	if s.avoiding(res.ID) {
		// This entry's task could not run here a moment ago: leave it to
		// another slave for a while. The master queued it again, as a
		// retry: it keeps the retries' priority that it was given back
		// with, ahead of first attempts.
		s.release(c, res.ID, model.RetryBase, time.Second)
		backoff.Sleep(ctx, 500*time.Millisecond)
		return nil
	}
	started, err := s.master.Start(ctx, protocol.Start{SlaveID: s.slaveID(), Slot: slot, EntryID: res.ID, Entry: e})
	switch {
	case errors.Is(err, model.ErrConflict):
		// Stale: canceled, queued again under a new token, or a duplicate.
		_ = c.Delete(ctx, res.ID)
		return nil
	case errors.Is(err, model.ErrPoison):
		// It crashed slaves before: set it aside where an operator can
		// look at it (beanstalkd's "kick" brings it back).
		s.log.Warn("burying a task that keeps crashing slaves", "job", e.JobID, "task", e.TaskID, "err", err)
		_ = c.Bury(ctx, res.ID, e.Priority)
		return nil
	case err != nil && !answered(err):
		// The master is silent: the entry goes back as it was, and the
		// slot waits until the master answers again (the heartbeat loop
		// asks it often meanwhile), so that work resumes at once.
		if ctx.Err() == nil {
			s.log.Warn("the master did not answer the start; giving the entry back", "job", e.JobID, "task", e.TaskID, "err", err)
		}
		s.release(c, res.ID, e.Priority, 0)
		s.reach.wait(ctx, err, silentWait)
		return nil
	case err != nil:
		// Give up fast: the entry goes back for this or another slave.
		if ctx.Err() == nil {
			s.log.Warn("master refused the start; giving the entry back", "job", e.JobID, "task", e.TaskID, "err", err)
		}
		s.release(c, res.ID, e.Priority, 2*time.Second)
		if errors.Is(err, model.ErrNotFound) {
			backoff.Sleep(ctx, 2*time.Second) // until the heartbeat has reset this slave
		}
		return nil
	}
	s.cfg.Metrics.Busy(1)
	settle := func(o outcome) {
		defer s.cfg.Metrics.Busy(-1)
		switch o {
		case reported, dropped:
			_ = c.Delete(ctx, res.ID)
		case abandoned, pending:
			// Shutting down: the entry goes back at once. An aborted run is
			// queued again with it; a result in the spool is sent by the next
			// life of this slave.
			s.release(c, res.ID, model.RetryBase, 0)
		case requeued:
			// Released already, with a delay, for another slave.
		}
	}
	o, deliver := s.execute(ctx, c, res.ID, slot, started)
	if deliver == nil {
		settle(o)
		return nil
	}
	return func() { settle(deliver()) }
}

// entryPriority is the priority an entry's body says it was queued with.
func entryPriority(body []byte) uint32 {
	var e protocol.Entry
	_ = json.Unmarshal(body, &e)
	return e.Priority
}

// avoidFor remembers an entry whose task could not run on this slave, so
// that another slave gets the next try.
func (s *Slave) avoidFor(entry uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	for id, a := range s.avoid {
		if now.After(a.until) {
			delete(s.avoid, id)
		}
	}
	s.avoid[entry] = avoidance{until: now.Add(10 * time.Second), passes: 3}
}

// avoiding reports whether to leave an entry to other slaves this time.
// After a few passes the slave takes it anyway: it may be the only one.
func (s *Slave) avoiding(entry uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.avoid[entry]
	if !ok || time.Now().After(a.until) || a.passes == 0 {
		delete(s.avoid, entry)
		return false
	}
	a.passes--
	s.avoid[entry] = a
	return true
}

type avoidance struct {
	until  time.Time
	passes int
}

func (s *Slave) release(c queue.Consumer, id uint64, prio uint32, delay time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Release(ctx, id, prio, delay); err != nil {
		s.log.Warn("could not give an entry back; it returns to the queue when its lease ends", "entry", id, "err", err)
	}
}

// whileTouching runs fn while touching the queue entry, so that a long run
// or a long upload never outlives its lease and gets run a second time.
// fn runs in its own goroutine; this one alone uses the consumer.
func (s *Slave) whileTouching(ctx context.Context, c queue.Consumer, id uint64, fn func()) {
	if c == nil {
		fn()
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	_, every := s.intervals()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			if err := c.Touch(ctx, id); err != nil && ctx.Err() == nil {
				s.log.Warn("could not touch the queue entry", "entry", id, "err", err)
			}
		}
	}
}
