// Package queuetest is the conformance suite every queue.Queue of dist_test
// must pass: the in-process mem queue and the beanstalkd one alike. It only
// uses the queue interfaces and real time, with leases and delays of about a
// second, so that it can run against a real beanstalkd server.
//
// Because it may run against beanstalkd, the suite sticks to what both can
// honour: delays, TTRs and Reserve timeouts in whole seconds; a consumer
// holding an entry with a 1 s TTR never reserves again (beanstalkd would
// answer DEADLINE_SOON); bodies at most 65535 bytes (beanstalkd's default
// max-job-size); ids compared for order, never for value.
package queuetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
)

const (
	// shortTTR is the lease of entries whose expiry a test waits for.
	shortTTR = time.Second
	// longTTR is the lease of entries that must not expire during a test.
	longTTR = time.Minute
	// delay is how long delayed entries wait in tests that see them ready.
	delay = time.Second
	// patience bounds every wait for something that must happen.
	patience = 5 * time.Second
	// slack absorbs the clock skew between the test and a queue server
	// when checking that something did not happen too early.
	slack = 100 * time.Millisecond
)

// Run runs the suite. newQueue must return a new, empty queue for each
// subtest; the suite closes it when the subtest ends (and ignores the error
// of that Close, so closing twice may fail).
func Run(t *testing.T, newQueue func(t *testing.T) queue.Queue) {
	tests := []struct {
		name string
		fn   func(t *testing.T, q queue.Queue)
	}{
		{"IDsIncrease", testIDsIncrease},
		{"PriorityOrder", testPriorityOrder},
		{"BodiesRoundTrip", testBodiesRoundTrip},
		{"ExistsInEveryState", testExistsInEveryState},
		{"Delay", testDelay},
		{"ReserveTimeout", testReserveTimeout},
		{"ReserveContext", testReserveContext},
		{"ReserveWakesOnPut", testReserveWakesOnPut},
		{"ConcurrentReserve", testConcurrentReserve},
		{"TTRExpiry", testTTRExpiry},
		{"TTRFloor", testTTRFloor},
		{"TouchExtendsLease", testTouchExtendsLease},
		{"Release", testRelease},
		{"ReleaseWithDelay", testReleaseWithDelay},
		{"Bury", testBury},
		{"Ownership", testOwnership},
		{"QueueDelete", testQueueDelete},
		{"ConsumerDelete", testConsumerDelete},
		{"ConsumerCloseReleases", testConsumerCloseReleases},
		{"Stats", testStats},
		{"QueueClose", testQueueClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newQueue(t)
			t.Cleanup(func() { _ = q.Close() })
			tc.fn(t, q)
		})
	}
}

// entry is an entry with a lease long enough never to expire in a test.
func entry(body string, priority uint32) queue.Entry {
	return queue.Entry{Body: []byte(body), Priority: priority, TTR: longTTR}
}

func put(t *testing.T, q queue.Queue, e queue.Entry) uint64 {
	t.Helper()
	id, err := q.Put(t.Context(), e)
	if err != nil {
		t.Fatalf("Put(%q): %v", e.Body, err)
	}
	return id
}

func newConsumer(t *testing.T, q queue.Queue) queue.Consumer {
	t.Helper()
	c, err := q.NewConsumer(t.Context())
	if err != nil {
		t.Fatalf("NewConsumer: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// reserve reserves an entry, failing the test if none comes within timeout.
func reserve(t *testing.T, c queue.Consumer, timeout time.Duration) queue.Reserved {
	t.Helper()
	r, err := c.Reserve(t.Context(), timeout)
	if err != nil {
		t.Fatalf("Reserve(%v): %v", timeout, err)
	}
	return r
}

// reserveBody reserves at once and checks the body of what came.
func reserveBody(t *testing.T, c queue.Consumer, want string) queue.Reserved {
	t.Helper()
	r := reserve(t, c, 0)
	if string(r.Body) != want {
		t.Fatalf("reserved %q (id %d), want %q", r.Body, r.ID, want)
	}
	return r
}

// wantNothingReady checks that a Reserve with timeout 0 times out.
func wantNothingReady(t *testing.T, c queue.Consumer) {
	t.Helper()
	r, err := c.Reserve(t.Context(), 0)
	if !errors.Is(err, queue.ErrTimeout) {
		t.Fatalf("Reserve(0) = id %d %q, %v; want ErrTimeout", r.ID, r.Body, err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", what, err, want)
	}
}

func wantExists(t *testing.T, q queue.Queue, id uint64, want bool) {
	t.Helper()
	ok, err := q.Exists(t.Context(), id)
	if err != nil {
		t.Fatalf("Exists(%d): %v", id, err)
	}
	if ok != want {
		t.Fatalf("Exists(%d) = %v, want %v", id, ok, want)
	}
}

func stats(t *testing.T, q queue.Queue) queue.Stats {
	t.Helper()
	s, err := q.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func wantStats(t *testing.T, q queue.Queue, want queue.Stats) {
	t.Helper()
	if got := stats(t, q); got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

// eventually polls the queue's stats until cond holds, for consumers that
// block in another goroutine.
func eventually(t *testing.T, q queue.Queue, what string, cond func(queue.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		s := stats(t, q)
		if cond(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %v; stats %+v", what, patience, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// notBefore checks that at least d passed since start, for things that must
// not happen early.
func notBefore(t *testing.T, what string, start time.Time, d time.Duration) {
	t.Helper()
	if got := time.Since(start); got < d-slack {
		t.Fatalf("%s after %v, want not before %v", what, got, d)
	}
}

// reserveAsync starts a Reserve in another goroutine; the channel gets its
// one outcome.
func reserveAsync(ctx context.Context, c queue.Consumer, timeout time.Duration) <-chan reserveResult {
	ch := make(chan reserveResult, 1)
	go func() {
		r, err := c.Reserve(ctx, timeout)
		ch <- reserveResult{r, err}
	}()
	return ch
}

type reserveResult struct {
	r   queue.Reserved
	err error
}

// await waits for the outcome of reserveAsync.
func await(t *testing.T, ch <-chan reserveResult) reserveResult {
	t.Helper()
	select {
	case res := <-ch:
		return res
	case <-time.After(2 * patience):
		t.Fatalf("Reserve still blocked after %v", 2*patience)
		return reserveResult{}
	}
}
