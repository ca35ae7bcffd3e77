package blobtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/blob"
)

func testMissing(t *testing.T, s blob.Store) {
	wantMissing(t, s, "never/put")
	put(t, s, "dir/file", []byte("x"))
	// Keys are names, not folders: neither a prefix of a key nor a path
	// under a blob is a blob.
	wantMissing(t, s, "dir")
	wantMissing(t, s, "dir/file/below")
	wantMissing(t, s, "dir/fil")
}

func testDelete(t *testing.T, s blob.Store) {
	put(t, s, "gone/soon", []byte("bye"))
	wantOK(t, "Delete", s.Delete(t.Context(), "gone/soon"))
	wantMissing(t, s, "gone/soon")
	wantOK(t, "second Delete", s.Delete(t.Context(), "gone/soon"))
	wantOK(t, "Delete of a key never put", s.Delete(t.Context(), "never/put"))

	put(t, s, "dir/file", []byte("stays"))
	wantOK(t, "Delete of a prefix of a key", s.Delete(t.Context(), "dir"))
	wantOK(t, "Delete of a key under a blob", s.Delete(t.Context(), "dir/file/below"))
	wantContent(t, s, "dir/file", []byte("stays"))
}

// testKeyFreedByDelete checks that deleting the only key under a prefix
// leaves nothing behind that stops the prefix from being a key itself.
func testKeyFreedByDelete(t *testing.T, s blob.Store) {
	put(t, s, "p/q/r", []byte("deep"))
	wantOK(t, "Delete", s.Delete(t.Context(), "p/q/r"))
	put(t, s, "p/q", []byte("now a blob"))
	wantContent(t, s, "p/q", []byte("now a blob"))
	wantOK(t, "Delete", s.Delete(t.Context(), "p/q"))
	put(t, s, "p", []byte("and this"))
	wantContent(t, s, "p", []byte("and this"))
}

func testInvalidKeys(t *testing.T, s blob.Store) {
	put(t, s, "x", []byte("safe"))
	put(t, s, "a/b", []byte("safe"))
	for _, key := range []string{
		"", "/abs", "../x", "a/../x", "..", ".", "a//b", "a/./b", "a/", "a/b/",
		"a b", `a\b`, "a\x00b", "é", strings.Repeat("k", 1025),
	} {
		if blob.ValidKey(key) {
			t.Fatalf("test key %q is valid", key)
		}
		ctx := t.Context()
		if err := s.Put(ctx, key, strings.NewReader("bad"), 3); err == nil {
			t.Errorf("Put(%q) succeeded, want an error", key)
		}
		if rc, _, err := s.Get(ctx, key); err == nil {
			rc.Close()
			t.Errorf("Get(%q) succeeded, want an error", key)
		}
		if _, err := s.Stat(ctx, key); err == nil {
			t.Errorf("Stat(%q) succeeded, want an error", key)
		}
		if err := s.Delete(ctx, key); err == nil {
			t.Errorf("Delete(%q) succeeded, want an error", key)
		}
	}
	// Refused keys that look like paths to existing blobs touched nothing.
	wantContent(t, s, "x", []byte("safe"))
	wantContent(t, s, "a/b", []byte("safe"))
}

func testSizeMismatch(t *testing.T, s blob.Store) {
	put(t, s, "kept", []byte("old"))
	tests := []struct {
		name string
		data string
		size int64
	}{
		{"fewer bytes than size", "abc", 5},
		{"more bytes than size", "abcdef", 3},
		{"bytes for size 0", "a", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := s.Put(t.Context(), "new", strings.NewReader(tc.data), tc.size); err == nil {
				t.Fatalf("Put of %d bytes with size %d succeeded, want an error", len(tc.data), tc.size)
			}
			wantMissing(t, s, "new")
			if err := s.Put(t.Context(), "kept", strings.NewReader(tc.data), tc.size); err == nil {
				t.Fatalf("Put of %d bytes with size %d over a blob succeeded, want an error", len(tc.data), tc.size)
			}
			wantContent(t, s, "kept", []byte("old"))
		})
	}
}

var errReader = errors.New("reader broke")

// failingReader yields n bytes, then fails.
type failingReader struct{ r io.Reader }

func newFailingReader(n int) io.Reader {
	return &failingReader{io.LimitReader(bytes.NewReader(randomBytes(4, n)), int64(n))}
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errReader
	}
	return n, err
}

// testFailingReader checks that Put is atomic: a reader that breaks midway
// leaves neither a part of the new blob nor a damaged old one.
func testFailingReader(t *testing.T, s blob.Store) {
	const n = 1 << 20
	for _, size := range []int64{2 * n, -1} {
		if err := s.Put(t.Context(), "new", newFailingReader(n), size); err == nil {
			t.Fatalf("Put(size %d) from a reader that fails succeeded, want an error", size)
		}
		wantMissing(t, s, "new")

		put(t, s, "kept", []byte("old"))
		if err := s.Put(t.Context(), "kept", newFailingReader(n), size); err == nil {
			t.Fatalf("Put(size %d) over a blob from a reader that fails succeeded, want an error", size)
		}
		wantContent(t, s, "kept", []byte("old"))
	}
}

func testCanceledContext(t *testing.T, s blob.Store) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Put(ctx, "canceled", strings.NewReader("data"), 4); err == nil {
		t.Fatal("Put with a canceled context succeeded, want an error")
	}
	wantMissing(t, s, "canceled")
}
