package cache

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

func digestOf(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func openCache(t *testing.T, dir string, lim Limits) *Cache {
	t.Helper()
	c, err := Open(dir, lim)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// source stands for the CAS: it fills blobs and counts the fills.
type source struct {
	mu    sync.Mutex
	blobs map[string][]byte
	fills map[string]int
	gate  chan struct{} // when set, fills wait for it to close
}

func newSource(contents ...string) (*source, []string) {
	s := &source{blobs: map[string][]byte{}, fills: map[string]int{}}
	var digests []string
	for _, c := range contents {
		d := digestOf([]byte(c))
		s.blobs[d] = []byte(c)
		digests = append(digests, d)
	}
	return s, digests
}

func (s *source) fill(digest string) Fill {
	return func(ctx context.Context, w io.Writer) error {
		s.mu.Lock()
		s.fills[digest]++
		gate := s.gate
		s.mu.Unlock()
		if gate != nil {
			select {
			case <-gate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		_, err := w.Write(s.blobs[digest])
		return err
	}
}

func (s *source) count(digest string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fills[digest]
}

func get(t *testing.T, c *Cache, src *source, digest string) *Handle {
	t.Helper()
	h, err := c.Get(context.Background(), digest, int64(len(src.blobs[digest])), 0o444, src.fill(digest))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func assertStats(t *testing.T, c *Cache, items int, size int64) {
	t.Helper()
	if st := c.Stats(); st.Items != items || st.Bytes != size {
		t.Fatalf("stats %+v, want %d items, %d bytes", st, items, size)
	}
}

func TestGetFillsOnceAndKeeps(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("hello")
	h := get(t, c, src, d[0])
	got, err := os.ReadFile(h.Path)
	if err != nil || string(got) != "hello" || h.Hot || h.Size != 5 {
		t.Fatalf("first get: %q, %v, hot %v, size %d", got, err, h.Hot, h.Size)
	}
	fi, err := os.Stat(h.Path)
	if err != nil || fi.Mode().Perm() != 0o444 {
		t.Fatalf("entry mode %v, %v; want 0444", fi.Mode(), err)
	}
	h.Release()
	h.Release() // twice is harmless
	h2 := get(t, c, src, d[0])
	defer h2.Release()
	if !h2.Hot || h2.Path != h.Path || src.count(d[0]) != 1 {
		t.Fatalf("second get: hot %v, %d fills", h2.Hot, src.count(d[0]))
	}
	assertStats(t, c, 1, 5)
}

// Slots asking for one blob at once download it once; the others wait.
func TestConcurrentGetsFillOnce(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("shared by eight slots")
	src.gate = make(chan struct{})
	const slots = 8
	hot := make(chan bool, slots)
	var wg sync.WaitGroup
	for range slots {
		wg.Go(func() {
			h, err := c.Get(context.Background(), d[0], -1, 0o444, src.fill(d[0]))
			if err != nil {
				t.Error(err)
				return
			}
			defer h.Release()
			hot <- h.Hot
		})
	}
	// Let the first fill start, so that the others find it running.
	for src.count(d[0]) == 0 {
		runtime.Gosched()
	}
	close(src.gate)
	wg.Wait()
	close(hot)
	cold := 0
	for h := range hot {
		if !h {
			cold++
		}
	}
	if n := src.count(d[0]); n != 1 || cold != 1 {
		t.Fatalf("%d fills, %d cold gets; want 1 and 1", n, cold)
	}
}

// A caller that gives up does not fail the others waiting on its fill.
func TestGetOutlivesACanceledLeader(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("wanted by two")
	src.gate = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	leaderDone := make(chan error)
	go func() {
		_, err := c.Get(ctx, d[0], -1, 0o444, src.fill(d[0]))
		leaderDone <- err
	}()
	for src.count(d[0]) == 0 {
		runtime.Gosched()
	}
	follower := make(chan *Handle)
	go func() {
		h, err := c.Get(context.Background(), d[0], -1, 0o444, src.fill(d[0]))
		if err != nil {
			t.Error(err)
		}
		follower <- h
	}()
	cancel()
	if err := <-leaderDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v", err)
	}
	close(src.gate)
	h := <-follower
	if h == nil {
		t.Fatal("the follower failed")
	}
	defer h.Release()
	if got, _ := os.ReadFile(h.Path); string(got) != "wanted by two" || h.Hot {
		t.Fatalf("follower got %q, hot %v", got, h.Hot)
	}
}

func TestGetRefusesWrongBytes(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Limits{})
	d := digestOf([]byte("good"))
	liar := func(ctx context.Context, w io.Writer) error { _, err := w.Write([]byte("evil")); return err }
	if _, err := c.Get(context.Background(), d, -1, 0o444, liar); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong bytes: %v", err)
	}
	if _, err := c.Get(context.Background(), d, 3, 0o444, liar); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong size: %v", err)
	}
	failing := func(ctx context.Context, w io.Writer) error {
		w.Write([]byte("go"))
		return io.ErrUnexpectedEOF
	}
	if _, err := c.Get(context.Background(), d, -1, 0o444, failing); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("failed fill: %v", err)
	}
	assertStats(t, c, 0, 0)
	if names, _ := readNames(c.tmpDir); len(names) != 0 {
		t.Fatalf("temporary files left: %v", names)
	}
	// A known size that the cached entry does not have is the manifest's lie.
	src, ds := newSource("four")
	get(t, c, src, ds[0]).Release()
	if _, err := c.Get(context.Background(), ds[0], 5, 0o444, src.fill(ds[0])); !errors.Is(err, ErrMismatch) {
		t.Fatalf("size mismatch on a hit: %v", err)
	}
	// Nor does a lying manifest cost the entry of another mode its place.
	if _, err := c.Get(context.Background(), ds[0], 5, 0o555, src.fill(ds[0])); !errors.Is(err, ErrMismatch) {
		t.Fatalf("size mismatch on a copy from another mode: %v", err)
	}
	get(t, c, src, ds[0]).Release()
	if src.count(ds[0]) != 1 {
		t.Fatalf("%d fills, want 1", src.count(ds[0]))
	}
	if _, err := c.Get(context.Background(), "../../etc/passwd", -1, 0o444, src.fill(ds[0])); err == nil {
		t.Fatal("a digest that is a path was accepted")
	}
	if _, err := c.Get(context.Background(), digestOf([]byte("absent")), -1, 0o444, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("absent without fill: %v", err)
	}
}

func TestPlaceLinksReadOnlyAndCopiesWritable(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("#!/bin/sh\necho hi\n")
	ctx := context.Background()
	sandbox := t.TempDir()
	tests := []struct {
		name   string
		perm   fs.FileMode
		linked bool
		hot    bool
	}{
		{"ro.sh", 0o555, true, false},
		{"ro-again.sh", 0o555, true, true},
		{"rw.sh", 0o755, false, true},  // same entry (0555), copied
		{"ro.txt", 0o444, true, true},  // another entry, made from the first
		{"rw.txt", 0o644, false, true}, // copied from the 0444 entry
	}
	for _, tt := range tests {
		dst := filepath.Join(sandbox, tt.name)
		p, err := c.Place(ctx, d[0], -1, dst, tt.perm, src.fill(d[0]), PlaceOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if (p.Linked != nil) != tt.linked {
			t.Errorf("%s: Linked %v, want a handle %v", tt.name, p.Linked, tt.linked)
		}
		if p.Linked != nil {
			defer p.Linked.Release()
		}
		hot, n := p.Hot, p.Size
		h, err := c.Get(ctx, d[0], -1, tt.perm, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.Release()
		placed, _ := os.Stat(dst)
		entry, _ := os.Stat(h.Path)
		if hot != tt.hot || n != int64(len(src.blobs[d[0]])) || os.SameFile(placed, entry) != tt.linked || placed.Mode().Perm() != tt.perm {
			t.Errorf("%s: hot %v, %d bytes, linked %v, mode %v; want hot %v, linked %v, mode %v",
				tt.name, hot, n, os.SameFile(placed, entry), placed.Mode().Perm(), tt.hot, tt.linked, tt.perm)
		}
	}
	if n := src.count(d[0]); n != 1 {
		t.Fatalf("%d fills, want 1", n)
	}
	assertStats(t, c, 2, 2*int64(len(src.blobs[d[0]])))
	// Writing the copy leaves the cache as it was.
	if err := os.WriteFile(filepath.Join(sandbox, "rw.txt"), []byte("changed by the task"), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := c.Get(ctx, d[0], -1, 0o444, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	if got, _ := os.ReadFile(h.Path); !bytes.Equal(got, src.blobs[d[0]]) {
		t.Fatalf("the entry now holds %q", got)
	}
}

// Where the cache and the sandbox are on two filesystems, a link fails with
// EXDEV and the file is copied.
func TestPlaceCopiesAcrossFilesystems(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	links := 0
	c.link = func(oldname, newname string) error {
		links++
		return &os.LinkError{Op: "link", Old: oldname, New: newname, Err: syscall.EXDEV}
	}
	src, d := newSource("data")
	dst := filepath.Join(t.TempDir(), "f")
	if _, err := c.Place(context.Background(), d[0], 4, dst, 0o444, src.fill(d[0]), PlaceOptions{}); err != nil {
		t.Fatal(err)
	}
	h, err := c.Get(context.Background(), d[0], 4, 0o444, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Release()
	placed, _ := os.Stat(dst)
	entry, _ := os.Stat(h.Path)
	got, _ := os.ReadFile(dst)
	if links != 1 || os.SameFile(placed, entry) || string(got) != "data" || placed.Mode().Perm() != 0o444 {
		t.Fatalf("%d links tried, linked %v, %q, mode %v", links, os.SameFile(placed, entry), got, placed.Mode())
	}
	// Other link failures are the caller's.
	c.link = func(oldname, newname string) error { return &os.LinkError{Err: syscall.EEXIST} }
	if _, err := c.Place(context.Background(), d[0], 4, dst+"2", 0o444, src.fill(d[0]), PlaceOptions{}); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("EEXIST: %v", err)
	}
}

// An entry that another process evicted after this one last merged the
// index is filled again.
func TestPlaceRefillsAnEntryRemovedBehindItsBack(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("data")
	get(t, c, src, d[0]).Release()
	os.Remove(c.path(key{d[0], 0o444}))
	dst := filepath.Join(t.TempDir(), "f")
	p, err := c.Place(context.Background(), d[0], 4, dst, 0o444, src.fill(d[0]), PlaceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p.Linked.Release()
	if got, _ := os.ReadFile(dst); string(got) != "data" || p.Hot || src.count(d[0]) != 2 {
		t.Fatalf("%q, hot %v, %d fills", got, p.Hot, src.count(d[0]))
	}
}
