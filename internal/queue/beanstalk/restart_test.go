package beanstalk_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/beanstalk"
	"github.com/dist-test/dist_test/internal/testenv"
)

// TestRestart kills a beanstalkd of the test's own under a queue and a
// consumer and starts it again on the same binlog: the producer goes on
// after redialing, the entries are still there, and the consumer reports
// the lost connection once, then works again.
func TestRestart(t *testing.T) {
	t.Parallel()
	srv := testenv.OwnBeanstalkd(t)
	q, err := beanstalk.Open(t.Context(), srv.Addr, "dist_test", beanstalk.Options{DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c := consumer(t, q)
	idle := consumer(t, q)

	first := put(t, q, "first", 1, time.Minute)
	second := put(t, q, "second", 2, time.Minute)
	held := reserveBody(t, c, 0, "first")

	srv.Kill()
	srv.Start()

	// The producer's connection died with the server: the next call
	// finds out, redials and succeeds.
	third := put(t, q, "third", 3, time.Minute)
	for _, id := range []uint64{first, second, third} {
		wantExists(t, q, id, true)
	}
	// The reservation did not survive the restart.
	wantStats(t, q, queue.Stats{Ready: 3})

	// The consumer learns of the loss from its next call, whatever it is.
	if err := c.Touch(t.Context(), held.ID); err == nil || errors.Is(err, queue.ErrClosed) {
		t.Fatalf("Touch after the restart = %v, want the connection's error", err)
	}
	wantErr(t, "Touch again", c.Touch(t.Context(), held.ID), queue.ErrNotFound)
	wantErr(t, "Delete of what the lost connection held", c.Delete(t.Context(), held.ID), queue.ErrNotFound)
	if _, err := idle.Reserve(t.Context(), 0); err == nil || errors.Is(err, queue.ErrTimeout) {
		t.Fatalf("Reserve of an idle consumer after the restart = %v, want the connection's error", err)
	}

	// Their next Reserve dials again.
	for _, want := range []struct {
		c    queue.Consumer
		id   uint64
		body string
	}{{c, first, "first"}, {idle, second, "second"}, {c, third, "third"}} {
		if r := reserveBody(t, want.c, patience, want.body); r.ID != want.id {
			t.Fatalf("reserved %q as id %d, want %d", r.Body, r.ID, want.id)
		}
	}
	if err := c.Delete(t.Context(), first); err != nil {
		t.Fatalf("Delete after reconnecting: %v", err)
	}
	wantStats(t, q, queue.Stats{Reserved: 2})
}

// TestServerDown checks that calls made while beanstalkd is down fail with
// an error that names it, and that the queue recovers when it is back.
func TestServerDown(t *testing.T) {
	t.Parallel()
	srv := testenv.OwnBeanstalkd(t)
	q, err := beanstalk.Open(t.Context(), srv.Addr, "dist_test", beanstalk.Options{DialTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	c := consumer(t, q)
	put(t, q, "before", 0, time.Minute)

	srv.Kill()
	if _, err := q.Put(t.Context(), queue.Entry{Body: []byte("lost")}); err == nil {
		t.Fatal("Put with beanstalkd down succeeded")
	} else if !strings.Contains(err.Error(), srv.Addr) {
		t.Fatalf("Put with beanstalkd down = %v, want an error naming %s", err, srv.Addr)
	}
	if _, err := q.Stats(t.Context()); err == nil {
		t.Fatal("Stats with beanstalkd down succeeded")
	}
	for range 2 {
		if _, err := c.Reserve(t.Context(), 0); err == nil || errors.Is(err, queue.ErrTimeout) {
			t.Fatalf("Reserve with beanstalkd down = %v, want the connection's error", err)
		}
	}

	srv.Start()
	reserveBody(t, c, patience, "before")
	put(t, q, "after", 0, time.Minute)
	wantStats(t, q, queue.Stats{Ready: 1, Reserved: 1})
}
