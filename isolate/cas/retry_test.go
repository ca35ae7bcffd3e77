package cas

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The pauses between the tries of a request double from the first, each
// drawn at random from its value to half as much again, so that slaves
// that lost the isolate server at one moment do not all come back in step.
func TestCASClientRetrySpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var at []time.Time
		hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			at = append(at, time.Now())
			return &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{},
				Body: io.NopCloser(strings.NewReader("busy")), Request: r}, nil
		})}
		const runs = 5
		varied := false
		for range runs {
			at = nil
			c := NewClient("http://cas.invalid", hc)
			if _, err := c.Exists(context.Background(), strings.Repeat("a", 40)); err == nil {
				t.Fatal("Exists against a server that is always busy succeeded")
			}
			if len(at) != c.attempts {
				t.Fatalf("%d requests, want %d", len(at), c.attempts)
			}
			for i := 1; i < len(at); i++ {
				low := c.backoff << (i - 1)
				gap := at[i].Sub(at[i-1])
				if gap < low || gap > low+low/2 {
					t.Errorf("pause %d: %s, want %s to %s", i, gap, low, low+low/2)
				}
				varied = varied || gap != low && gap != low+low/2
			}
		}
		if !varied {
			t.Errorf("in %d runs every pause was at an end of its range: no jitter", runs)
		}
	})
}
