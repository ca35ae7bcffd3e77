package process

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// capped is what a log file must hold for data under limits l.
func capped(data []byte, l Limits) []byte {
	total := int64(len(data))
	if total <= l.Head+l.Tail {
		return data
	}
	var b bytes.Buffer
	b.Write(data[:l.Head])
	fmt.Fprintf(&b, "\n[dist_test: %d bytes omitted]\n", total-l.Head-l.Tail)
	b.Write(data[total-l.Tail:])
	return b.Bytes()
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.UintN(256))
	}
	return b
}

func TestCapFileKeepsHeadAndTail(t *testing.T) {
	limits := []Limits{{1000, 1000}, {10, -1}, {-1, 10}, {1, 1}, {-1, -1}}
	sizes := []int{0, 1, 999, 2000, 2001, 2999, 5000, 100_000}
	chunks := []int{1, 7, 999, 1000, 4096, 1 << 20}
	for _, l := range limits {
		l = l.withDefaults()
		for _, size := range sizes {
			data := randomBytes(size, uint64(size))
			want := capped(data, l)
			for _, chunk := range chunks {
				if chunk == 1 && size > 5000 {
					continue // slow, and 7 covers the same wrap-arounds
				}
				t.Run(fmt.Sprintf("head%d/tail%d/size%d/chunk%d", l.Head, l.Tail, size, chunk), func(t *testing.T) {
					path := filepath.Join(t.TempDir(), "log")
					c, err := createCapFile(path, l)
					if err != nil {
						t.Fatal(err)
					}
					for p := data; len(p) > 0; {
						k := min(chunk, len(p))
						c.add(p[:k])
						p = p[k:]
					}
					if err := c.finish(); err != nil {
						t.Fatal(err)
					}
					if c.n != int64(size) {
						t.Errorf("counted %d bytes, want %d", c.n, size)
					}
					got, err := os.ReadFile(path)
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.Equal(got, want) {
						t.Errorf("file holds %d bytes, want %d; first difference at %d", len(got), len(want), firstDiff(got, want))
					}
				})
			}
		}
	}
}

func TestCapFileDiscardCounts(t *testing.T) {
	c, err := createCapFile("", Limits{Head: 10, Tail: 10})
	if err != nil {
		t.Fatal(err)
	}
	c.add(make([]byte, 1000))
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if c.n != 1000 {
		t.Errorf("counted %d bytes, want 1000", c.n)
	}
}

func TestCapFileTruncatesOldLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(path, bytes.Repeat([]byte("old"), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := createCapFile(path, Limits{Head: 10, Tail: 10})
	if err != nil {
		t.Fatal(err)
	}
	c.add([]byte("new"))
	if err := c.finish(); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new" {
		t.Errorf("log holds %q, want %q", got, "new")
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
