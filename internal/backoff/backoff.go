// Package backoff spaces the tries of dist_test's retry loops: delays that
// double from a first one up to a cap, each shortened by a random part
// (jitter), and a wait that ends early with its context.
//
// The jitter matters for a fleet: when the master, the queue or the
// network comes back, every slave that lost it at the same moment would
// otherwise try again at the same moments, in step, and keep hitting it
// all at once.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Policy shapes the delays of one retry loop.
type Policy struct {
	// First is the delay after the first failure; each further failure
	// in a row doubles it.
	First time.Duration
	// Max caps every delay, jitter included.
	Max time.Duration
	// Jitter is the part of each delay drawn at random: a delay d becomes
	// one drawn evenly from [d·(1−Jitter), d]. 1 is "full jitter" (from
	// nothing to d), which spreads a fleet best; a loop that gives up
	// after some tries takes less, so that its tries still span about the
	// time they did. Values are clamped to [0, 1].
	Jitter float64

	random func() float64 // in [0, 1); rand.Float64 when nil
}

// Delay returns the wait after the nth failure in a row (n from 1).
func (p Policy) Delay(n int) time.Duration {
	d := p.First
	for i := 1; i < n && d < p.Max; i++ {
		d *= 2
	}
	d = max(min(d, p.Max), 0)
	j := min(max(p.Jitter, 0), 1)
	if j == 0 || d == 0 {
		return d
	}
	random := p.random
	if random == nil {
		random = rand.Float64
	}
	return d - time.Duration(j*random()*float64(d))
}

// Backoff counts the failures in a row of one retry loop. The zero value
// of its counter is a loop that has not failed yet; it is not safe for
// concurrent use.
type Backoff struct {
	Policy
	failures int
}

// Next counts one more failure and returns the delay before the next try.
func (b *Backoff) Next() time.Duration {
	b.failures++
	return b.Delay(b.failures)
}

// Reset starts over after a success: the next failure waits First again.
func (b *Backoff) Reset() { b.failures = 0 }

// Wait counts one more failure and waits its delay, or until ctx ends; it
// reports whether the delay passed.
func (b *Backoff) Wait(ctx context.Context) bool { return Sleep(ctx, b.Next()) }

// Sleep waits d, or until ctx ends; it reports whether d passed.
func Sleep(ctx context.Context, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
