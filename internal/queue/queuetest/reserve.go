package queuetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
)

func testIDsIncrease(t *testing.T, q queue.Queue) {
	var last uint64
	for i := range 5 {
		id := put(t, q, entry(fmt.Sprint(i), 0))
		if id == 0 || id <= last {
			t.Fatalf("put %d got id %d after id %d; want increasing non-zero ids", i, id, last)
		}
		last = id
	}
}

func testPriorityOrder(t *testing.T, q queue.Queue) {
	puts := []struct {
		body     string
		priority uint32
	}{
		{"p5", 5}, {"p1-first", 1}, {"p3-first", 3}, {"p1-second", 1},
		{"pmax", math.MaxUint32}, {"p0", 0}, {"p3-second", 3}, {"p1-third", 1},
	}
	ids := make(map[string]uint64)
	for _, p := range puts {
		ids[p.body] = put(t, q, entry(p.body, p.priority))
	}
	c := newConsumer(t, q)
	for _, want := range []string{"p0", "p1-first", "p1-second", "p1-third", "p3-first", "p3-second", "p5", "pmax"} {
		if r := reserveBody(t, c, want); r.ID != ids[want] {
			t.Fatalf("%s reserved with id %d, put with id %d", want, r.ID, ids[want])
		}
	}
	wantNothingReady(t, c)
}

func testBodiesRoundTrip(t *testing.T, q queue.Queue) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	// The largest body a default beanstalkd accepts (max-job-size 65535).
	large := make([]byte, 64<<10-1)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range large {
		large[i] = byte(rng.Uint32())
	}
	bodies := [][]byte{
		{},
		[]byte("x"),
		[]byte("line one\r\nline two\r\n"),
		every,
		large,
	}
	var sent [][]byte
	for _, b := range bodies {
		in := bytes.Clone(b)
		put(t, q, queue.Entry{Body: in, TTR: longTTR})
		// The queue must have kept its own copy.
		for i := range in {
			in[i] ^= 0xff
		}
		sent = append(sent, b)
	}
	c := newConsumer(t, q)
	for i, want := range sent {
		r := reserve(t, c, 0)
		if !bytes.Equal(r.Body, want) {
			t.Fatalf("body %d: got %d bytes, want %d bytes (first difference at %d)",
				i, len(r.Body), len(want), firstDiff(r.Body, want))
		}
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func testReserveTimeout(t *testing.T, q queue.Queue) {
	c := newConsumer(t, q)
	wantNothingReady(t, c)
	start := time.Now()
	_, err := c.Reserve(t.Context(), time.Second)
	wantErr(t, "Reserve(1s) on an empty queue", err, queue.ErrTimeout)
	notBefore(t, "Reserve(1s) timed out", start, time.Second)
	wantStats(t, q, queue.Stats{})
}

func testReserveContext(t *testing.T, q queue.Queue) {
	c := newConsumer(t, q)

	canceled, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := c.Reserve(canceled, patience)
	wantErr(t, "Reserve with a canceled context", err, context.Canceled)

	ctx, cancel := context.WithCancel(t.Context())
	done := reserveAsync(ctx, c, time.Minute)
	eventually(t, q, "consumer waiting", func(s queue.Stats) bool { return s.Waiting == 1 })
	cancel()
	wantErr(t, "Reserve canceled while waiting", await(t, done).err, context.Canceled)
	eventually(t, q, "no consumer waiting", func(s queue.Stats) bool { return s.Waiting == 0 })

	ctx, cancel = context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = c.Reserve(ctx, time.Minute)
	wantErr(t, "Reserve past its context's deadline", err, context.DeadlineExceeded)

	// The abandoned Reserves must not have taken what comes next.
	id := put(t, q, entry("after", 0))
	if r := reserve(t, newConsumer(t, q), patience); r.ID != id {
		t.Fatalf("reserved id %d, want %d", r.ID, id)
	}
}

func testReserveWakesOnPut(t *testing.T, q queue.Queue) {
	c := newConsumer(t, q)
	done := reserveAsync(t.Context(), c, patience)
	eventually(t, q, "consumer waiting", func(s queue.Stats) bool { return s.Waiting == 1 })
	id := put(t, q, entry("wake", 0))
	res := await(t, done)
	if res.err != nil || res.r.ID != id || string(res.r.Body) != "wake" {
		t.Fatalf("blocked Reserve = id %d %q, %v; want id %d \"wake\"", res.r.ID, res.r.Body, res.err, id)
	}
	wantStats(t, q, queue.Stats{Reserved: 1})
}

// testConcurrentReserve has consumers wait while entries are put, and
// checks that every entry reaches exactly one of them.
func testConcurrentReserve(t *testing.T, q queue.Queue) {
	const consumers, entries = 8, 200
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()

	var (
		mu   sync.Mutex
		got  = make(map[uint64]string)
		dups []string
		errs []error
	)
	var wg sync.WaitGroup
	for i := range consumers {
		c := newConsumer(t, q)
		wg.Go(func() {
			for {
				r, err := c.Reserve(ctx, patience)
				if ctx.Err() != nil {
					return
				}
				if err == nil {
					err = c.Delete(ctx, r.ID)
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("consumer %d: %w", i, err))
					mu.Unlock()
					return
				}
				if prev, ok := got[r.ID]; ok {
					dups = append(dups, fmt.Sprintf("id %d (%q and %q)", r.ID, prev, r.Body))
				}
				got[r.ID] = string(r.Body)
				if len(got) == entries {
					cancel()
				}
				mu.Unlock()
			}
		})
	}
	want := make(map[uint64]string)
	for i := range entries {
		e := queue.Entry{Body: fmt.Appendf(nil, "entry-%d", i), Priority: uint32(i % 7), TTR: longTTR}
		want[put(t, q, e)] = string(e.Body)
	}
	wg.Wait()

	if len(dups) > 0 {
		t.Fatalf("delivered more than once: %v", dups)
	}
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for id, body := range want {
		if got[id] != body {
			t.Fatalf("entry %d: delivered %q, want %q", id, got[id], body)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("delivered %d entries, put %d", len(got), len(want))
	}
	// A consumer stopped by ctx may leave its last reserve pending at the
	// server (beanstalkd counts it waiting) until that reserve times out.
	eventually(t, q, "the queue empty with nobody waiting", func(s queue.Stats) bool { return s == queue.Stats{} })
}
