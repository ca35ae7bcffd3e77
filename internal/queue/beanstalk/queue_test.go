package beanstalk_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	gobeanstalk "github.com/beanstalkd/go-beanstalk"

	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/beanstalk"
	"github.com/dist-test/dist_test/internal/queue/queuetest"
	"github.com/dist-test/dist_test/internal/testenv"
)

// These tests run against a real beanstalkd (see testenv.Beanstalk), each
// queue on a tube of its own. beanstalkd keeps real time, so they cannot use
// synctest; the waits are about a second.

const patience = 5 * time.Second

func open(t *testing.T, addr, tube string) *beanstalk.Queue {
	t.Helper()
	q, err := beanstalk.Open(t.Context(), addr, tube, beanstalk.Options{DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// newQueue opens a queue on a fresh tube of the shared test beanstalkd.
func newQueue(t *testing.T) *beanstalk.Queue {
	t.Helper()
	addr, tube := testenv.Beanstalk(t)
	drainAtEnd(t, addr, tube)
	return open(t, addr, tube)
}

// drainAtEnd deletes, when the test ends, what it left in its tube, so that
// the shared server (whose binlog outlives the run) does not pile up
// entries. Registered before the queue's cleanups, it runs after them, when
// closed consumers have let go of what they held.
func drainAtEnd(t *testing.T, addr, tube string) {
	t.Cleanup(func() {
		c, err := gobeanstalk.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return
		}
		defer c.Close()
		tb := gobeanstalk.NewTube(c, tube)
		for _, peek := range []func() (uint64, []byte, error){tb.PeekReady, tb.PeekDelayed, tb.PeekBuried} {
			for {
				id, _, err := peek()
				if err != nil || c.Delete(id) != nil {
					break
				}
			}
		}
	})
}

func consumer(t *testing.T, q queue.Queue) queue.Consumer {
	t.Helper()
	c, err := q.NewConsumer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func put(t *testing.T, q queue.Queue, body string, priority uint32, ttr time.Duration) uint64 {
	t.Helper()
	id, err := q.Put(t.Context(), queue.Entry{Body: []byte(body), Priority: priority, TTR: ttr})
	if err != nil {
		t.Fatalf("Put(%q): %v", body, err)
	}
	return id
}

func reserveBody(t *testing.T, c queue.Consumer, timeout time.Duration, want string) queue.Reserved {
	t.Helper()
	r, err := c.Reserve(t.Context(), timeout)
	if err != nil || string(r.Body) != want {
		t.Fatalf("Reserve(%v) = id %d %q, %v; want %q", timeout, r.ID, r.Body, err, want)
	}
	return r
}

func wantStats(t *testing.T, q queue.Queue, want queue.Stats) {
	t.Helper()
	got, err := q.Stats(t.Context())
	if err != nil || got != want {
		t.Fatalf("Stats = %+v, %v; want %+v", got, err, want)
	}
}

func wantExists(t *testing.T, q queue.Queue, id uint64, want bool) {
	t.Helper()
	got, err := q.Exists(t.Context(), id)
	if err != nil || got != want {
		t.Fatalf("Exists(%d) = %v, %v; want %v", id, got, err, want)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s = %v, want %v", what, err, want)
	}
}

// eventually polls the queue's stats until cond holds.
func eventually(t *testing.T, q queue.Queue, what string, cond func(queue.Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for {
		s, err := q.Stats(t.Context())
		if err != nil {
			t.Fatalf("Stats: %v", err)
		}
		if cond(s) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not so after %v; stats %+v", what, patience, s)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	queuetest.Run(t, func(t *testing.T) queue.Queue { return newQueue(t) })
}

// TestTubeIsolation checks that queues on different tubes of one server,
// as of two dist_test clusters, see nothing of each other.
func TestTubeIsolation(t *testing.T) {
	t.Parallel()
	addr, tubeA := testenv.Beanstalk(t)
	_, tubeB := testenv.Beanstalk(t)
	drainAtEnd(t, addr, tubeA)
	drainAtEnd(t, addr, tubeB)
	a, b := open(t, addr, tubeA), open(t, addr, tubeB)

	idA := put(t, a, "a", 0, time.Minute)
	put(t, a, "a2", 0, time.Minute)
	idB := put(t, b, "b", 0, time.Minute)
	wantStats(t, a, queue.Stats{Ready: 2})
	wantStats(t, b, queue.Stats{Ready: 1})

	wantExists(t, b, idA, false)
	wantExists(t, a, idB, false)
	wantErr(t, "Delete of another tube's entry", b.Delete(t.Context(), idA), queue.ErrNotFound)
	wantExists(t, a, idA, true)

	cb := consumer(t, b)
	reserveBody(t, cb, 0, "b")
	_, err := cb.Reserve(t.Context(), 0)
	wantErr(t, "Reserve with only the other tube's entries ready", err, queue.ErrTimeout)
	wantErr(t, "consumer Delete of another tube's entry", cb.Delete(t.Context(), idA), queue.ErrNotFound)
	wantStats(t, a, queue.Stats{Ready: 2})
	wantStats(t, b, queue.Stats{Reserved: 1})

	// A consumer waiting on one tube counts only there.
	ca := consumer(t, a)
	reserveBody(t, ca, 0, "a")
	reserveBody(t, ca, 0, "a2")
	waiter := consumer(t, b)
	done := make(chan error, 1)
	go func() {
		_, err := waiter.Reserve(t.Context(), time.Second)
		done <- err
	}()
	eventually(t, b, "consumer waiting on b", func(s queue.Stats) bool { return s.Waiting == 1 })
	wantStats(t, a, queue.Stats{Reserved: 2})
	wantErr(t, "Reserve on an empty tube", <-done, queue.ErrTimeout)
}

// TestConcurrentProducers runs many Puts and Stats at once on one Queue,
// which share its one connection (run with -race).
func TestConcurrentProducers(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	const workers, each = 16, 25
	var (
		mu   sync.Mutex
		ids  = make(map[uint64]bool)
		errs []error
		wg   sync.WaitGroup
	)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				id, err := q.Put(t.Context(), queue.Entry{Body: fmt.Appendf(nil, "%d-%d", w, i), TTR: time.Minute})
				if err == nil {
					_, err = q.Stats(t.Context())
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else if ids[id] {
					errs = append(errs, fmt.Errorf("id %d given twice", id))
				}
				ids[id] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	wantStats(t, q, queue.Stats{Ready: workers * each})
}

// TestReserveCanceledWhileHolding checks that a consumer holding an entry
// keeps it through a canceled Reserve, and that an entry that came as the
// Reserve was canceled is given back rather than held.
func TestReserveCanceledWhileHolding(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	held := put(t, q, "held", 0, time.Minute)
	c := consumer(t, q)
	reserveBody(t, c, 0, "held")

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := c.Reserve(ctx, time.Minute)
		done <- err
	}()
	eventually(t, q, "consumer waiting", func(s queue.Stats) bool { return s.Waiting == 1 })
	cancel()
	late := put(t, q, "late", 0, time.Minute)
	select {
	case err := <-done:
		wantErr(t, "canceled Reserve", err, context.Canceled)
	case <-time.After(patience):
		t.Fatalf("canceled Reserve still blocked after %v", patience)
	}

	wantStats(t, q, queue.Stats{Ready: 1, Reserved: 1})
	if err := c.Touch(t.Context(), held); err != nil {
		t.Fatalf("Touch of the held entry after a canceled Reserve: %v", err)
	}
	if r := reserveBody(t, consumer(t, q), 0, "late"); r.ID != late {
		t.Fatalf("reserved id %d, want %d", r.ID, late)
	}
}

// TestConsumerDeleteAfterLease checks that a consumer whose lease ran out
// cannot delete the entry, now ready, although beanstalkd would let it.
func TestConsumerDeleteAfterLease(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	id := put(t, q, "lease", 0, time.Second)
	c := consumer(t, q)
	reserveBody(t, c, 0, "lease")
	eventually(t, q, "lease ran out", func(s queue.Stats) bool { return s.Ready == 1 })

	wantErr(t, "Delete after the lease ran out", c.Delete(t.Context(), id), queue.ErrNotFound)
	wantExists(t, q, id, true)
	if r := reserveBody(t, c, 0, "lease"); r.ID != id {
		t.Fatalf("reserved id %d again, want %d", r.ID, id)
	}
	if err := c.Delete(t.Context(), id); err != nil {
		t.Fatalf("Delete under a new lease: %v", err)
	}
	wantExists(t, q, id, false)
}

// TestPutRounding checks how durations become beanstalkd's whole seconds:
// a nil body is an empty one, a TTR of a moment is a second, a delay of a
// moment is a second rather than none.
func TestPutRounding(t *testing.T) {
	t.Parallel()
	q := newQueue(t)
	if _, err := q.Put(t.Context(), queue.Entry{Body: nil, Delay: time.Millisecond, TTR: time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	wantStats(t, q, queue.Stats{Delayed: 1})
	r, err := consumer(t, q).Reserve(t.Context(), patience)
	if err != nil || len(r.Body) != 0 {
		t.Fatalf("Reserve = %q, %v; want an empty body", r.Body, err)
	}
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	const dialTimeout = 500 * time.Millisecond

	// Something that accepts connections but never answers.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	nobody := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))

	// Something else, answering in another protocol.
	other := httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	otherAddr := strings.TrimPrefix(other.URL, "http://")

	tests := []struct {
		name, addr, tube, want string
	}{
		{"nothing listens", nobody, "dist_test", "cannot connect to beanstalkd at " + nobody},
		{"no answer", silent.Addr().String(), "dist_test", "no beanstalkd answers at " + silent.Addr().String()},
		{"not beanstalkd", otherAddr, "dist_test", "the server at " + otherAddr + " does not speak beanstalkd's protocol"},
		{"empty address", "", "dist_test", "address is empty"},
		{"empty tube", nobody, "", "tube name is empty"},
		{"bad tube", nobody, "a tube", `has ' '`},
		{"hyphen first", nobody, "-x", "may not begin with a hyphen"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			q, err := beanstalk.Open(t.Context(), tc.addr, tc.tube, beanstalk.Options{DialTimeout: dialTimeout})
			if err == nil {
				q.Close()
				t.Fatalf("Open(%q, %q) succeeded", tc.addr, tc.tube)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open(%q, %q) = %q, want one line with %q", tc.addr, tc.tube, err, tc.want)
			}
			// Generous: what matters is that Open gives up rather than
			// wait for ever.
			if took := time.Since(start); took > dialTimeout+2*time.Second {
				t.Fatalf("Open took %v with a dial timeout of %v", took, dialTimeout)
			}
		})
	}
}

// TestBareHost checks that an address without a port means port 11300.
func TestBareHost(t *testing.T) {
	t.Parallel()
	addr, tube := testenv.Beanstalk(t)
	drainAtEnd(t, addr, tube)
	host, port, err := net.SplitHostPort(addr)
	if err != nil || port != "11300" {
		t.Skipf("the test beanstalkd at %s is not on port 11300", addr)
	}
	q := open(t, host, tube)
	if q.Addr() != addr {
		t.Fatalf("Addr() = %q, want %q", q.Addr(), addr)
	}
	put(t, q, "x", 0, time.Minute)
	wantStats(t, q, queue.Stats{Ready: 1})
}
