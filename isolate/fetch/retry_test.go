package fetch

import (
	"context"
	"io"
	"testing"
	"testing/iotest"
	"testing/synctest"
	"time"
)

type casFunc func(ctx context.Context, digest string) (io.ReadCloser, int64, error)

func (f casFunc) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	return f(ctx, digest)
}

// A download cut midway is tried again after pauses that double from the
// first, each shortened by up to half at random, so that the slaves whose
// downloads one restart of the isolate server cut do not all come back in
// step.
func TestCutDownloadRetrySpacing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var at []time.Time
		cut := casFunc(func(context.Context, string) (io.ReadCloser, int64, error) {
			at = append(at, time.Now())
			return io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF)), 10, nil
		})
		ctx := context.Background()
		const runs = 5
		below := false
		for range runs {
			at = nil
			f := newFetcher(cut, nil)
			if err := f.retry(ctx, func() error { return f.download(ctx, "d", io.Discard, -1) }); err == nil {
				t.Fatal("a download cut every time succeeded")
			}
			if len(at) != f.attempts {
				t.Fatalf("%d downloads, want %d", len(at), f.attempts)
			}
			for i := 1; i < len(at); i++ {
				high := f.backoff << (i - 1)
				gap := at[i].Sub(at[i-1])
				if gap < high/2 || gap > high {
					t.Errorf("pause %d: %s, want %s to %s", i, gap, high/2, high)
				}
				below = below || gap < high
			}
		}
		if !below {
			t.Errorf("in %d runs every pause was the longest of its range: no jitter", runs)
		}
	})
}
