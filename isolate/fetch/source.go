package fetch

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"github.com/dist-test/dist_test/internal/backoff"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cache"
)

// fetcher gets the blobs of one fetch, from the CAS or through the slave's
// cache, retrying downloads cut midway, and counts where they came from.
type fetcher struct {
	c     CAS
	cache *cache.Cache // nil: every blob is downloaded into place
	opts  Options
	// attempts and backoff shape the retries of a download whose body was
	// cut (see retry); the CAS client already retries failed requests.
	attempts int
	backoff  time.Duration

	hotItems, coldItems atomic.Int64
	hotBytes, coldBytes atomic.Int64
}

func newFetcher(c CAS, cc *cache.Cache) *fetcher {
	return &fetcher{c: c, cache: cc, attempts: 4, backoff: 200 * time.Millisecond}
}

func (f *fetcher) stats() Stats {
	return Stats{
		HotItems: int(f.hotItems.Load()), ColdItems: int(f.coldItems.Load()),
		HotBytes: f.hotBytes.Load(), ColdBytes: f.coldBytes.Load(),
	}
}

func (f *fetcher) count(hot bool, n int64) {
	if hot {
		f.hotItems.Add(1)
		f.hotBytes.Add(n)
	} else {
		f.coldItems.Add(1)
		f.coldBytes.Add(n)
	}
}

// manifest gets, verifies and parses one .isolated.
func (f *fetcher) manifest(ctx context.Context, digest string) (*isolate.Isolated, error) {
	algo, err := isolate.AlgoOf(digest)
	if err != nil {
		return nil, invalidTree(err)
	}
	var data []byte
	hot := false
	if f.cache == nil {
		err = f.retry(ctx, func() error {
			var buf bytes.Buffer
			if err := f.download(ctx, digest, &buf, isolate.MaxManifestSize); err != nil {
				return err
			}
			data = buf.Bytes()
			return nil
		})
		if err == nil {
			if got := isolate.HashBytes(algo, data); got != digest {
				err = fmt.Errorf("manifest %s: downloaded bytes hash to %s", digest, got)
			}
		}
	} else {
		data, hot, err = f.cachedManifest(ctx, digest)
	}
	if err != nil {
		return nil, err
	}
	f.count(hot, int64(len(data)))
	iso, err := isolate.ParseIsolated(data)
	if err != nil {
		return nil, invalidTree(fmt.Errorf("%s: %w", digest, err))
	}
	if iso.Algo != algo {
		return nil, invalidTree(fmt.Errorf("manifest %s says its algo is %s: %w", digest, iso.Algo, model.ErrInvalid))
	}
	return iso, nil
}

// cachedManifest reads a manifest through the cache, and checks its bytes
// once read: they are the command the task runs.
func (f *fetcher) cachedManifest(ctx context.Context, digest string) (data []byte, hot bool, err error) {
	algo, _ := isolate.AlgoOf(digest) // manifest checked it
	for attempt := 0; ; attempt++ {
		var h *cache.Handle
		err = f.retry(ctx, func() error {
			var err error
			h, err = f.cache.Get(ctx, digest, -1, 0o444, f.fill(digest, isolate.MaxManifestSize))
			return err
		})
		if err != nil {
			return nil, false, err
		}
		// The digest may be of a file blob cached by another tree.
		if h.Size > isolate.MaxManifestSize {
			h.Release()
			return nil, false, invalidTree(fmt.Errorf("manifest %s over %d bytes: %w", digest, isolate.MaxManifestSize, model.ErrTooLarge))
		}
		data, err = os.ReadFile(h.Path)
		hot = h.Hot
		if err == nil && isolate.HashBytes(algo, data) != digest {
			// Changed in the cache since it was checked: drop it and
			// download it again.
			h.Remove()
			if attempt < 2 {
				continue
			}
			err = fmt.Errorf("its bytes in the cache keep changing")
		}
		h.Release()
		if err != nil {
			return nil, false, fmt.Errorf("manifest %s: %w", digest, err)
		}
		return data, hot, nil
	}
}

// place lays out blob digest at the new file dst with perm, verifying its
// size (when known, -1 otherwise) and digest; it returns its size, and the
// cache entry it linked to, if it did. A file that fails verification is
// removed.
func (f *fetcher) place(ctx context.Context, algo isolate.Algo, digest string, size int64, dst string, perm os.FileMode) (int64, *cache.Handle, error) {
	var p cache.Placed
	err := f.retry(ctx, func() error {
		var err error
		if f.cache == nil {
			p.Size, err = f.downloadTo(ctx, algo, digest, size, dst, perm)
		} else {
			p, err = f.cache.Place(ctx, digest, size, dst, perm, f.fill(digest, size), cache.PlaceOptions{Copy: f.opts.Copy, Owner: f.opts.Owner})
		}
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	f.count(p.Hot, p.Size)
	return p.Size, p.Linked, nil
}

// chown gives a folder or link of the tree to the task's user.
func (f *fetcher) chown(path string) error {
	if o := f.opts.Owner; o != nil {
		return os.Lchown(path, o.UID, o.GID)
	}
	return nil
}

// downloadTo downloads blob digest into the new file dst.
func (f *fetcher) downloadTo(ctx context.Context, algo isolate.Algo, digest string, size int64, dst string, perm os.FileMode) (n int64, err error) {
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	h := algo.New()
	cw := &countWriter{w: io.MultiWriter(out, h)}
	if err := f.download(ctx, digest, cw, size); err != nil {
		return 0, err
	}
	if size >= 0 && cw.n != size {
		return 0, fmt.Errorf("blob %s: got %d bytes, the manifest says %d", digest, cw.n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return 0, fmt.Errorf("blob %s: downloaded bytes hash to %s", digest, got)
	}
	if o := f.opts.Owner; o != nil {
		if err := out.Chown(o.UID, o.GID); err != nil {
			return 0, err
		}
	}
	if err := out.Chmod(perm); err != nil {
		return 0, err
	}
	return cw.n, nil
}

type countWriter struct {
	w io.Writer
	n int64
}

func (cw *countWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}

// fill downloads into the cache.
func (f *fetcher) fill(digest string, limit int64) cache.Fill {
	return func(ctx context.Context, w io.Writer) error { return f.download(ctx, digest, w, limit) }
}

// download copies blob digest into w, failing once more than limit bytes
// came (limit -1: no bound). The caller verifies what w got.
func (f *fetcher) download(ctx context.Context, digest string, w io.Writer, limit int64) error {
	rc, _, err := f.c.Open(ctx, digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	src := io.Reader(bodyReader{rc})
	if limit >= 0 {
		src = io.LimitReader(src, limit+1)
	}
	n, err := io.Copy(w, src)
	if err != nil {
		return fmt.Errorf("download %s: %w", digest, err)
	}
	if limit >= 0 && n > limit {
		return fmt.Errorf("blob %s: more than %d bytes: %w", digest, limit, model.ErrTooLarge)
	}
	return nil
}

// bodyCut marks the failure of reading a response body: the connection
// dropped midway, so downloading again may well succeed.
type bodyCut struct{ err error }

func (e *bodyCut) Error() string { return e.err.Error() }
func (e *bodyCut) Unwrap() error { return e.err }

type bodyReader struct{ r io.Reader }

func (b bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		err = &bodyCut{err}
	}
	return n, err
}

// retry runs op again while it fails because a download was cut, up to
// f.attempts times in all. The pauses double from f.backoff, each
// shortened by up to half at random: when the isolate server restarts, it
// cuts the downloads of many slaves at once, which would otherwise all
// come back at the same moments.
func (f *fetcher) retry(ctx context.Context, op func() error) error {
	pause := backoff.Backoff{Policy: backoff.Policy{First: f.backoff, Max: 10 * time.Second, Jitter: 0.5}}
	for attempt := 1; ; attempt++ {
		err := op()
		var cut *bodyCut
		if err == nil || !errors.As(err, &cut) || attempt >= f.attempts || ctx.Err() != nil {
			return err
		}
		if !pause.Wait(ctx) {
			return fmt.Errorf("%w (last failure: %w)", ctx.Err(), err)
		}
	}
}
