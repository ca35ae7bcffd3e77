package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Download saves the object at link (an absolute URL, such as a log or
// artifact link of a task) to path, unless path already exists. It writes a
// temporary file beside path and renames it, so that path is either absent
// or complete; an interrupted fetch resumes by skipping what is there.
// Failures are retried, busy answers of object stores included.
func (c *Client) Download(ctx context.Context, link, path string) error {
	if _, err := os.Lstat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("download to %s: %w", path, err)
	}
	err := c.retry(ctx, fetch, func(ctx context.Context, _ int) error {
		return c.downloadOnce(ctx, link, path)
	})
	if err != nil {
		return fmt.Errorf("download %s: %w", path, err)
	}
	return nil
}

func (c *Client) downloadOnce(ctx context.Context, link, path string) (err error) {
	ctx, w := c.watch(ctx)
	defer w.stop()
	req, resp, err := c.getLink(ctx, w, link, "")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return c.readError(req, resp)
	}

	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return permanent(err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// A failed write is this side's problem; a failed read is the
	// network's, worth another try.
	if _, err := io.Copy(writerOnly{f}, progressReader{resp.Body, w}); err != nil {
		var we *diskError
		if errors.As(err, &we) {
			return permanent(we.err)
		}
		return w.explain(err)
	}
	if err := f.Chmod(0o644); err != nil {
		return permanent(err)
	}
	if err := f.Close(); err != nil {
		return permanent(err)
	}
	return permanent(os.Rename(f.Name(), path))
}

// getLink GETs an output link (with a Range header unless rng is empty),
// as an attempt of a retry loop: the errors it returns are marked for it,
// and the link's signature is left out of them.
func (c *Client) getLink(ctx context.Context, w *watchdog, link, rng string) (*http.Request, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, link, nil)
	if err != nil {
		return nil, nil, permanent(fmt.Errorf("bad link %q: %w", link, err))
	}
	req.Header.Set("User-Agent", "dist_test-client")
	if rng != "" {
		req.Header.Set("Range", rng)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = protocol.BareURL(req.URL)
		}
		return nil, nil, w.explain(err)
	}
	w.kick()
	return req, resp, nil
}

// writerOnly marks write errors, so that io.Copy's error tells which side
// failed.
type writerOnly struct{ w io.Writer }

type diskError struct{ err error }

func (e *diskError) Error() string { return e.err.Error() }

func (o writerOnly) Write(b []byte) (int, error) {
	n, err := o.w.Write(b)
	if err != nil {
		err = &diskError{err}
	}
	return n, err
}

// Tail returns at most the last n bytes of the object at link (a log link
// of a task). It asks for only those bytes; a server that ignores the
// range sends all of it, of which only the end is kept.
func (c *Client) Tail(ctx context.Context, link string, n int64) ([]byte, error) {
	var out []byte
	err := c.retry(ctx, fetch, func(ctx context.Context, _ int) error {
		ctx, w := c.watch(ctx)
		defer w.stop()
		req, resp, err := c.getLink(ctx, w, link, fmt.Sprintf("bytes=-%d", n))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		switch {
		case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
			out = nil // an empty object
			return nil
		case resp.StatusCode/100 != 2:
			return c.readError(req, resp)
		}
		// A server that ignores the range sends the whole log, which is
		// read through up to a bound.
		tail := &tailWriter{n: int(n)}
		read, err := io.Copy(tail, io.LimitReader(progressReader{resp.Body, w}, maxTailRead+1))
		if err != nil {
			return w.explain(err)
		}
		if read > maxTailRead {
			return permanent(fmt.Errorf("the log is over %d MiB and its server sends no ranges of it", maxTailRead>>20))
		}
		out = tail.buf[max(0, len(tail.buf)-int(n)):]
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the end of a log: %w", err)
	}
	return out, nil
}

// maxTailRead bounds what Tail reads of a log whose server ignores ranges.
const maxTailRead = 64 << 20

// tailWriter keeps the last n bytes written to it.
type tailWriter struct {
	n   int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > 2*t.n {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.n:]...)
	}
	return len(p), nil
}
