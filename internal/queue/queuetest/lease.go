package queuetest

import (
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
)

func testDelay(t *testing.T, q queue.Queue) {
	start := time.Now()
	// A delayed entry waits even when its priority is the best.
	id := put(t, q, queue.Entry{Body: []byte("delayed"), Priority: 0, Delay: delay, TTR: longTTR})
	put(t, q, entry("ready", 10))
	wantStats(t, q, queue.Stats{Ready: 1, Delayed: 1})
	wantExists(t, q, id, true)

	c := newConsumer(t, q)
	r := reserveBody(t, c, "ready")
	wantOK(t, "Delete", c.Delete(t.Context(), r.ID))
	wantNothingReady(t, c)

	if r := reserve(t, c, patience); r.ID != id {
		t.Fatalf("reserved id %d, want the delayed entry %d", r.ID, id)
	}
	notBefore(t, "delayed entry reserved", start, delay)
	wantStats(t, q, queue.Stats{Reserved: 1})
}

func testTTRExpiry(t *testing.T, q queue.Queue) {
	id := put(t, q, queue.Entry{Body: []byte("lease"), TTR: shortTTR})
	a, b := newConsumer(t, q), newConsumer(t, q)
	start := time.Now()
	reserveBody(t, a, "lease")
	wantStats(t, q, queue.Stats{Reserved: 1})
	wantNothingReady(t, b)

	// Nobody touches it: it comes back by itself, to another consumer.
	if r := reserve(t, b, patience); r.ID != id || string(r.Body) != "lease" {
		t.Fatalf("after the TTR, reserved id %d %q; want id %d \"lease\"", r.ID, r.Body, id)
	}
	notBefore(t, "entry back after its TTR", start, shortTTR)

	// The first consumer lost it for good.
	wantErr(t, "Touch by the consumer whose lease ran out", a.Touch(t.Context(), id), queue.ErrNotFound)
	wantErr(t, "Release by the consumer whose lease ran out", a.Release(t.Context(), id, 0, 0), queue.ErrNotFound)
	wantErr(t, "Bury by the consumer whose lease ran out", a.Bury(t.Context(), id, 0), queue.ErrNotFound)
	wantErr(t, "Delete by the consumer whose lease ran out", a.Delete(t.Context(), id), queue.ErrNotFound)
	wantOK(t, "Delete by the new holder", b.Delete(t.Context(), id))
	wantExists(t, q, id, false)
}

// testTTRFloor checks that a TTR below one second (0 included) is raised to
// one second, as beanstalkd does, rather than expiring at once.
func testTTRFloor(t *testing.T, q queue.Queue) {
	zero := put(t, q, queue.Entry{Body: []byte("zero"), TTR: 0})
	tiny := put(t, q, queue.Entry{Body: []byte("tiny"), TTR: time.Millisecond})
	a, b := newConsumer(t, q), newConsumer(t, q)
	start := time.Now()
	reserveBody(t, a, "zero")
	reserveBody(t, a, "tiny")

	time.Sleep(300 * time.Millisecond)
	wantOK(t, "Touch of a TTR 0 entry after 300ms", a.Touch(t.Context(), zero))
	wantOK(t, "Touch of a TTR 1ms entry after 300ms", a.Touch(t.Context(), tiny))
	wantNothingReady(t, b)

	back := make(map[uint64]bool)
	for range 2 {
		r := reserve(t, b, patience)
		back[r.ID] = true
		// Let go at once: beanstalkd refuses to reserve for a consumer
		// holding an entry within a second of its deadline.
		wantOK(t, "Delete", b.Delete(t.Context(), r.ID))
	}
	if !back[zero] || !back[tiny] {
		t.Fatalf("got back ids %v, want %d and %d", back, zero, tiny)
	}
	notBefore(t, "entries back after a raised TTR", start, 300*time.Millisecond+time.Second)
}

func testTouchExtendsLease(t *testing.T, q queue.Queue) {
	id := put(t, q, queue.Entry{Body: []byte("touched"), TTR: shortTTR})
	a, b := newConsumer(t, q), newConsumer(t, q)
	reserveBody(t, a, "touched")

	// Twice the TTR passes, but never more than 40% of it between touches.
	for range 5 {
		time.Sleep(shortTTR * 2 / 5)
		wantOK(t, "Touch", a.Touch(t.Context(), id))
		wantNothingReady(t, b)
	}
	wantStats(t, q, queue.Stats{Reserved: 1})
	wantOK(t, "Delete after touching", a.Delete(t.Context(), id))
	wantExists(t, q, id, false)
}

func testRelease(t *testing.T, q queue.Queue) {
	first := put(t, q, entry("first", 10))
	put(t, q, entry("second", 20))
	a, b := newConsumer(t, q), newConsumer(t, q)
	reserveBody(t, a, "first")

	// Released with a worse priority, it now comes after "second".
	wantOK(t, "Release", a.Release(t.Context(), first, 30, 0))
	wantStats(t, q, queue.Stats{Ready: 2})
	wantErr(t, "Touch after Release", a.Touch(t.Context(), first), queue.ErrNotFound)
	wantErr(t, "second Release", a.Release(t.Context(), first, 30, 0), queue.ErrNotFound)

	reserveBody(t, b, "second")
	if r := reserveBody(t, b, "first"); r.ID != first {
		t.Fatalf("released entry came back as id %d, want %d", r.ID, first)
	}
}

func testReleaseWithDelay(t *testing.T, q queue.Queue) {
	id := put(t, q, entry("later", 0))
	a, b := newConsumer(t, q), newConsumer(t, q)
	reserveBody(t, a, "later")
	start := time.Now()
	wantOK(t, "Release with delay", a.Release(t.Context(), id, 0, delay))
	wantStats(t, q, queue.Stats{Delayed: 1})
	wantExists(t, q, id, true)
	wantNothingReady(t, b)

	if r := reserve(t, b, patience); r.ID != id {
		t.Fatalf("reserved id %d, want the released entry %d", r.ID, id)
	}
	notBefore(t, "released entry ready", start, delay)
}

func testBury(t *testing.T, q queue.Queue) {
	id := put(t, q, entry("buried", 0))
	put(t, q, entry("other", 1))
	a := newConsumer(t, q)
	reserveBody(t, a, "buried")
	wantOK(t, "Bury", a.Bury(t.Context(), id, 5))
	wantStats(t, q, queue.Stats{Ready: 1, Buried: 1})
	wantExists(t, q, id, true)
	wantErr(t, "Touch after Bury", a.Touch(t.Context(), id), queue.ErrNotFound)
	wantErr(t, "Release after Bury", a.Release(t.Context(), id, 0, 0), queue.ErrNotFound)

	// The buried entry, best priority or not, is never handed out.
	r := reserveBody(t, a, "other")
	wantOK(t, "Delete", a.Delete(t.Context(), r.ID))
	wantNothingReady(t, newConsumer(t, q))
	wantStats(t, q, queue.Stats{Buried: 1})

	wantOK(t, "Queue.Delete of a buried entry", q.Delete(t.Context(), id))
	wantExists(t, q, id, false)
	wantStats(t, q, queue.Stats{})
}

// testOwnership checks that what one consumer reserved is out of reach of
// every other consumer and of the producer.
func testOwnership(t *testing.T, q queue.Queue) {
	id := put(t, q, entry("mine", 0))
	a, b := newConsumer(t, q), newConsumer(t, q)
	reserveBody(t, a, "mine")

	wantErr(t, "Touch by another consumer", b.Touch(t.Context(), id), queue.ErrNotFound)
	wantErr(t, "Release by another consumer", b.Release(t.Context(), id, 0, 0), queue.ErrNotFound)
	wantErr(t, "Bury by another consumer", b.Bury(t.Context(), id, 0), queue.ErrNotFound)
	wantErr(t, "Delete by another consumer", b.Delete(t.Context(), id), queue.ErrNotFound)
	wantErr(t, "Queue.Delete of a reserved entry", q.Delete(t.Context(), id), queue.ErrNotFound)
	wantExists(t, q, id, true)
	wantStats(t, q, queue.Stats{Reserved: 1})

	// None of that disturbed the holder.
	wantOK(t, "Touch by the holder", a.Touch(t.Context(), id))
	wantOK(t, "Delete by the holder", a.Delete(t.Context(), id))
	wantExists(t, q, id, false)
}

func testConsumerCloseReleases(t *testing.T, q queue.Queue) {
	first := put(t, q, entry("first", 1))
	second := put(t, q, entry("second", 2))
	a, b := newConsumer(t, q), newConsumer(t, q)
	reserveBody(t, a, "first")
	reserveBody(t, a, "second")
	wantNothingReady(t, b)

	// The lease is a minute: only the Close can bring them back this soon,
	// and in their priority order.
	wantOK(t, "Consumer.Close", a.Close())
	if r := reserve(t, b, patience); r.ID != first {
		t.Fatalf("after Close reserved id %d %q, want %d \"first\"", r.ID, r.Body, first)
	}
	if r := reserve(t, b, patience); r.ID != second {
		t.Fatalf("after Close reserved id %d %q, want %d \"second\"", r.ID, r.Body, second)
	}

	_, err := a.Reserve(t.Context(), 0)
	wantErr(t, "Reserve on a closed consumer", err, queue.ErrClosed)
}

func wantOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}
