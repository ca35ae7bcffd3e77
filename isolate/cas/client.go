package cas

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dist-test/dist_test/internal/backoff"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// Client talks to an isolate server's CAS. Safe for concurrent use.
//
// Blobs travel gzip-compressed both ways where that pays and the server
// supports it: Open asks for it and decompresses transparently; Upload
// compresses once the server has said, in any answer, that it accepts
// compressed uploads (a Missing query comes first in an archive).
type Client struct {
	base string // scheme://host[:port][/prefix], no trailing slash
	hc   *http.Client
	// attempts and backoff shape retries of transient failures (see
	// retryPolicy); the tests shrink the backoff.
	attempts int
	backoff  time.Duration

	serverGzip atomic.Bool // the server accepts gzip-compressed uploads
	gz         gzipWriters
	samples    sync.Pool // *[]byte of compressSample bytes
}

// NewClient returns a client of the isolate server at baseURL (the
// server's root; protocol.PathCAS is appended). hc nil means a client of
// its own that keeps enough connections open for parallel uploads.
func NewClient(baseURL string, hc *http.Client) *Client {
	if hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		hc = &http.Client{Transport: t}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), hc: hc, attempts: 4, backoff: 250 * time.Millisecond}
}

// SetRetries sets how many times a request is tried in all and the first
// pause between tries, which doubles each time (4 and 250ms by default),
// up to maxPause. Call it before the client is used; tests shorten the
// pauses.
func (c *Client) SetRetries(attempts int, backoff time.Duration) {
	c.attempts, c.backoff = attempts, backoff
}

// maxPause caps the pause between two tries of a request.
const maxPause = 10 * time.Second

// retryPolicy spaces the tries of a request: the first pause is drawn
// from c.backoff to half as much again, and each further one doubles.
// The random part keeps the slaves that lost the isolate server at the
// same moment from all coming back to it at the same moments.
func (c *Client) retryPolicy() backoff.Policy {
	return backoff.Policy{First: c.backoff + c.backoff/2, Max: maxPause, Jitter: 1.0 / 3}
}

func (c *Client) url(digest string) string { return c.base + protocol.PathCAS + "/" + digest }

// Missing returns the digests the server does not hold, asking in batches
// the server accepts; those it holds stay another retention period.
func (c *Client) Missing(ctx context.Context, digests []string) ([]string, error) {
	return c.missing(ctx, digests, false)
}

// UseManifests tells the server a job is about to use these manifests:
// it returns those whose tree is not whole, and keeps the others' trees
// another retention period.
func (c *Client) UseManifests(ctx context.Context, digests []string) ([]string, error) {
	return c.missing(ctx, digests, true)
}

func (c *Client) missing(ctx context.Context, digests []string, manifests bool) ([]string, error) {
	missing := []string{}
	for start := 0; start < len(digests); start += MaxMissingDigests {
		batch := digests[start:min(start+MaxMissingDigests, len(digests))]
		body, err := json.Marshal(missingRequest{Digests: batch, Manifests: manifests})
		if err != nil {
			return nil, fmt.Errorf("missing-query: %w", err)
		}
		resp, err := c.do(ctx, func() (*http.Request, error) {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+protocol.PathCAS+"/missing", bytes.NewReader(body))
			if err == nil {
				req.Header.Set("Content-Type", "application/json")
			}
			return req, err
		})
		if err != nil {
			return nil, fmt.Errorf("missing-query: %w", err)
		}
		var out missingResponse
		err = json.NewDecoder(io.LimitReader(resp.Body, 4<<20)).Decode(&out)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("missing-query: reading the answer: %w", err)
		}
		missing = append(missing, out.Missing...)
	}
	return missing, nil
}

// Upload sends size bytes of r under digest (size -1: unknown). The
// server verifies them. A transient failure is retried only when r can be
// rewound (an io.Seeker, such as an *os.File); otherwise it is returned.
// Upload is done with r when it returns.
func (c *Client) Upload(ctx context.Context, digest string, r io.Reader, size int64) error {
	seeker, canRewind := r.(io.Seeker)
	var start int64
	if canRewind {
		var err error
		if start, err = seeker.Seek(0, io.SeekCurrent); err != nil {
			canRewind = false
		}
	}
	tryGzip := c.serverGzip.Load() && (size < 0 || size >= minCompressSize)
	var body *uploadBody
	defer func() {
		if body != nil {
			body.Close()
		}
	}()
	tries := 0
	upload := func() (*http.Response, error) {
		return c.do(ctx, func() (*http.Request, error) {
			if body != nil {
				body.Close() // the transport may still hold it: take r back
			}
			if tries++; tries > 1 {
				if !canRewind {
					return nil, errNoRetry
				}
				if _, err := seeker.Seek(start, io.SeekStart); err != nil {
					return nil, err
				}
			}
			var err error
			if body, err = newUploadBody(&c.gz, &c.samples, r, tryGzip); err != nil {
				return nil, err
			}
			req, err := http.NewRequestWithContext(ctx, http.MethodPut, c.url(digest), body)
			if err != nil {
				return nil, err
			}
			req.ContentLength = size
			if body.gzipped() {
				req.ContentLength = -1
				req.Header.Set("Content-Encoding", "gzip")
			}
			if size >= 0 {
				req.Header.Set(SizeHeader, strconv.FormatInt(size, 10))
			}
			req.Header.Set("Content-Type", "application/octet-stream")
			return req, nil
		})
	}
	resp, err := upload()
	if errors.Is(err, model.ErrTooLarge) && body != nil && body.gzipped() && canRewind {
		// The server bounds how far a compressed upload may unpack (a
		// file of zeros compresses a thousandfold): send it plain.
		tryGzip, tries = false, 1
		resp, err = upload()
	}
	if err != nil {
		return fmt.Errorf("upload %s: %w", digest, err)
	}
	resp.Body.Close()
	return nil
}

// Open starts reading a blob, decompressed if it travels compressed; the
// size is the blob's, or -1 when the server does not say. A blob the
// server lacks gives an error wrapping model.ErrNotFound.
func (c *Client) Open(ctx context.Context, digest string) (io.ReadCloser, int64, error) {
	resp, err := c.do(ctx, func() (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(digest), nil)
		if err == nil {
			// Set by hand, so that the transport leaves the body to us
			// and the size header keeps its meaning.
			req.Header.Set("Accept-Encoding", "gzip")
		}
		return req, err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("download %s: %w", digest, err)
	}
	size := resp.ContentLength
	if s := resp.Header.Get(SizeHeader); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n >= 0 {
			size = n
		}
	}
	switch enc := strings.ToLower(resp.Header.Get("Content-Encoding")); enc {
	case "", "identity":
		return resp.Body, size, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			resp.Body.Close()
			return nil, 0, fmt.Errorf("download %s: reading the compressed answer: %w", digest, err)
		}
		return &gzipBody{zr: zr, body: resp.Body}, size, nil
	default:
		resp.Body.Close()
		return nil, 0, fmt.Errorf("download %s: the server answered in encoding %q, which dist_test does not know", digest, enc)
	}
}

// Exists reports whether the server holds a blob.
func (c *Client) Exists(ctx context.Context, digest string) (bool, error) {
	resp, err := c.do(ctx, func() (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodHead, c.url(digest), nil)
	})
	if errors.Is(err, model.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", digest, err)
	}
	resp.Body.Close()
	return true, nil
}

// errNoRetry stops the retries of a request whose body cannot be sent again.
var errNoRetry = errors.New("request body cannot be sent again")

// do sends the request newReq builds until it gets a 2xx answer, retrying
// connection failures and 5xx with a growing, jittered backoff; 4xx are
// final, but for one 401 that is tried again at once: the server ran
// nothing and its answer brought a new challenge (the transport of an
// authenticating client keeps it for the next try).
func (c *Client) do(ctx context.Context, newReq func() (*http.Request, error)) (*http.Response, error) {
	var last error
	reauth := false
	pause := backoff.Backoff{Policy: c.retryPolicy()}
	for attempt := 0; attempt < c.attempts; attempt++ {
		if attempt > 0 && !reauth && !pause.Wait(ctx) {
			return nil, fmt.Errorf("%w (last failure: %w)", ctx.Err(), last)
		}
		req, err := newReq()
		if errors.Is(err, errNoRetry) {
			return nil, last
		}
		if err != nil {
			return nil, err
		}
		resp, err := c.hc.Do(req)
		if err != nil {
			if ctx.Err() != nil {
				return nil, err
			}
			last = err
			continue
		}
		if acceptsGzip(resp.Header.Get("Accept-Encoding")) {
			c.serverGzip.Store(true)
		}
		if resp.StatusCode < 300 {
			return resp, nil
		}
		last = readStatusError(resp)
		if resp.StatusCode == http.StatusUnauthorized && !reauth {
			reauth = true
			attempt--
			continue
		}
		reauth = false
		if resp.StatusCode < 500 {
			return nil, last
		}
	}
	return nil, last
}

// readStatusError reads a non-2xx answer as a protocol.StatusError, and
// closes its body. Any 5xx, from the isolate server or a proxy before it,
// is also model.ErrUnavailable: the server may answer once it is back.
func readStatusError(resp *http.Response) error {
	defer resp.Body.Close()
	var err error = protocol.ReadError(resp.Request, resp)
	if resp.StatusCode >= 500 && !errors.Is(err, model.ErrUnavailable) {
		err = model.WithKind(model.ErrUnavailable, err)
	}
	return fmt.Errorf("isolate server: %w", err)
}
