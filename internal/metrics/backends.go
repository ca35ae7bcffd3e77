package metrics

import (
	"context"
	"errors"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/queue"
)

// Blobs counts the bytes a blob store takes in and gives out, and its
// failed calls.
type Blobs struct {
	bytes  *prometheus.CounterVec
	errors *prometheus.CounterVec
}

// NewBlobs registers the blob store's metrics with reg.
func NewBlobs(reg prometheus.Registerer) *Blobs {
	b := &Blobs{
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "blob_bytes_total",
			Help: "Bytes written to (in) and read from (out) the blob store: logs, artifacts, inputs."}, []string{"direction"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "blob_errors_total",
			Help: "Failed calls to the blob store, by operation (a missing blob is not a failure)."}, []string{"op"}),
	}
	reg.MustRegister(b.bytes, b.errors)
	b.bytes.WithLabelValues("in")
	b.bytes.WithLabelValues("out")
	return b
}

// Wrap returns s counted. Presigning, when s offers it, is kept.
func (b *Blobs) Wrap(s blob.Store) blob.Store {
	if b == nil {
		return s
	}
	c := &countedBlobs{Store: s, m: b}
	if p, ok := s.(blob.Presigner); ok {
		return &presignedBlobs{countedBlobs: c, Presigner: p}
	}
	return c
}

type presignedBlobs struct {
	*countedBlobs
	blob.Presigner
}

type countedBlobs struct {
	blob.Store
	m *Blobs
}

func (c *countedBlobs) fail(op string, err error) error {
	if err != nil && !errors.Is(err, blob.ErrNotFound) && !errors.Is(err, context.Canceled) {
		c.m.errors.WithLabelValues(op).Inc()
	}
	return err
}

func (c *countedBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	cr := &countingReader{r: r}
	err := c.Store.Put(ctx, key, cr, size)
	c.m.bytes.WithLabelValues("in").Add(float64(cr.n))
	return c.fail("put", err)
}

func (c *countedBlobs) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	rc, info, err := c.Store.Get(ctx, key)
	if err != nil {
		return rc, info, c.fail("get", err)
	}
	return &countingReadCloser{ReadCloser: rc, out: c.m.bytes.WithLabelValues("out")}, info, nil
}

func (c *countedBlobs) Stat(ctx context.Context, key string) (blob.Info, error) {
	info, err := c.Store.Stat(ctx, key)
	return info, c.fail("stat", err)
}

func (c *countedBlobs) Delete(ctx context.Context, key string) error {
	return c.fail("delete", c.Store.Delete(ctx, key))
}

func (c *countedBlobs) List(ctx context.Context, prefix string, fn func(string, blob.Info) error) error {
	return c.fail("list", c.Store.List(ctx, prefix, fn))
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// countingReadCloser adds what is read as it is read, so that a long
// download shows in the rate while it goes on.
type countingReadCloser struct {
	io.ReadCloser
	out prometheus.Counter
}

func (c *countingReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.out.Add(float64(n))
	return n, err
}

// WrapQueue returns q with its failed calls counted by m (the master's
// calls: Put, Exists, Delete, Stats).
func (m *Master) WrapQueue(q queue.Queue) queue.Queue {
	if m == nil {
		return q
	}
	return &countedQueue{Queue: q, m: m}
}

type countedQueue struct {
	queue.Queue
	m *Master
}

func (c *countedQueue) fail(op string, err error) error {
	if err != nil && !errors.Is(err, queue.ErrNotFound) && !errors.Is(err, context.Canceled) {
		c.m.QueueError(op)
	}
	return err
}

func (c *countedQueue) Put(ctx context.Context, e queue.Entry) (uint64, error) {
	id, err := c.Queue.Put(ctx, e)
	return id, c.fail("put", err)
}

func (c *countedQueue) Exists(ctx context.Context, id uint64) (bool, error) {
	ok, err := c.Queue.Exists(ctx, id)
	return ok, c.fail("exists", err)
}

func (c *countedQueue) Delete(ctx context.Context, id uint64) error {
	return c.fail("delete", c.Queue.Delete(ctx, id))
}

func (c *countedQueue) Stats(ctx context.Context) (queue.Stats, error) {
	st, err := c.Queue.Stats(ctx)
	return st, c.fail("stats", err)
}
