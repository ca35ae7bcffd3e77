// Package mem is the in-process queue of dist_test, the embedded default
// behind `dist_test local`. It keeps beanstalkd's semantics (priorities,
// delays, time-to-run leases, bury) so that the master and the slaves behave
// the same on it as on a beanstalkd server.
package mem

import (
	"container/heap"
	"container/list"
	"context"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
)

// minTTR is beanstalkd's floor for a lease: shorter TTRs (and 0) are raised
// to it, so a slave always has a moment to touch what it reserved.
const minTTR = time.Second

// Queue is an in-process queue.Queue. Entries live in three heaps (ready by
// priority, delayed and reserved by time); one timer, armed for the earliest
// delay or lease end, moves them back to ready. Close stops that timer, so a
// closed Queue leaves no goroutine behind.
type Queue struct {
	mu       sync.Mutex
	closed   bool
	lastID   uint64
	entries  map[uint64]*entry
	ready    entryHeap
	delayed  entryHeap
	reserved entryHeap
	buried   int
	waiters  list.List // of *waiter, first come first served

	timer   *time.Timer // nil until first needed
	timerAt time.Time   // when timer fires; zero when stopped
}

var _ queue.Queue = (*Queue)(nil)

// New returns an empty queue.
func New() *Queue {
	return &Queue{
		entries:  make(map[uint64]*entry),
		ready:    entryHeap{less: byPriority},
		delayed:  entryHeap{less: byTime},
		reserved: entryHeap{less: byTime},
	}
}

// waiter is a consumer blocked in Reserve. Whoever removes it from the list
// sends it exactly one result on its buffered channel.
type waiter struct {
	c    *Consumer
	elem *list.Element
	res  chan result
}

type result struct {
	e   *entry
	err error
}

// lock takes the mutex for an operation, first moving every entry whose
// delay or lease has run out, so that each operation sees the queue exactly
// as of now even if the timer has not run yet. On error it is not held.
func (q *Queue) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return queue.ErrClosed
	}
	q.advance(time.Now())
	return nil
}

// Put implements queue.Queue.
func (q *Queue) Put(ctx context.Context, e queue.Entry) (uint64, error) {
	if err := q.lock(ctx); err != nil {
		return 0, err
	}
	defer q.mu.Unlock()
	q.lastID++
	en := &entry{
		id:       q.lastID,
		body:     clone(e.Body),
		priority: e.Priority,
		ttr:      max(e.TTR, minTTR),
		index:    -1,
	}
	q.entries[en.id] = en
	if e.Delay > 0 {
		q.delay(en, e.Delay)
		q.reschedule()
	} else {
		q.makeReady(en)
		q.dispatch()
	}
	return en.id, nil
}

// Exists implements queue.Queue.
func (q *Queue) Exists(ctx context.Context, id uint64) (bool, error) {
	if err := q.lock(ctx); err != nil {
		return false, err
	}
	defer q.mu.Unlock()
	_, ok := q.entries[id]
	return ok, nil
}

// Delete implements queue.Queue.
func (q *Queue) Delete(ctx context.Context, id uint64) error {
	if err := q.lock(ctx); err != nil {
		return err
	}
	defer q.mu.Unlock()
	e, ok := q.entries[id]
	if !ok || e.state == reserved {
		return queue.ErrNotFound
	}
	switch e.state {
	case ready:
		heap.Remove(&q.ready, e.index)
	case delayed:
		heap.Remove(&q.delayed, e.index)
		q.reschedule()
	case buried:
		q.buried--
	}
	delete(q.entries, id)
	return nil
}

// Stats implements queue.Queue.
func (q *Queue) Stats(ctx context.Context) (queue.Stats, error) {
	if err := q.lock(ctx); err != nil {
		return queue.Stats{}, err
	}
	defer q.mu.Unlock()
	return queue.Stats{
		Ready:    q.ready.Len(),
		Reserved: q.reserved.Len(),
		Delayed:  q.delayed.Len(),
		Buried:   q.buried,
		Waiting:  q.waiters.Len(),
	}, nil
}

// NewConsumer implements queue.Queue.
func (q *Queue) NewConsumer(ctx context.Context) (queue.Consumer, error) {
	if err := q.lock(ctx); err != nil {
		return nil, err
	}
	defer q.mu.Unlock()
	return &Consumer{q: q, held: make(map[uint64]*entry)}, nil
}

// Close stops the timer, fails every blocked Reserve with queue.ErrClosed
// and drops all entries. Every later call returns queue.ErrClosed.
func (q *Queue) Close() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return queue.ErrClosed
	}
	q.closed = true
	if q.timer != nil {
		q.timer.Stop()
	}
	for q.waiters.Len() > 0 {
		q.wake(q.waiters.Front().Value.(*waiter), result{err: queue.ErrClosed})
	}
	q.entries = nil
	q.ready.items, q.delayed.items, q.reserved.items = nil, nil, nil
	return nil
}

// tick runs on the timer's goroutine when the earliest delay or lease ends.
func (q *Queue) tick() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.timerAt = time.Time{} // fired: reschedule must arm it again
	q.advance(time.Now())
	q.reschedule()
}

// advance makes ready every delayed entry whose delay has passed and every
// reserved entry whose lease has run out, then hands them to waiters.
func (q *Queue) advance(now time.Time) {
	moved := false
	for e := q.delayed.peek(); e != nil && !e.at.After(now); e = q.delayed.peek() {
		heap.Pop(&q.delayed)
		q.makeReady(e)
		moved = true
	}
	for e := q.reserved.peek(); e != nil && !e.at.After(now); e = q.reserved.peek() {
		heap.Pop(&q.reserved)
		delete(e.owner.held, e.id)
		e.owner = nil
		q.makeReady(e)
		moved = true
	}
	if moved {
		q.dispatch()
		q.reschedule()
	}
}

// dispatch hands ready entries to waiters, oldest waiter first, keeping the
// invariant that no consumer waits while an entry is ready.
func (q *Queue) dispatch() {
	for q.ready.Len() > 0 && q.waiters.Len() > 0 {
		e := heap.Pop(&q.ready).(*entry)
		w := q.waiters.Front().Value.(*waiter)
		q.reserve(e, w.c)
		q.wake(w, result{e: e})
	}
	q.reschedule()
}

// wake removes w from the waiters and gives it its one result.
func (q *Queue) wake(w *waiter, r result) {
	q.waiters.Remove(w.elem)
	w.c.waiting = nil
	w.res <- r
}

func (q *Queue) makeReady(e *entry) {
	e.state = ready
	e.at = time.Time{}
	heap.Push(&q.ready, e)
}

func (q *Queue) delay(e *entry, d time.Duration) {
	e.state = delayed
	e.at = time.Now().Add(d)
	heap.Push(&q.delayed, e)
}

// reserve gives e, already out of the ready heap, to c with a fresh lease.
func (q *Queue) reserve(e *entry, c *Consumer) {
	e.state = reserved
	e.owner = c
	e.at = time.Now().Add(e.ttr)
	heap.Push(&q.reserved, e)
	c.held[e.id] = e
}

// unreserve takes a reserved entry away from its consumer, out of every heap.
func (q *Queue) unreserve(e *entry) {
	heap.Remove(&q.reserved, e.index)
	delete(e.owner.held, e.id)
	e.owner = nil
}

// reschedule arms the timer for the earliest delay or lease end, or stops it
// when there is none. A timer that fires early is harmless: tick finds
// nothing due and arms it again.
func (q *Queue) reschedule() {
	var next time.Time
	if e := q.delayed.peek(); e != nil {
		next = e.at
	}
	if e := q.reserved.peek(); e != nil && (next.IsZero() || e.at.Before(next)) {
		next = e.at
	}
	switch {
	case next.IsZero():
		if q.timer != nil && !q.timerAt.IsZero() {
			q.timer.Stop()
		}
		q.timerAt = time.Time{}
	case next.Equal(q.timerAt):
	case q.timer == nil:
		q.timer = time.AfterFunc(time.Until(next), q.tick)
		q.timerAt = next
	default:
		q.timer.Reset(time.Until(next))
		q.timerAt = next
	}
}

func clone(b []byte) []byte {
	return append([]byte(nil), b...)
}
