package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/dist-test/dist_test/internal/backoff"
	"github.com/dist-test/dist_test/internal/protocol"
)

// retryMode says when a call may be sent again.
type retryMode int

const (
	// never: the call changes state and a repeat could do it twice
	// (register, start, retry of tasks).
	never retryMode = iota
	// idempotent: network errors, stalls, and 502/503/504 are retried.
	idempotent
	// reading: as idempotent, for a call that only reads; a fail-fast
	// client gives it up when its first try is refused.
	reading
	// fetch: as idempotent, and any 5xx or 429, as object stores answer
	// when busy.
	fetch
)

// retry runs attempt until it succeeds, fails for good, runs out of
// tries, or ctx ends. attempt gets its try number, from 1.
//
// A 401 is tried once more at once, whatever the mode, and that does not
// count as a try: the master ran nothing, and the answer brought a new
// challenge (the old one was forgotten) that the next try answers.
func (c *Client) retry(ctx context.Context, mode retryMode, attempt func(ctx context.Context, n int) error) error {
	reauth := false
	start := time.Now()
	for n := 1; ; n++ {
		err := attempt(ctx, n)
		var e *protocol.StatusError
		if !reauth && !c.cred.Empty() && errors.As(err, &e) && e.Status == http.StatusUnauthorized && ctx.Err() == nil {
			reauth = true
			n--
			continue
		}
		if err == nil || !retryable(ctx, mode, err) {
			return err
		}
		if n == 1 && c.failFast && mode == reading && refused(err) {
			return fmt.Errorf("no master answers at %s (check DIST_TEST_MASTER, [dist_test] master or --master): %w", c.base, err)
		}
		d := c.backoff.Delay(n)
		if c.retryFor > 0 {
			if spent := time.Since(start); spent+d > c.retryFor {
				return fmt.Errorf("gave up after %d tries in %s: %w", n, spent.Round(100*time.Millisecond), err)
			}
			c.logf("%v; retrying in %s (try %d, for up to %s)", err, d.Round(100*time.Millisecond), n+1, c.retryFor)
		} else {
			if n >= c.attempts {
				return fmt.Errorf("gave up after %d tries: %w", n, err)
			}
			c.logf("%v; retrying in %s (%d of %d tries)", err, d.Round(100*time.Millisecond), n+1, c.attempts)
		}
		if !backoff.Sleep(ctx, d) {
			return fmt.Errorf("%w (while retrying after: %v)", context.Cause(ctx), err)
		}
	}
}

func retryable(ctx context.Context, mode retryMode, err error) bool {
	if mode == never || ctx.Err() != nil {
		return false
	}
	var p *permanentError
	if errors.As(err, &p) || untrusted(err) {
		return false
	}
	var e *protocol.StatusError
	if !errors.As(err, &e) {
		return true // no answer, a stall, or a cut-off body
	}
	switch {
	case e.Status == http.StatusBadGateway, e.Status == http.StatusServiceUnavailable, e.Status == http.StatusGatewayTimeout:
		return true
	case mode == fetch:
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	}
	return false
}

// untrusted tells a server certificate that failed verification: another
// try would fail the same way.
func untrusted(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}

// permanentError is a failure on this side (a local file, a bad URL) that
// another try would only repeat.
type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

func permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

// watchdog abandons a request that makes no progress for the client's
// timeout. A whole-request deadline would not do: a large upload or
// download may rightly take longer than any fixed bound, while a master
// that stopped answering must not hang a CI job.
type watchdog struct {
	ctx    context.Context
	d      time.Duration
	t      *time.Timer
	cancel context.CancelCauseFunc
	stall  error
}

func (c *Client) watch(parent context.Context) (context.Context, *watchdog) {
	ctx, cancel := context.WithCancelCause(parent)
	w := &watchdog{ctx: ctx, d: c.timeout, cancel: cancel}
	w.stall = fmt.Errorf("no progress for %s", c.timeout)
	w.t = time.AfterFunc(c.timeout, func() { cancel(w.stall) })
	return ctx, w
}

func (w *watchdog) kick() { w.t.Reset(w.d) }

func (w *watchdog) stop() {
	w.t.Stop()
	w.cancel(nil)
}

// explain replaces the "context canceled" of a request the watchdog
// stopped by the reason, keeping the rest of the error.
func (w *watchdog) explain(err error) error {
	if err != nil && context.Cause(w.ctx) == w.stall {
		return fmt.Errorf("%w: %v", w.stall, err)
	}
	return err
}

// progressReader tells the watchdog of every byte that moves.
type progressReader struct {
	r io.Reader
	w *watchdog
}

func (p progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.w.kick()
	}
	return n, err
}
