package cache

import (
	"context"
	"os"
	"strings"
	"sync"
	"testing"
)

// Two slave processes on one host may point at one folder: each sees what
// the other filled once they merge the index, and the limits hold for the
// whole folder. Two Opens in one process lock as two processes would:
// a flock belongs to the open file, not to the process.
func TestTwoProcessesShareOneFolder(t *testing.T) {
	dir := t.TempDir()
	a := openCache(t, dir, Limits{MaxItems: 3})
	b := openCache(t, dir, Limits{MaxItems: 3})
	src, d := newSource("x", "y", "z")
	get(t, a, src, d[0]).Release()
	get(t, a, src, d[1]).Release()
	a.mu.Lock()
	a.sync()
	a.mu.Unlock()
	b.mu.Lock()
	b.sync()
	b.mu.Unlock()
	assertStats(t, b, 2, 2)
	if h := get(t, b, src, d[0]); !h.Hot {
		t.Fatal("b downloaded what a had cached")
	} else {
		h.Release()
	}
	// b fills z and is then over its limit of 3 only with what a adds.
	get(t, b, src, d[2]).Release()
	src2, d2 := newSource("w")
	get(t, a, src2, d2[0]).Release()
	for _, c := range []*Cache{a, b, a} {
		c.mu.Lock()
		if err := c.sync(); err != nil {
			t.Fatal(err)
		}
		c.mu.Unlock()
	}
	// y is the least recently used of the four across both processes.
	for name, c := range map[string]*Cache{"a": a, "b": b} {
		assertStats(t, c, 3, 3)
		if got := held(t, c, src, d); strings.Join(got, "") != "xz" {
			t.Errorf("%s holds %v of x y z, want x z", name, got)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	index, err := readIndex(dir)
	if err != nil || len(index) != 3 {
		t.Fatalf("index after both closed: %v, %v", index, err)
	}
}

// Two processes filling the same blob at once both succeed: each renames
// its own verified temporary file over the other's identical one.
func TestTwoProcessesFillOneBlobAtOnce(t *testing.T) {
	dir := t.TempDir()
	a := openCache(t, dir, Limits{})
	b := openCache(t, dir, Limits{})
	content := strings.Repeat("build tree ", 100_000)
	src, d := newSource(content)
	var wg sync.WaitGroup
	for _, c := range []*Cache{a, b, a, b} {
		wg.Go(func() {
			dst := t.TempDir() + "/f"
			p, err := c.Place(context.Background(), d[0], -1, dst, 0o444, src.fill(d[0]), PlaceOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			defer p.Linked.Release()
			if got, err := os.ReadFile(dst); err != nil || string(got) != content {
				t.Errorf("placed %d bytes, %v", len(got), err)
			}
		})
	}
	wg.Wait()
	if n := src.count(d[0]); n < 1 || n > 2 {
		t.Fatalf("%d fills, want one per process at most", n)
	}
}
