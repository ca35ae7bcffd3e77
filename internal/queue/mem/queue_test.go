package mem_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/internal/queue/queuetest"
)

func TestConformance(t *testing.T) {
	queuetest.Run(t, func(*testing.T) queue.Queue { return mem.New() })
}

// The tests below use synctest's virtual clock, so they check leases and
// delays to the nanosecond without sleeping.

func newQueue(t *testing.T) *mem.Queue {
	q := mem.New()
	t.Cleanup(func() { _ = q.Close() })
	return q
}

func consumer(t *testing.T, q *mem.Queue) queue.Consumer {
	t.Helper()
	c, err := q.NewConsumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func put(t *testing.T, q *mem.Queue, e queue.Entry) uint64 {
	t.Helper()
	id, err := q.Put(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func reserveNow(t *testing.T, c queue.Consumer, want uint64) {
	t.Helper()
	r, err := c.Reserve(t.Context(), 0)
	if err != nil || r.ID != want {
		t.Fatalf("Reserve(0) = id %d, %v; want id %d", r.ID, err, want)
	}
}

func nothingReady(t *testing.T, c queue.Consumer) {
	t.Helper()
	if r, err := c.Reserve(t.Context(), 0); !errors.Is(err, queue.ErrTimeout) {
		t.Fatalf("Reserve(0) = id %d, %v; want ErrTimeout", r.ID, err)
	}
}

func wantStats(t *testing.T, q *mem.Queue, want queue.Stats) {
	t.Helper()
	got, err := q.Stats(t.Context())
	if err != nil || got != want {
		t.Fatalf("Stats = %+v, %v; want %+v", got, err, want)
	}
}

func TestIDsStartAtOne(t *testing.T) {
	q := newQueue(t)
	for want := uint64(1); want <= 3; want++ {
		if id := put(t, q, queue.Entry{}); id != want {
			t.Fatalf("id %d, want %d", id, want)
		}
	}
}

func TestLeaseEndsExactlyAtTTR(t *testing.T) {
	tests := []struct {
		name  string
		ttr   time.Duration
		lease time.Duration
	}{
		{"ten minutes", 10 * time.Minute, 10 * time.Minute},
		{"zero raised to one second", 0, time.Second},
		{"one nanosecond raised to one second", time.Nanosecond, time.Second},
		{"one and a half seconds kept", 1500 * time.Millisecond, 1500 * time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := newQueue(t)
				id := put(t, q, queue.Entry{TTR: tc.ttr})
				a, b := consumer(t, q), consumer(t, q)
				reserveNow(t, a, id)
				time.Sleep(tc.lease - time.Nanosecond)
				nothingReady(t, b)
				time.Sleep(time.Nanosecond)
				reserveNow(t, b, id)
				if err := a.Touch(t.Context(), id); !errors.Is(err, queue.ErrNotFound) {
					t.Fatalf("Touch by the former holder = %v, want ErrNotFound", err)
				}
			})
		})
	}
}

func TestTouchRestartsTTR(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		id := put(t, q, queue.Entry{TTR: 10 * time.Minute})
		a, b := consumer(t, q), consumer(t, q)
		reserveNow(t, a, id)
		for range 3 {
			time.Sleep(9 * time.Minute)
			if err := a.Touch(t.Context(), id); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10*time.Minute - time.Nanosecond)
		nothingReady(t, b)
		time.Sleep(time.Nanosecond)
		reserveNow(t, b, id)
	})
}

func TestDelayAndReleaseDelayEndExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		id := put(t, q, queue.Entry{Delay: time.Hour, TTR: time.Hour})
		c := consumer(t, q)
		time.Sleep(time.Hour - time.Nanosecond)
		nothingReady(t, c)
		wantStats(t, q, queue.Stats{Delayed: 1})
		time.Sleep(time.Nanosecond)
		reserveNow(t, c, id)

		if err := c.Release(t.Context(), id, 7, 30*time.Minute); err != nil {
			t.Fatal(err)
		}
		time.Sleep(30*time.Minute - time.Nanosecond)
		nothingReady(t, c)
		time.Sleep(time.Nanosecond)
		reserveNow(t, c, id)
	})
}

// TestTimerWakesWaiter checks that entries come back by themselves, with no
// other call to the queue, to a consumer already blocked in Reserve.
func TestTimerWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		leased := put(t, q, queue.Entry{TTR: 5 * time.Minute})
		delayed := put(t, q, queue.Entry{Delay: 7 * time.Minute, TTR: time.Hour})
		a, b := consumer(t, q), consumer(t, q)
		start := time.Now()
		reserveNow(t, a, leased)

		for _, want := range []struct {
			id    uint64
			after time.Duration
		}{{leased, 5 * time.Minute}, {delayed, 7 * time.Minute}} {
			r, err := b.Reserve(t.Context(), time.Hour)
			if err != nil || r.ID != want.id {
				t.Fatalf("Reserve = id %d, %v; want id %d", r.ID, err, want.id)
			}
			if got := time.Since(start); got != want.after {
				t.Fatalf("id %d came after %v, want %v", r.ID, got, want.after)
			}
		}
	})
}

// TestDelayedPutWakesWaiter puts a delayed entry while a consumer waits and
// nothing else happens: the entry must still reach it when the delay ends.
func TestDelayedPutWakesWaiter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		c := consumer(t, q)
		got := make(chan queue.Reserved, 1)
		go func() {
			r, err := c.Reserve(t.Context(), time.Hour)
			if err != nil {
				t.Error(err)
			}
			got <- r
		}()
		synctest.Wait()
		start := time.Now()
		id := put(t, q, queue.Entry{Delay: 3 * time.Minute, TTR: time.Hour})
		if r := <-got; r.ID != id || time.Since(start) != 3*time.Minute {
			t.Fatalf("waiter got id %d after %v, want id %d after 3m", r.ID, time.Since(start), id)
		}
	})
}

func TestReserveTimesOutExactly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		c := consumer(t, q)
		start := time.Now()
		_, err := c.Reserve(t.Context(), time.Hour)
		if !errors.Is(err, queue.ErrTimeout) || time.Since(start) != time.Hour {
			t.Fatalf("Reserve(1h) = %v after %v; want ErrTimeout after 1h", err, time.Since(start))
		}
		wantStats(t, q, queue.Stats{})
	})
}

func TestWaitersServedInArrivalOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		const n = 4
		got := make([]uint64, n)
		var wg sync.WaitGroup
		for i := range n {
			c := consumer(t, q)
			wg.Go(func() {
				r, err := c.Reserve(t.Context(), time.Hour)
				if err != nil {
					t.Error(err)
				}
				got[i] = r.ID
			})
			synctest.Wait() // consumer i is blocked before i+1 starts
		}
		wantStats(t, q, queue.Stats{Waiting: n})
		for i := range n {
			put(t, q, queue.Entry{Priority: uint32(n - i)}) // priority must not matter here
		}
		wg.Wait()
		for i, id := range got {
			if id != uint64(i+1) {
				t.Fatalf("waiter %d got id %d, want %d (ids by waiter: %v)", i, id, i+1, got)
			}
		}
	})
}

// TestGivingUpHandsBack cancels a waiting Reserve just before an entry is
// put. Whether or not the entry was already on its way to that Reserve, it
// must end up ready, not held by a consumer that has stopped listening.
func TestGivingUpHandsBack(t *testing.T) {
	for i := range 50 {
		synctest.Test(t, func(t *testing.T) {
			q := newQueue(t)
			c := consumer(t, q)
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() {
				_, err := c.Reserve(ctx, time.Hour)
				done <- err
			}()
			synctest.Wait()
			cancel()
			id := put(t, q, queue.Entry{})
			if err := <-done; !errors.Is(err, context.Canceled) {
				t.Fatalf("round %d: Reserve = %v, want context.Canceled", i, err)
			}
			wantStats(t, q, queue.Stats{Ready: 1})
			reserveNow(t, consumer(t, q), id)
		})
	}
}

func TestConsumerCloseEndsItsReserve(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		c := consumer(t, q)
		done := make(chan error, 1)
		go func() {
			_, err := c.Reserve(t.Context(), time.Hour)
			done <- err
		}()
		synctest.Wait()
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, queue.ErrClosed) {
			t.Fatalf("Reserve during Close = %v, want ErrClosed", err)
		}
		wantStats(t, q, queue.Stats{})
		// The entry must go to a live consumer, not the closed one.
		id := put(t, q, queue.Entry{})
		reserveNow(t, consumer(t, q), id)
	})
}

func TestCloseTwice(t *testing.T) {
	q := mem.New()
	c := consumer(t, q)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("second Consumer.Close = %v, want ErrClosed", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("second Queue.Close = %v, want ErrClosed", err)
	}
}

func TestReservedBodyIsACopy(t *testing.T) {
	q := newQueue(t)
	id := put(t, q, queue.Entry{Body: []byte("body")})
	c := consumer(t, q)
	r, err := c.Reserve(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	copy(r.Body, "XXXX")
	if err := c.Release(t.Context(), id, 0, 0); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Reserve(t.Context(), 0); err != nil || string(r.Body) != "body" {
		t.Fatalf("Reserve after release = %q, %v; want \"body\"", r.Body, err)
	}
}

// TestRandomOperations runs consumers doing every operation at random while
// the producer puts and deletes, then checks that the counts add up: every
// entry that still exists is counted in exactly one state.
func TestRandomOperations(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := newQueue(t)
		ctx := t.Context()
		const consumers, rounds = 6, 300
		var wg sync.WaitGroup
		for i := range consumers {
			c := consumer(t, q)
			rng := rand.New(rand.NewPCG(uint64(i), 1))
			wg.Go(func() {
				defer c.Close()
				for range rounds {
					r, err := c.Reserve(ctx, time.Duration(rng.IntN(3))*time.Second)
					if errors.Is(err, queue.ErrTimeout) {
						continue
					}
					if err != nil {
						t.Errorf("Reserve: %v", err)
						return
					}
					switch rng.IntN(5) {
					case 0:
						err = c.Touch(ctx, r.ID)
					case 1:
						err = c.Release(ctx, r.ID, rng.Uint32N(4), time.Duration(rng.IntN(2))*time.Second)
					case 2:
						err = c.Bury(ctx, r.ID, 0)
					case 3:
						err = c.Delete(ctx, r.ID)
					case 4:
						time.Sleep(2 * time.Second) // past the TTR: it comes back
					}
					if err != nil && !errors.Is(err, queue.ErrNotFound) {
						t.Errorf("consumer %d: %v", i, err)
						return
					}
				}
			})
		}
		var ids []uint64
		for i := range 500 {
			e := queue.Entry{Body: fmt.Appendf(nil, "%d", i), Priority: uint32(i % 3), TTR: time.Second}
			if i%4 == 0 {
				e.Delay = time.Second
			}
			ids = append(ids, put(t, q, e))
			if i%10 == 0 {
				// Fails for reserved entries; that is fine.
				_ = q.Delete(ctx, ids[i/2])
			}
			if i%50 == 0 {
				time.Sleep(time.Second)
			}
		}
		wg.Wait()

		s, err := q.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		exist := 0
		for _, id := range ids {
			if ok, err := q.Exists(ctx, id); err != nil {
				t.Fatal(err)
			} else if ok {
				exist++
			}
		}
		if s.Reserved != 0 || s.Waiting != 0 || s.Ready+s.Delayed+s.Buried != exist {
			t.Fatalf("stats %+v after every consumer closed, with %d entries existing", s, exist)
		}
	})
}
