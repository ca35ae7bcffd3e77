package backoff

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// Without jitter the delays double from First and stop at Max.
func TestDelaysDoubleUpToTheCap(t *testing.T) {
	p := Policy{First: 100 * time.Millisecond, Max: time.Second}
	want := []time.Duration{100, 200, 400, 800, 1000, 1000, 1000}
	for i, w := range want {
		if got := p.Delay(i + 1); got != w*time.Millisecond {
			t.Errorf("Delay(%d) = %s, want %s", i+1, got, w*time.Millisecond)
		}
	}
	// A failure count far past the cap neither overflows nor goes round.
	if got := p.Delay(1 << 20); got != time.Second {
		t.Errorf("Delay(1<<20) = %s, want the cap", got)
	}
	if got := (Policy{First: 5 * time.Second, Max: time.Second}).Delay(1); got != time.Second {
		t.Errorf("a first delay above the cap: %s, want the cap", got)
	}
	if got := (Policy{}).Delay(3); got != 0 {
		t.Errorf("the zero policy waits %s, want 0", got)
	}
}

// A delay with jitter J lies in [d·(1−J), d]: the random draw takes off at
// most J of it, and the cap holds with the jitter included.
func TestJitterBounds(t *testing.T) {
	for _, tc := range []struct {
		jitter   float64
		draw     float64
		n        int
		want     time.Duration
		describe string
	}{
		{1, 0, 1, 100 * time.Millisecond, "full jitter, lowest draw: the whole delay"},
		{1, 0.5, 2, 100 * time.Millisecond, "full jitter, middle draw: half of 200ms"},
		{1, 0.999, 1, 100 * time.Microsecond, "full jitter, highest draw: almost nothing"},
		{0.2, 0.999, 3, 320*time.Millisecond + 80*time.Microsecond, "20% jitter, highest draw: 80% of 400ms"},
		{0.5, 0.5, 10, 750 * time.Millisecond, "half jitter at the cap: 75% of the cap"},
		{3, 0.5, 1, 50 * time.Millisecond, "jitter above 1 is full jitter"},
		{-1, 0.5, 1, 100 * time.Millisecond, "negative jitter is none"},
	} {
		p := Policy{First: 100 * time.Millisecond, Max: time.Second, Jitter: tc.jitter, random: func() float64 { return tc.draw }}
		if got := p.Delay(tc.n); got != tc.want {
			t.Errorf("%s: Delay(%d) = %s, want %s", tc.describe, tc.n, got, tc.want)
		}
	}

	// With the real source: always within bounds, and actually spread.
	p := Policy{First: time.Second, Max: 8 * time.Second, Jitter: 1}
	seen := map[time.Duration]bool{}
	for range 1000 {
		for n := 1; n <= 5; n++ {
			d := p.Delay(n)
			top := min(time.Second<<(n-1), 8*time.Second)
			if d < 0 || d > top {
				t.Fatalf("Delay(%d) = %s, outside [0, %s]", n, d, top)
			}
			seen[d] = true
		}
	}
	if len(seen) < 1000 {
		t.Errorf("5000 delays took only %d values: no jitter", len(seen))
	}
	low := Policy{First: time.Second, Max: time.Second, Jitter: 0.2}
	for range 1000 {
		if d := low.Delay(1); d < 800*time.Millisecond || d > time.Second {
			t.Fatalf("20%% jitter: %s, outside [800ms, 1s]", d)
		}
	}
}

// Next counts the failures in a row; Reset starts over.
func TestBackoffCountsFailuresInARow(t *testing.T) {
	b := Backoff{Policy: Policy{First: time.Second, Max: time.Minute}}
	for _, want := range []time.Duration{1, 2, 4} {
		if got := b.Next(); got != want*time.Second {
			t.Errorf("Next = %s, want %s", got, want*time.Second)
		}
	}
	b.Reset()
	if got := b.Next(); got != time.Second {
		t.Errorf("after Reset: Next = %s, want 1s", got)
	}
}

// Wait sleeps the next delay on the clock of the caller's bubble, and
// returns at once, false, when its context ends.
func TestWaitEndsWithItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := Backoff{Policy: Policy{First: time.Second, Max: time.Minute}}
		start := time.Now()
		if !b.Wait(t.Context()) || time.Since(start) != time.Second {
			t.Errorf("first Wait: returned after %s, want 1s and true", time.Since(start))
		}
		ctx, cancel := context.WithTimeout(t.Context(), 500*time.Millisecond)
		defer cancel()
		start = time.Now()
		if b.Wait(ctx) {
			t.Error("Wait reported its delay passed, though its context ended first")
		}
		if d := time.Since(start); d != 500*time.Millisecond {
			t.Errorf("Wait returned after %s, want when its context ended (500ms)", d)
		}
		// A context already over: no wait at all, even for no delay.
		start = time.Now()
		if Sleep(ctx, 0) || Sleep(ctx, time.Hour) || time.Since(start) != 0 {
			t.Errorf("Sleep on an ended context waited %s or reported true", time.Since(start))
		}
		if !Sleep(t.Context(), 0) {
			t.Error("Sleep(0) on a live context reported false")
		}
	})
}
