package cache

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"slices"
	"strings"
	"testing"
)

// held lists the contents the cache still has, of those of src, in the
// order given.
func held(t *testing.T, c *Cache, src *source, digests []string) []string {
	t.Helper()
	var out []string
	for _, d := range digests {
		h, err := c.Get(context.Background(), d, -1, 0o444, nil)
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Lstat(c.path(key{d, 0o444})); !errors.Is(serr, fs.ErrNotExist) {
				t.Fatalf("%s was evicted but its file is still there", src.blobs[d])
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
		out = append(out, string(src.blobs[d]))
	}
	return out
}

func TestEvictsLeastRecentlyUsedByItems(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{MaxItems: 3})
	src, d := newSource("a", "b", "c", "d", "e")
	for _, x := range d[:3] {
		get(t, c, src, x).Release()
	}
	get(t, c, src, d[0]).Release() // a is now more recent than b and c
	get(t, c, src, d[3]).Release() // evicts b
	// held() uses entries too, so look at the index order instead.
	if got := lruOrder(c, src); strings.Join(got, "") != "dac" {
		t.Fatalf("most recent first: %v, want d a c", got)
	}
	get(t, c, src, d[4]).Release() // evicts c
	if got := lruOrder(c, src); strings.Join(got, "") != "eda" {
		t.Fatalf("most recent first: %v, want e d a", got)
	}
	if got := held(t, c, src, d); strings.Join(got, "") != "ade" {
		t.Fatalf("held %v", got)
	}
	assertStats(t, c, 3, 3)
}

func lruOrder(c *Cache, src *source) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for elem := c.lru.Front(); elem != nil; elem = elem.Next() {
		out = append(out, string(src.blobs[elem.Value.(*entry).key.digest]))
	}
	return out
}

func TestEvictsByBytes(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{MaxBytes: 10})
	src, d := newSource("1111", "2222", "3333", "44")
	for _, x := range d[:2] {
		get(t, c, src, x).Release()
	}
	assertStats(t, c, 2, 8)
	get(t, c, src, d[2]).Release() // 12 bytes: 1111 goes
	assertStats(t, c, 2, 8)
	get(t, c, src, d[3]).Release() // 10 bytes: fits
	if got := held(t, c, src, d); strings.Join(got, " ") != "2222 3333 44" {
		t.Fatalf("held %v", got)
	}
}

// Entries in use by a fetch in progress are not evicted, however old;
// released, they go as any other.
func TestPinnedEntriesSurvive(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{MaxItems: 2})
	src, d := newSource("pinned", "b", "c", "d")
	pinned := get(t, c, src, d[0]) // the oldest
	for _, x := range d[1:] {
		get(t, c, src, x).Release()
	}
	if got := held(t, c, src, d); !slices.Contains(got, "pinned") || len(got) != 2 {
		t.Fatalf("held %v, want pinned and one more", got)
	}
	if got, err := os.ReadFile(pinned.Path); err != nil || string(got) != "pinned" {
		t.Fatalf("pinned entry: %q, %v", got, err)
	}
	pinned.Release()
	get(t, c, src, d[1]).Release() // b back; something must go: pinned is the LRU
	if got := held(t, c, src, d); slices.Contains(got, "pinned") {
		t.Fatalf("held %v after release", got)
	}
}

// A blob larger than the whole cache is still delivered, and does not stay.
func TestBlobLargerThanTheCache(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{MaxBytes: 4})
	src, d := newSource("larger than the cache")
	h := get(t, c, src, d[0])
	if got, err := os.ReadFile(h.Path); err != nil || string(got) != "larger than the cache" {
		t.Fatalf("%q, %v", got, err)
	}
	h.Release()
	assertStats(t, c, 0, 0)
}
