package mem

import (
	"container/heap"
	"context"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
)

// Consumer is one slave slot's view of a Queue, like one beanstalkd
// connection: the entries it reserved are its own until it lets them go, its
// lease runs out, or it is closed. Its fields are guarded by the queue's mutex.
type Consumer struct {
	q       *Queue
	held    map[uint64]*entry // reserved by this consumer
	closed  bool
	waiting *waiter // set while blocked in Reserve, so Close can end it
}

var _ queue.Consumer = (*Consumer)(nil)

// lock is Queue.lock that also fails once the consumer is closed.
func (c *Consumer) lock(ctx context.Context) error {
	if err := c.q.lock(ctx); err != nil {
		return err
	}
	if c.closed {
		c.q.mu.Unlock()
		return queue.ErrClosed
	}
	return nil
}

// Reserve implements queue.Consumer.
func (c *Consumer) Reserve(ctx context.Context, timeout time.Duration) (queue.Reserved, error) {
	q := c.q
	if err := c.lock(ctx); err != nil {
		return queue.Reserved{}, err
	}
	if q.ready.Len() > 0 {
		// dispatch leaves no waiter while entries are ready, so taking the
		// first one does not jump the line.
		e := heap.Pop(&q.ready).(*entry)
		q.reserve(e, c)
		q.reschedule()
		r := reservedOf(e)
		q.mu.Unlock()
		return r, nil
	}
	if timeout <= 0 {
		q.mu.Unlock()
		return queue.Reserved{}, queue.ErrTimeout
	}
	w := &waiter{c: c, res: make(chan result, 1)}
	w.elem = q.waiters.PushBack(w)
	c.waiting = w
	q.mu.Unlock()

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var err error
	select {
	case r := <-w.res:
		return c.take(r)
	case <-timer.C:
		err = queue.ErrTimeout
	case <-ctx.Done():
		err = ctx.Err()
	}

	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case r := <-w.res:
		if r.err != nil {
			return queue.Reserved{}, r.err
		}
		// An entry arrived as we gave up. The caller has stopped waiting
		// and may not look at it, so put it back where it was rather
		// than leave it held until its TTR runs out.
		q.unreserve(r.e)
		q.makeReady(r.e)
		q.dispatch()
	default:
		q.waiters.Remove(w.elem)
		c.waiting = nil
	}
	return queue.Reserved{}, err
}

// take turns what a waiter was sent into Reserve's answer.
func (c *Consumer) take(r result) (queue.Reserved, error) {
	if r.err != nil {
		return queue.Reserved{}, r.err
	}
	return reservedOf(r.e), nil
}

// reservedOf needs no lock: an entry's id and body never change once put.
func reservedOf(e *entry) queue.Reserved {
	return queue.Reserved{ID: e.id, Body: clone(e.body)}
}

// Touch implements queue.Consumer.
func (c *Consumer) Touch(ctx context.Context, id uint64) error {
	e, err := c.hold(ctx, id)
	if err != nil {
		return err
	}
	defer c.q.mu.Unlock()
	e.at = time.Now().Add(e.ttr)
	heap.Fix(&c.q.reserved, e.index)
	c.q.reschedule()
	return nil
}

// Release implements queue.Consumer.
func (c *Consumer) Release(ctx context.Context, id uint64, priority uint32, delay time.Duration) error {
	e, err := c.hold(ctx, id)
	if err != nil {
		return err
	}
	q := c.q
	defer q.mu.Unlock()
	q.unreserve(e)
	e.priority = priority
	if delay > 0 {
		q.delay(e, delay)
	} else {
		q.makeReady(e)
	}
	q.dispatch()
	return nil
}

// Bury implements queue.Consumer.
func (c *Consumer) Bury(ctx context.Context, id uint64, priority uint32) error {
	e, err := c.hold(ctx, id)
	if err != nil {
		return err
	}
	q := c.q
	defer q.mu.Unlock()
	q.unreserve(e)
	e.priority = priority
	e.state = buried
	e.at = time.Time{}
	q.buried++
	q.reschedule()
	return nil
}

// Delete implements queue.Consumer. Unlike a beanstalkd connection, a
// consumer deletes only what it reserved: the master deletes the rest
// through Queue.Delete.
func (c *Consumer) Delete(ctx context.Context, id uint64) error {
	e, err := c.hold(ctx, id)
	if err != nil {
		return err
	}
	q := c.q
	defer q.mu.Unlock()
	q.unreserve(e)
	delete(q.entries, e.id)
	q.reschedule()
	return nil
}

// hold locks the queue and returns the entry id if this consumer holds it.
// On success the caller must unlock.
func (c *Consumer) hold(ctx context.Context, id uint64) (*entry, error) {
	if err := c.lock(ctx); err != nil {
		return nil, err
	}
	e, ok := c.held[id]
	if !ok {
		c.q.mu.Unlock()
		return nil, queue.ErrNotFound
	}
	return e, nil
}

// Close makes every entry the consumer holds ready again at once, with its
// priority, as beanstalkd does when a connection drops, and ends a Reserve
// blocked on it with queue.ErrClosed.
func (c *Consumer) Close() error {
	q := c.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || c.closed {
		return queue.ErrClosed
	}
	c.closed = true
	if c.waiting != nil {
		q.wake(c.waiting, result{err: queue.ErrClosed})
	}
	for _, e := range c.held {
		q.unreserve(e)
		q.makeReady(e)
	}
	q.dispatch()
	return nil
}
