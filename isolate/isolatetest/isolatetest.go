// Package isolatetest holds what the tests of the isolate packages share to
// build their inputs: files in a folder and blobs that compress well or not
// at all. It imports none of them, so that any of them can use it.
package isolatetest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// WriteFile writes content at dir/rel with mode (past the umask), making
// folders, and returns its path.
func WriteFile(t testing.TB, dir, rel, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	return p
}

// TextBlob returns n bytes of text, which compress well.
func TextBlob(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("line " + strconv.Itoa(i) + ": the quick brown fox jumps over the lazy dog\n")
	}
	return b.Bytes()[:n]
}

// RandomBlob returns n bytes that do not compress, the same for a seed.
func RandomBlob(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// CountingReader counts the bytes read through it.
type CountingReader struct {
	R io.Reader
	N int64
}

func (c *CountingReader) Read(p []byte) (int, error) {
	n, err := c.R.Read(p)
	c.N += int64(n)
	return n, err
}
