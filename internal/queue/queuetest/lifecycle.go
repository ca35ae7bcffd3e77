package queuetest

import (
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
)

func testExistsInEveryState(t *testing.T, q queue.Queue) {
	held := put(t, q, entry("reserved", 0))
	buried := put(t, q, entry("buried", 1))
	ready := put(t, q, entry("ready", 2))
	delayed := put(t, q, queue.Entry{Body: []byte("delayed"), Delay: time.Minute, TTR: longTTR})
	c := newConsumer(t, q)
	reserveBody(t, c, "reserved")
	reserveBody(t, c, "buried")
	wantOK(t, "Bury", c.Bury(t.Context(), buried, 0))
	wantStats(t, q, queue.Stats{Ready: 1, Reserved: 1, Delayed: 1, Buried: 1})

	for _, id := range []uint64{held, buried, ready, delayed} {
		wantExists(t, q, id, true)
	}
	wantExists(t, q, 1<<62, false)
}

func testQueueDelete(t *testing.T, q queue.Queue) {
	ready := put(t, q, entry("ready", 0))
	delayed := put(t, q, queue.Entry{Body: []byte("delayed"), Delay: time.Minute, TTR: longTTR})
	wantOK(t, "Delete of a ready entry", q.Delete(t.Context(), ready))
	wantOK(t, "Delete of a delayed entry", q.Delete(t.Context(), delayed))
	wantExists(t, q, ready, false)
	wantExists(t, q, delayed, false)
	wantStats(t, q, queue.Stats{})
	wantNothingReady(t, newConsumer(t, q))

	wantErr(t, "second Delete", q.Delete(t.Context(), ready), queue.ErrNotFound)
	wantErr(t, "Delete of an id never put", q.Delete(t.Context(), 1<<62), queue.ErrNotFound)
}

func testConsumerDelete(t *testing.T, q queue.Queue) {
	id := put(t, q, entry("done", 0))
	keep := put(t, q, entry("kept", 1))
	c := newConsumer(t, q)
	reserveBody(t, c, "done")
	wantOK(t, "Delete", c.Delete(t.Context(), id))
	wantExists(t, q, id, false)
	wantExists(t, q, keep, true)
	wantStats(t, q, queue.Stats{Ready: 1})

	wantErr(t, "second Delete", c.Delete(t.Context(), id), queue.ErrNotFound)
	wantErr(t, "Touch after Delete", c.Touch(t.Context(), id), queue.ErrNotFound)
	wantErr(t, "Delete of an id never put", c.Delete(t.Context(), 1<<62), queue.ErrNotFound)
}

func testStats(t *testing.T, q queue.Queue) {
	wantStats(t, q, queue.Stats{})
	put(t, q, entry("a", 1))
	b := put(t, q, entry("b", 2))
	put(t, q, entry("c", 3))
	put(t, q, queue.Entry{Body: []byte("d"), Delay: time.Minute, TTR: longTTR})
	wantStats(t, q, queue.Stats{Ready: 3, Delayed: 1})

	a := newConsumer(t, q)
	reserveBody(t, a, "a")
	reserveBody(t, a, "b")
	wantOK(t, "Bury", a.Bury(t.Context(), b, 0))
	wantStats(t, q, queue.Stats{Ready: 1, Reserved: 1, Delayed: 1, Buried: 1})
	reserveBody(t, a, "c")
	wantStats(t, q, queue.Stats{Reserved: 2, Delayed: 1, Buried: 1})

	waiter := newConsumer(t, q)
	done := reserveAsync(t.Context(), waiter, patience)
	eventually(t, q, "one consumer waiting", func(s queue.Stats) bool { return s.Waiting == 1 })
	wantStats(t, q, queue.Stats{Reserved: 2, Delayed: 1, Buried: 1, Waiting: 1})

	e := put(t, q, entry("e", 0))
	if res := await(t, done); res.err != nil || res.r.ID != e {
		t.Fatalf("waiting Reserve = id %d, %v; want id %d", res.r.ID, res.err, e)
	}
	wantStats(t, q, queue.Stats{Reserved: 3, Delayed: 1, Buried: 1})
}

// testQueueClose checks that Close ends blocked Reserves and that every call
// after it fails with ErrClosed.
func testQueueClose(t *testing.T, q queue.Queue) {
	id := put(t, q, entry("held", 0))
	holder, waiter := newConsumer(t, q), newConsumer(t, q)
	reserveBody(t, holder, "held")
	done := reserveAsync(t.Context(), waiter, time.Minute)
	eventually(t, q, "consumer waiting", func(s queue.Stats) bool { return s.Waiting == 1 })

	wantOK(t, "Close", q.Close())
	wantErr(t, "Reserve blocked during Close", await(t, done).err, queue.ErrClosed)

	ctx := t.Context()
	_, err := q.Put(ctx, entry("late", 0))
	wantErr(t, "Put after Close", err, queue.ErrClosed)
	_, err = q.Exists(ctx, id)
	wantErr(t, "Exists after Close", err, queue.ErrClosed)
	wantErr(t, "Delete after Close", q.Delete(ctx, id), queue.ErrClosed)
	_, err = q.Stats(ctx)
	wantErr(t, "Stats after Close", err, queue.ErrClosed)
	_, err = q.NewConsumer(ctx)
	wantErr(t, "NewConsumer after Close", err, queue.ErrClosed)

	_, err = holder.Reserve(ctx, 0)
	wantErr(t, "Consumer.Reserve after Close", err, queue.ErrClosed)
	wantErr(t, "Consumer.Touch after Close", holder.Touch(ctx, id), queue.ErrClosed)
	wantErr(t, "Consumer.Release after Close", holder.Release(ctx, id, 0, 0), queue.ErrClosed)
	wantErr(t, "Consumer.Bury after Close", holder.Bury(ctx, id, 0), queue.ErrClosed)
	wantErr(t, "Consumer.Delete after Close", holder.Delete(ctx, id), queue.ErrClosed)
}
