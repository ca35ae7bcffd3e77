// Package queue defines the work queue between the master and the slaves:
// beanstalkd's model of prioritised entries with a time-to-run lease. The
// master puts entries; each slave slot reserves, touches while it runs, and
// deletes, releases or buries what it reserved. An entry carries only a
// reference to an attempt (see protocol.Entry), never the task itself.
//
// Implementations: mem (in process, the embedded default) and beanstalk.
package queue

import (
	"context"
	"errors"
	"time"
)

// Errors returned by every implementation.
var (
	// ErrTimeout: Reserve found nothing ready before its timeout.
	ErrTimeout = errors.New("queue: reserve timed out")
	// ErrNotFound: no such entry, or (for a Consumer) not reserved by it.
	ErrNotFound = errors.New("queue: entry not found")
	// ErrClosed: the queue or consumer was closed.
	ErrClosed = errors.New("queue: closed")
)

// Entry is one entry to put.
type Entry struct {
	Body     []byte
	Priority uint32        // lower is reserved first; equal priorities are FIFO
	Delay    time.Duration // not ready before this has passed
	TTR      time.Duration // lease: a reserved entry not touched for this long is ready again
}

// Reserved is an entry handed to a consumer.
type Reserved struct {
	ID   uint64
	Body []byte
}

// Stats are the queue's counts of entries and waiting consumers.
type Stats struct {
	Ready    int // can be reserved now
	Reserved int // held by a consumer
	Delayed  int // waiting for their delay to pass
	Buried   int // set aside by Bury; never reserved again
	Waiting  int // consumers blocked in Reserve
}

// Queue is the producer side, used by the master. Safe for concurrent use.
type Queue interface {
	// Put adds an entry and returns its id, unique within the queue.
	Put(ctx context.Context, e Entry) (uint64, error)
	// Exists reports whether an entry is still in the queue in any state.
	Exists(ctx context.Context, id uint64) (bool, error)
	// Delete removes an entry that is ready, delayed or buried. A reserved
	// entry can only be deleted by its consumer: ErrNotFound.
	Delete(ctx context.Context, id uint64) error
	Stats(ctx context.Context) (Stats, error)
	// NewConsumer returns a consumer for one slave slot.
	NewConsumer(ctx context.Context) (Consumer, error)
	Close() error
}

// Consumer is one slot's view of the queue: what it reserves is its own until
// it deletes, releases or buries it, the TTR passes without a touch, or the
// consumer is closed (its reserved entries are then ready again at once).
// A Consumer is used by one goroutine at a time.
type Consumer interface {
	// Reserve waits up to timeout (0 = return at once) for a ready entry.
	// It returns ErrTimeout if none came, or ctx's error.
	Reserve(ctx context.Context, timeout time.Duration) (Reserved, error)
	// Touch restarts the TTR of an entry this consumer reserved.
	Touch(ctx context.Context, id uint64) error
	// Release gives an entry back with a new priority, ready after delay.
	Release(ctx context.Context, id uint64, priority uint32, delay time.Duration) error
	// Bury sets an entry aside where no consumer will get it.
	Bury(ctx context.Context, id uint64, priority uint32) error
	// Delete removes an entry this consumer reserved.
	Delete(ctx context.Context, id uint64) error
	Close() error
}
