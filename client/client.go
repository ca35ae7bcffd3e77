// Package client is the typed Go client of the master's JSON API under
// /api/v1: the calls of the command-line client and of the slave protocol.
// It retries what is safe to retry, rebuilds the master's errors so that
// errors.Is(err, model.ErrNotFound) and the like work across the wire, and
// never imports the master's code.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/backoff"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/protocol"
)

// Client talks to one master. It is safe for concurrent use.
type Client struct {
	base     string
	hc       *http.Client
	timeout  time.Duration
	cred     httpclient.Credentials
	attempts int
	backoff  backoff.Policy
	retryFor time.Duration // > 0: retries are bounded by this time, not by attempts
	failFast bool
	logf     func(format string, args ...any)
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sends requests through hc (its transport, TLS settings,
// proxies). A nil hc keeps the default.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithTimeout bounds how long a request may make no progress: no answer
// yet, or no bytes of a body moving. A stalled request is abandoned and, if
// the call is safe to repeat, retried. The default is 60 s, the socket
// timeout of the original client.
func WithTimeout(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.timeout = d
		}
	}
}

// WithAuth sets an account's credentials, with which the client answers
// the master's HTTP Digest challenges (an empty user: none).
func WithAuth(user, password string) Option {
	return func(c *Client) { c.cred.User, c.cred.Password = user, password }
}

// WithToken makes the client present a slave's shared token (as a Bearer
// token) instead of an account.
func WithToken(token string) Option {
	return func(c *Client) { c.cred.Token = token }
}

// WithRetry sets how often a call that is safe to repeat is tried (1 = no
// retry) and the backoff between tries: first, doubling up to max, each
// shortened by up to a fifth at random. The default, 10 tries from 0.5 s up
// to 10 s, waits about 50 s in all, as the original client did.
func WithRetry(attempts int, first, max time.Duration) Option {
	return func(c *Client) {
		c.attempts, c.backoff.First, c.backoff.Max = max1(attempts), first, max
	}
}

// WithRetryFor bounds the retries of a call by time rather than by count:
// tries go on, with the backoff, until d has passed since the first. It
// suits a long watch that should ride out a master's restart.
func WithRetryFor(d time.Duration) Option {
	return func(c *Client) {
		if d > 0 {
			c.retryFor = d
		}
	}
}

// WithFailFast makes a call that only reads fail at once when its first
// try finds nothing listening at the master's address: a wrong
// DIST_TEST_MASTER then costs no retries. Calls that change state, and
// later tries, still retry: a master that was reached may be restarting.
func WithFailFast() Option {
	return func(c *Client) { c.failFast = true }
}

// WithLogf receives a line each time a call is retried.
func WithLogf(logf func(format string, args ...any)) Option {
	return func(c *Client) {
		if logf != nil {
			c.logf = logf
		}
	}
}

// New returns a client of the master at baseURL, e.g. http://master:8081
// (a path prefix is kept).
func New(baseURL string, opts ...Option) *Client {
	c := &Client{
		base:     strings.TrimRight(baseURL, "/"),
		hc:       &http.Client{},
		timeout:  60 * time.Second,
		attempts: 10,
		// A little jitter: a user waits for this loop, which should span
		// about the time the original client's did.
		backoff: backoff.Policy{First: 500 * time.Millisecond, Max: 10 * time.Second, Jitter: 0.2},
		logf:    func(string, ...any) {},
	}
	for _, o := range opts {
		o(c)
	}
	if !c.cred.Empty() {
		// Credentials go to the master only: a presigned link to S3 must
		// reach it without them.
		if at, err := httpclient.NewAuthTransport(c.hc.Transport, c.base, c.cred); err == nil {
			hc := *c.hc
			hc.Transport = at
			c.hc = &hc
		}
	}
	return c
}

// BaseURL returns the master's URL, without a trailing slash.
func (c *Client) BaseURL() string { return c.base }

// readError builds a protocol.StatusError from a non-2xx answer. A 401
// says which credentials were sent and which settings hold them.
func (c *Client) readError(req *http.Request, resp *http.Response) *protocol.StatusError {
	e := protocol.ReadError(req, resp)
	if e.Status == http.StatusUnauthorized {
		switch {
		case c.cred.Token != "":
			e.Message += " (sent [slave] token)"
		case c.cred.User != "":
			e.Message += fmt.Sprintf(" (sent user %q: check DIST_TEST_PASSWORD or [dist_test] password)", c.cred.User)
		default:
			e.Message += " (sent no credentials: set DIST_TEST_USER and DIST_TEST_PASSWORD, or user and password in [dist_test])"
		}
	}
	return e
}

// request is one API call.
type request struct {
	method string
	path   string // below the base URL, escaped
	query  url.Values
	in     any // JSON body, or nil
	out    any // where the JSON answer goes, or nil
	mode   retryMode
}

// call makes r, retrying as r.mode allows.
func (c *Client) call(ctx context.Context, r request) error {
	var payload []byte
	if r.in != nil {
		var err error
		if payload, err = json.Marshal(r.in); err != nil {
			return fmt.Errorf("encoding the request: %w", err)
		}
	}
	return c.retry(ctx, r.mode, func(ctx context.Context, _ int) error {
		var body io.Reader
		if payload != nil {
			body = bytes.NewReader(payload)
		}
		return c.once(ctx, r.method, c.url(r.path, r.query), body, int64(len(payload)), r.out)
	})
}

// once sends one request and decodes its answer into out. body of size
// bytes (-1: unknown) may be nil.
func (c *Client) once(ctx context.Context, method, target string, body io.Reader, size int64, out any) error {
	ctx, w := c.watch(ctx)
	defer w.stop()
	if body == nil || size == 0 {
		body = http.NoBody
	} else {
		// The transport may read and close the body after Do returns; a
		// retry must not rewind it until then. Stopping the watchdog
		// cancels the request, which makes the transport let go.
		tb := &trackedBody{r: progressReader{body, w}, closed: make(chan struct{})}
		defer func() {
			w.stop()
			<-tb.closed
		}()
		body = tb
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return permanent(fmt.Errorf("bad request URL: %w", err))
	}
	req.ContentLength = size
	if body == http.NoBody {
		req.ContentLength = 0
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "dist_test-client")
	if method == http.MethodPost && size > 0 {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if untrusted(err) {
			return fmt.Errorf("%w (to trust a private CA, set DIST_TEST_CA_FILE or [dist_test] ca_file)", err)
		}
		return w.explain(err)
	}
	defer resp.Body.Close()
	w.kick()
	if resp.StatusCode/100 != 2 {
		return c.readError(req, resp)
	}
	if out == nil {
		_, err = io.Copy(io.Discard, progressReader{resp.Body, w})
		return w.explain(err)
	}
	if err := json.NewDecoder(progressReader{resp.Body, w}).Decode(out); err != nil {
		return fmt.Errorf("reading the answer of %s %s: %w", method, target, w.explain(err))
	}
	return nil
}

// trackedBody tells when the transport is done with a request body.
type trackedBody struct {
	r      io.Reader
	once   sync.Once
	closed chan struct{}
}

func (b *trackedBody) Read(p []byte) (int, error) { return b.r.Read(p) }

func (b *trackedBody) Close() error {
	b.once.Do(func() { close(b.closed) })
	return nil
}

func (c *Client) url(path string, query url.Values) string {
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	return u
}

// jobPath is the path of a job's resource; ids may hold ':', '@' and '+'.
func jobPath(id, rest string) string {
	return protocol.PathJobs + "/" + url.PathEscape(id) + rest
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}
