package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/blob"
)

// logSource serves one log, counting the bytes read from it.
type logSource struct {
	Source
	data     []byte
	seekable bool
	read     int
}

type counting struct {
	r *bytes.Reader
	n *int
}

func (c counting) Read(p []byte) (int, error) { n, err := c.r.Read(p); *c.n += n; return n, err }
func (c counting) Close() error               { return nil }

type seekCounting struct{ counting }

func (c seekCounting) Seek(off int64, whence int) (int64, error) { return c.r.Seek(off, whence) }

func (s *logSource) OpenOutput(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	c := counting{bytes.NewReader(s.data), &s.read}
	if s.seekable {
		return seekCounting{c}, blob.Info{Size: int64(len(s.data))}, nil
	}
	return c, blob.Info{Size: int64(len(s.data))}, nil
}

// A log's tail costs its last 64 KiB where the store seeks, and at most
// 4 MiB where it does not: a bigger log is linked, not read.
func TestReadTailIsBounded(t *testing.T) {
	var b strings.Builder
	for i := 1; b.Len() < 10<<20; i++ {
		fmt.Fprintf(&b, "line %d of a long log\n", i)
	}
	big := []byte(b.String())
	last := strings.TrimSpace(string(big[bytes.LastIndexByte(big[:len(big)-1], '\n')+1:]))

	src := &logSource{data: big, seekable: true}
	p := &Pages{src: src, log: slog.New(slog.DiscardHandler)}
	got := p.readTail(context.Background(), "stderr", "k")
	if !got.Cut || got.Lines != tailLines || !strings.HasSuffix(got.Text, last) || src.read > tailBytes {
		t.Errorf("seekable: %d lines, cut %v, read %d bytes, ends %q", got.Lines, got.Cut, src.read, got.Text[max(0, len(got.Text)-40):])
	}

	src = &logSource{data: big}
	p.src = src
	got = p.readTail(context.Background(), "stderr", "k")
	if got.Note == "" || got.Text != "" || src.read > scanBytes+64<<10 {
		t.Errorf("unseekable 10 MB: note %q, read %d bytes", got.Note, src.read)
	}

	small := &logSource{data: big[:200<<10]}
	p.src = small
	got = p.readTail(context.Background(), "stdout", "k")
	wantLast := strings.TrimSpace(string(big[:200<<10][bytes.LastIndexByte(big[:200<<10-1], '\n')+1:]))
	if got.Note != "" || got.Lines != tailLines || !strings.HasSuffix(got.Text, wantLast) {
		t.Errorf("unseekable 200 KB: %d lines, note %q, ends %q want %q", got.Lines, got.Note, got.Text[max(0, len(got.Text)-40):], wantLast)
	}
}
