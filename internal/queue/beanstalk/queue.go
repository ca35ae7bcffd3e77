// Package beanstalk is the queue of dist_test on a beanstalkd server, for a
// master and slaves on several machines. Each Queue works in one tube, so
// several dist_test clusters can share one beanstalkd.
//
// beanstalkd ties a reservation to the connection that made it, so each
// Consumer has a connection of its own; the producer side (Put, Exists,
// Delete, Stats) shares one. Both survive a restart of beanstalkd: the
// producer redials and retries once within the call that found its
// connection dead; a consumer reports the loss (its reservations went with
// the connection) and redials on its next Reserve.
package beanstalk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/beanstalkd/go-beanstalk"

	"github.com/dist-test/dist_test/internal/queue"
)

// DefaultDialTimeout is how long a connection attempt may take when
// Options.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// Options tune a Queue. The zero value is ready to use.
type Options struct {
	// DialTimeout bounds each connection attempt, and Open's first
	// exchange with the server.
	DialTimeout time.Duration
	// Logger gets lost and restored connections; nil discards them.
	Logger *slog.Logger
}

// Queue is a queue.Queue on one tube of a beanstalkd server.
type Queue struct {
	addr, tube  string
	dialTimeout time.Duration
	log         *slog.Logger

	// sem guards the producer connection. It is a channel rather than a
	// mutex so that a caller waiting for it can give up with its ctx.
	sem  chan struct{}
	conn *conn // guarded by sem; nil after a failure until the next call redials
	lost bool  // guarded by sem; a connection broke and none is back yet

	mu        sync.Mutex
	closed    bool
	consumers map[*Consumer]struct{} // to close with the queue
}

var _ queue.Queue = (*Queue)(nil)

// Open connects to the beanstalkd at addr (host:port; a bare host means
// port 11300) and returns the queue of the given tube. It fails at once,
// naming the address, if the server cannot be reached or does not answer
// like beanstalkd within the dial timeout.
func Open(ctx context.Context, addr, tube string, opt Options) (*Queue, error) {
	addr, err := hostPort(addr)
	if err != nil {
		return nil, err
	}
	if err := checkTube(tube); err != nil {
		return nil, err
	}
	q := &Queue{
		addr:        addr,
		tube:        tube,
		dialTimeout: opt.DialTimeout,
		log:         opt.Logger,
		sem:         make(chan struct{}, 1),
		consumers:   make(map[*Consumer]struct{}),
	}
	if q.dialTimeout <= 0 {
		q.dialTimeout = DefaultDialTimeout
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	cn, err := dial(ctx, addr, tube, q.dialTimeout)
	if err != nil {
		return nil, err
	}
	// Something that accepts connections is not necessarily beanstalkd:
	// find out now rather than at the first Put.
	err = cn.do(ctx, q.dialTimeout, true, func() error {
		_, err := cn.tube.Stats()
		return err
	})
	if err != nil && !errors.Is(err, beanstalk.ErrNotFound) {
		cn.close()
		var ne net.Error
		if errors.As(err, &ne) || errors.Is(err, io.EOF) || ctx.Err() != nil {
			return nil, fmt.Errorf("no beanstalkd answers at %s: %w", addr, err)
		}
		return nil, fmt.Errorf("the server at %s does not speak beanstalkd's protocol: %w", addr, err)
	}
	q.conn = cn
	return q, nil
}

// Addr returns the server's address, host:port.
func (q *Queue) Addr() string { return q.addr }

// Tube returns the name of the queue's tube.
func (q *Queue) Tube() string { return q.tube }

func (q *Queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// exec runs fn on the producer connection, dialing one if there is none. A
// connection found broken (beanstalkd restarted, say) is dropped and fn runs
// once more on a new one. A retried Put may put its entry twice if only the
// answer was lost; entries are references that the master checks, so a
// duplicate is harmless, while a lost one would stall a task until the
// reconciler notices.
func (q *Queue) exec(ctx context.Context, fn func(cn *conn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case q.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-q.sem }()
	if q.isClosed() {
		return queue.ErrClosed
	}
	var err error
	for range 2 {
		if q.conn == nil {
			cn, derr := dial(ctx, q.addr, q.tube, q.dialTimeout)
			if derr != nil {
				if err != nil {
					return fmt.Errorf("%w (the connection was lost: %v)", derr, err)
				}
				return derr
			}
			q.conn = cn
			if q.lost {
				q.lost = false
				q.log.Info("reconnected to beanstalkd", "addr", q.addr)
			}
		}
		cn := q.conn
		err = cn.do(ctx, ioTimeout, true, func() error { return fn(cn) })
		if !broken(err) {
			return q.mapErr(err)
		}
		cn.close()
		q.conn, q.lost = nil, true
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.log.Warn("lost the connection to beanstalkd", "addr", q.addr, "err", err)
	}
	return q.mapErr(err)
}

// mapErr turns the errors of go-beanstalk into those of the queue package,
// or names the server in them.
func (q *Queue) mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, beanstalk.ErrNotFound):
		return queue.ErrNotFound
	case errors.Is(err, beanstalk.ErrTimeout):
		return queue.ErrTimeout
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("beanstalkd at %s: %w", q.addr, err)
}

// Put implements queue.Queue. beanstalkd counts whole seconds: the delay
// and TTR are rounded up, and the TTR is at least a second.
func (q *Queue) Put(ctx context.Context, e queue.Entry) (uint64, error) {
	body := e.Body
	if body == nil {
		body = []byte{} // go-beanstalk sends a nil body as no body at all
	}
	delay, ttr := seconds(e.Delay), max(seconds(e.TTR), time.Second)
	var id uint64
	err := q.exec(ctx, func(cn *conn) error {
		var err error
		id, err = cn.tube.Put(body, e.Priority, delay, ttr)
		return err
	})
	if err != nil {
		return 0, err
	}
	return id, nil
}

// Exists implements queue.Queue. An entry of another tube is not ours.
func (q *Queue) Exists(ctx context.Context, id uint64) (bool, error) {
	var st map[string]string
	err := q.exec(ctx, func(cn *conn) error {
		var err error
		st, err = cn.bc.StatsJob(id)
		return err
	})
	switch {
	case errors.Is(err, queue.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	}
	return st["tube"] == q.tube, nil
}

// Delete implements queue.Queue. beanstalkd itself refuses to delete an
// entry reserved by another connection; the check before only keeps the
// entries of other tubes out of reach.
func (q *Queue) Delete(ctx context.Context, id uint64) error {
	return q.exec(ctx, func(cn *conn) error {
		st, err := cn.bc.StatsJob(id)
		if err != nil {
			return err
		}
		if st["tube"] != q.tube || st["state"] == "reserved" {
			return beanstalk.ErrNotFound
		}
		return cn.bc.Delete(id)
	})
}

// Stats implements queue.Queue with the counts of the tube, not of the
// whole server.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	var st map[string]string
	err := q.exec(ctx, func(cn *conn) error {
		var err error
		st, err = cn.tube.Stats()
		return err
	})
	switch {
	case errors.Is(err, queue.ErrNotFound):
		// beanstalkd forgets a tube that holds nothing and that no
		// connection uses or watches.
		return queue.Stats{}, nil
	case err != nil:
		return queue.Stats{}, err
	}
	var s queue.Stats
	for _, f := range []struct {
		key string
		n   *int
	}{
		{"current-jobs-ready", &s.Ready},
		{"current-jobs-reserved", &s.Reserved},
		{"current-jobs-delayed", &s.Delayed},
		{"current-jobs-buried", &s.Buried},
		{"current-waiting", &s.Waiting},
	} {
		n, err := strconv.Atoi(st[f.key])
		if err != nil {
			return queue.Stats{}, fmt.Errorf("beanstalkd at %s: stats-tube: bad %s %q", q.addr, f.key, st[f.key])
		}
		*f.n = n
	}
	return s, nil
}

// NewConsumer implements queue.Queue. The consumer has a connection of its
// own, dialed now.
func (q *Queue) NewConsumer(ctx context.Context) (queue.Consumer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	cn, err := dial(ctx, q.addr, q.tube, q.dialTimeout)
	if err != nil {
		return nil, err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		cn.close()
		return nil, queue.ErrClosed
	}
	c := newConsumer(q, cn)
	q.consumers[c] = struct{}{}
	return c, nil
}

// forget drops a consumer closed by its owner from those to close.
func (q *Queue) forget(c *Consumer) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.consumers, c)
}

// Close closes every consumer made by the queue (a Reserve blocked in one
// returns queue.ErrClosed; beanstalkd makes what they held ready again) and
// the producer connection. The entries stay in beanstalkd. Every later call
// returns queue.ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return queue.ErrClosed
	}
	q.closed = true
	consumers := q.consumers
	q.consumers = nil
	q.mu.Unlock()

	// Mark them all closed before closing any connection: beanstalkd
	// hands what a closed one held to a waiting one, whose Reserve must
	// still return queue.ErrClosed.
	conns := make(map[*Consumer]*conn, len(consumers))
	for c := range consumers {
		if cn, ok := c.markClosed(); ok {
			conns[c] = cn
		}
	}
	for c, cn := range conns {
		c.release(cn)
	}
	// Wait for a producer call in progress; it is bounded by ioTimeout.
	q.sem <- struct{}{}
	if q.conn != nil {
		q.conn.close()
		q.conn = nil
	}
	<-q.sem
	return nil
}
