package beanstalk

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/dist-test/dist_test/internal/queue"
)

// reserveSlice is the longest wait of one reserve command while the
// consumer holds entries: beanstalkd cannot be told to stop waiting, so a
// canceled Reserve returns when the slice ends.
const reserveSlice = time.Second

// deadlineSoonPause is how long Reserve waits before asking again when
// beanstalkd answers DEADLINE_SOON: an entry the consumer holds is within a
// second of its TTR, and beanstalkd hands out nothing until it is touched or
// back in the queue.
const deadlineSoonPause = 100 * time.Millisecond

// nudgeInterval is how often an idle consumer that holds entries sends
// beanstalkd a harmless command; see nudge.
const nudgeInterval = time.Second

// Consumer is a queue.Consumer with a beanstalkd connection of its own:
// beanstalkd ties each reservation to the connection that made it.
type Consumer struct {
	q *Queue

	// busy is held while a command runs on the connection: the whole of
	// each call, or a nudge. Close does not take it, so that it can cut a
	// blocked Reserve short.
	busy sync.Mutex

	mu     sync.Mutex // guards the fields below
	closed bool
	conn   *conn // nil after it broke, until the next Reserve dials again
	// held are the entries this consumer reserved and has not let go, as
	// far as it knows: one whose lease ran out stays until an answer
	// shows it.
	held map[uint64]struct{}

	done   chan struct{} // closed by release: stops the nudger
	nudger sync.WaitGroup
}

var _ queue.Consumer = (*Consumer)(nil)

func newConsumer(q *Queue, cn *conn) *Consumer {
	c := &Consumer{q: q, conn: cn, held: make(map[uint64]struct{}), done: make(chan struct{})}
	c.nudger.Go(c.nudgeLoop)
	return c
}

// current returns the consumer's connection, or nil if it broke; with
// redial, a broken one is replaced by a new one.
func (c *Consumer) current(ctx context.Context, redial bool) (*conn, error) {
	c.mu.Lock()
	closed, cn := c.closed, c.conn
	c.mu.Unlock()
	if closed {
		return nil, queue.ErrClosed
	}
	if cn != nil || !redial {
		return cn, nil
	}
	cn, err := dial(ctx, c.q.addr, c.q.tube, c.q.dialTimeout)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cn.close()
		return nil, queue.ErrClosed
	}
	c.conn = cn
	c.q.log.Info("consumer reconnected to beanstalkd", "addr", c.q.addr)
	return cn, nil
}

// result maps the error of a command on cn. A broken connection is dropped:
// beanstalkd makes what it held ready again, so the consumer holds nothing.
func (c *Consumer) result(cn *conn, err error) error {
	if !broken(err) {
		return c.q.mapErr(err)
	}
	c.mu.Lock()
	closed := c.closed
	if c.conn == cn {
		c.conn = nil
		clear(c.held)
	}
	c.mu.Unlock()
	cn.close()
	if closed {
		return queue.ErrClosed
	}
	if !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		c.q.log.Warn("consumer lost its connection to beanstalkd", "addr", c.q.addr, "err", err)
	}
	return c.q.mapErr(err)
}

func (c *Consumer) holding() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held) > 0
}

// mark records whether the consumer holds id. It returns false if the
// consumer is closed.
func (c *Consumer) mark(id uint64, holds bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return false
	}
	if holds {
		c.held[id] = struct{}{}
	} else {
		delete(c.held, id)
	}
	return true
}

// Reserve implements queue.Consumer. A consumer whose connection broke
// dials a new one here.
//
// beanstalkd counts the timeout in whole seconds (rounded up here) and
// cannot be told to stop waiting. When the consumer holds nothing, Reserve
// waits in one command and, if ctx ends first, drops the connection, which
// costs nothing. Otherwise dropping it would give up what the consumer
// holds, so Reserve waits in slices of a second and checks ctx between
// them.
func (c *Consumer) Reserve(ctx context.Context, timeout time.Duration) (queue.Reserved, error) {
	if err := ctx.Err(); err != nil {
		return queue.Reserved{}, err
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	cn, err := c.current(ctx, true)
	if err != nil {
		return queue.Reserved{}, err
	}
	end := time.Now().Add(timeout)
	for {
		wait, interrupt := seconds(time.Until(end)), !c.holding()
		if !interrupt {
			wait = min(wait, reserveSlice)
		}
		var (
			id   uint64
			body []byte
		)
		err := cn.do(ctx, wait+ioTimeout, interrupt, func() error {
			var err error
			id, body, err = cn.watch.Reserve(wait)
			return err
		})
		switch {
		case err == nil:
			if ctx.Err() != nil {
				// The caller has stopped waiting and may not look at
				// what came.
				c.giveBack(cn, id)
				return queue.Reserved{}, ctx.Err()
			}
			if !c.mark(id, true) {
				// Closed meanwhile: beanstalkd takes the entry back
				// with the connection.
				return queue.Reserved{}, queue.ErrClosed
			}
			return queue.Reserved{ID: id, Body: body}, nil
		case errors.Is(err, beanstalk.ErrTimeout):
		case errors.Is(err, beanstalk.ErrDeadline):
			if err := pause(ctx, min(deadlineSoonPause, time.Until(end))); err != nil {
				return queue.Reserved{}, err
			}
		default:
			return queue.Reserved{}, c.result(cn, err)
		}
		if err := ctx.Err(); err != nil {
			return queue.Reserved{}, err
		}
		if time.Until(end) <= 0 {
			return queue.Reserved{}, queue.ErrTimeout
		}
	}
}

// giveBack makes an entry reserved for a caller that gave up ready again
// where it was, with its priority. If that fails, dropping the connection
// makes beanstalkd do it (with everything else the consumer holds).
func (c *Consumer) giveBack(cn *conn, id uint64) {
	err := cn.do(context.Background(), ioTimeout, false, func() error {
		st, err := cn.bc.StatsJob(id)
		if err != nil {
			return err
		}
		pri, err := strconv.ParseUint(st["pri"], 10, 32)
		if err != nil {
			return err
		}
		return cn.bc.Release(id, uint32(pri), 0)
	})
	if err != nil && !errors.Is(err, beanstalk.ErrNotFound) {
		_ = c.result(cn, errors.Join(errGiveBack, err))
	}
}

var errGiveBack = errors.New("could not give back an entry reserved after Reserve was canceled")

func pause(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// command runs fn, a command on the entry id that this consumer reserved,
// and keeps track of whether it still holds it: not when done lets it go,
// nor after a NOT_FOUND. After its connection broke the consumer holds
// nothing, so every such command answers queue.ErrNotFound without asking.
func (c *Consumer) command(ctx context.Context, id uint64, done bool, fn func(cn *conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.busy.Lock()
	defer c.busy.Unlock()
	cn, err := c.current(ctx, false)
	if err != nil {
		return err
	}
	if cn == nil {
		return queue.ErrNotFound
	}
	err = c.result(cn, cn.do(ctx, ioTimeout, true, func() error { return fn(cn) }))
	if (err == nil && done) || errors.Is(err, queue.ErrNotFound) {
		c.mark(id, false)
	}
	return err
}

// Touch implements queue.Consumer.
func (c *Consumer) Touch(ctx context.Context, id uint64) error {
	return c.command(ctx, id, false, func(cn *conn) error { return cn.bc.Touch(id) })
}

// Release implements queue.Consumer. The delay is rounded up to seconds.
func (c *Consumer) Release(ctx context.Context, id uint64, priority uint32, delay time.Duration) error {
	return c.command(ctx, id, true, func(cn *conn) error { return cn.bc.Release(id, priority, seconds(delay)) })
}

// Bury implements queue.Consumer.
func (c *Consumer) Bury(ctx context.Context, id uint64, priority uint32) error {
	return c.command(ctx, id, true, func(cn *conn) error { return cn.bc.Bury(id, priority) })
}

// Delete implements queue.Consumer. beanstalkd lets any connection delete a
// ready entry, so one whose lease ran out would go too; touching it first
// checks that it is still this consumer's, and keeps it so until the delete.
func (c *Consumer) Delete(ctx context.Context, id uint64) error {
	return c.command(ctx, id, true, func(cn *conn) error {
		if err := cn.bc.Touch(id); err != nil {
			return err
		}
		return cn.bc.Delete(id)
	})
}

// nudgeLoop nudges beanstalkd until the consumer is closed.
func (c *Consumer) nudgeLoop() {
	t := time.NewTicker(nudgeInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.nudge()
		case <-c.done:
			return
		}
	}
}

// nudge sends a harmless command (stats-job of a held entry) on the
// connection of a consumer that holds entries and is idle. beanstalkd 1.12
// may lose the timer that ends the lease of an idle connection's entries
// while other connections keep it busy, and leave them reserved for ever;
// any command on the holding connection past the deadline makes it notice.
// A slave touches what it runs anyway; this covers one that stopped
// touching but kept its connection open. (A call in progress pokes
// beanstalkd itself: Reserve, holding entries, asks at least every second.)
func (c *Consumer) nudge() {
	if !c.busy.TryLock() {
		return
	}
	defer c.busy.Unlock()
	c.mu.Lock()
	cn, closed := c.conn, c.closed
	var id uint64
	holding := false
	for k := range c.held {
		id, holding = k, true
		break
	}
	c.mu.Unlock()
	if closed || cn == nil || !holding {
		return
	}
	err := cn.do(context.Background(), ioTimeout, false, func() error {
		_, err := cn.bc.StatsJob(id)
		return err
	})
	if broken(err) {
		// Not in step with beanstalkd any more: the next call would
		// read this command's answer. The consumer's next call reports
		// the loss (queue.ErrNotFound, or a new connection for Reserve).
		_ = c.result(cn, err)
	}
}

// Close implements queue.Consumer: closing the connection makes beanstalkd
// ready again, at once, every entry the consumer held.
func (c *Consumer) Close() error {
	c.q.forget(c)
	cn, ok := c.markClosed()
	if !ok {
		return queue.ErrClosed
	}
	c.release(cn)
	return nil
}

// markClosed is the first half of closing: from now on every call, a
// Reserve blocked now included, returns queue.ErrClosed. It returns the
// connection for release, and false if the consumer was closed already.
func (c *Consumer) markClosed() (*conn, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false
	}
	c.closed = true
	cn := c.conn
	c.conn = nil
	clear(c.held)
	return cn, true
}

// release is the second half of closing: it closes the connection, which
// ends a blocked Reserve and makes beanstalkd ready again what the consumer
// held, and stops the nudger.
func (c *Consumer) release(cn *conn) {
	if cn != nil {
		cn.close()
	}
	close(c.done)
	c.nudger.Wait()
}
