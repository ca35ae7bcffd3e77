package cas

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
)

// Blobs travel gzip-compressed where both ends support it. The server says
// that it accepts compressed uploads with an Accept-Encoding response header
// (RFC 7694), so a client never sends gzip to a server that would store the
// compressed bytes; downloads are negotiated the usual way.
const (
	// SizeHeader carries a blob's uncompressed size, which Content-Length
	// cannot tell once the bytes travel compressed.
	SizeHeader = "X-Dist-Test-Size"

	minCompressSize = 1 << 10  // smaller blobs gain too little
	compressSample  = 64 << 10 // what is tried before compressing a whole blob
)

// compressible tells whether data shrinks enough under gzip to be worth
// sending compressed: by a tenth at least.
func compressible(gz *gzipWriters, sample []byte) bool {
	if len(sample) < minCompressSize {
		return false
	}
	var n countingWriter
	zw := gz.get(&n)
	zw.Write(sample)
	zw.Close()
	gz.put(zw)
	return int64(n) < int64(len(sample))*9/10
}

type countingWriter int64

func (c *countingWriter) Write(p []byte) (int, error) {
	*c += countingWriter(len(p))
	return len(p), nil
}

// gzipWriters reuses gzip writers: making one costs far more than
// compressing a small blob. The zero value is ready to use.
type gzipWriters struct{ pool sync.Pool }

func (g *gzipWriters) get(w io.Writer) *gzip.Writer {
	if zw, ok := g.pool.Get().(*gzip.Writer); ok {
		zw.Reset(w)
		return zw
	}
	zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // the level is valid
	return zw
}

func (g *gzipWriters) put(zw *gzip.Writer) {
	zw.Reset(io.Discard) // drop the reference to the last output
	g.pool.Put(zw)
}

// acceptsGzip reads an Accept-Encoding header: does it accept gzip?
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		if q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q="); ok {
			if v, err := strconv.ParseFloat(q, 64); err == nil && v == 0 {
				continue
			}
		}
		return true
	}
	return false
}

var errBodyClosed = errors.New("upload body read after it was closed")

// uploadBody is the body of one upload attempt: the blob, gzip-compressed
// as it is read when that pays. The transport may still read a body after
// the answer came back; Close, under the same lock as Read, takes the
// source back, so that a retry or the caller can use it again safely.
type uploadBody struct {
	mu      sync.Mutex
	closed  bool
	src     io.Reader
	gz      *gzipWriters
	zw      *gzip.Writer // nil: sent as it is
	out     bytes.Buffer // compressed bytes not yet read
	chunk   []byte
	srcErr  error // io.EOF once the source is drained and zw closed
	release func()
}

// newUploadBody reads up to compressSample bytes of r to decide whether to
// compress, when try says the server would accept it.
func newUploadBody(gz *gzipWriters, bufs *sync.Pool, r io.Reader, try bool) (*uploadBody, error) {
	b := &uploadBody{src: r, gz: gz}
	if !try {
		return b, nil
	}
	buf, _ := bufs.Get().(*[]byte)
	if buf == nil {
		s := make([]byte, compressSample)
		buf = &s
	}
	b.release = func() { bufs.Put(buf) }
	n, err := io.ReadFull(r, *buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		b.Close()
		return nil, err
	}
	sample := (*buf)[:n]
	if n >= minCompressSize {
		// The trial is the start of the real stream: kept if it shrank
		// enough, as compressible decides, else thrown away.
		zw := gz.get(&b.out)
		zw.Write(sample) // into b.out: cannot fail
		zw.Flush()
		if int64(b.out.Len()) < int64(n)*9/10 {
			b.zw = zw
			b.chunk = *buf // the sample is compressed already: reuse its buffer
			return b, nil
		}
		gz.put(zw)
		b.out.Reset()
	}
	b.src = io.MultiReader(bytes.NewReader(sample), r)
	return b, nil
}

// gzipped tells whether the body is sent compressed.
func (b *uploadBody) gzipped() bool { return b.zw != nil }

func (b *uploadBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return 0, errBodyClosed
	}
	if b.zw == nil {
		return b.src.Read(p)
	}
	for b.out.Len() == 0 && b.srcErr == nil {
		n, err := b.src.Read(b.chunk)
		if n > 0 {
			b.zw.Write(b.chunk[:n])
		}
		switch {
		case err == io.EOF:
			b.zw.Close()
			b.srcErr = io.EOF
		case err != nil:
			b.srcErr = err
		}
	}
	if b.out.Len() > 0 {
		return b.out.Read(p)
	}
	return 0, b.srcErr
}

// Close ends the body's use of the source; it is safe to call more than
// once and from any goroutine.
func (b *uploadBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.zw != nil {
		b.gz.put(b.zw)
		b.zw = nil
	}
	if b.release != nil {
		b.release()
	}
	return nil
}

// gzipBody is a downloaded body decompressed as it is read.
type gzipBody struct {
	zr   *gzip.Reader
	body io.Closer
}

func (g *gzipBody) Read(p []byte) (int, error) { return g.zr.Read(p) }

func (g *gzipBody) Close() error {
	g.zr.Close()
	return g.body.Close()
}
