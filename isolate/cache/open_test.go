package cache

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A process that died while downloading left a temporary file; the next
// Open removes it, but not those of a Cache still open.
func TestOpenRemovesTheTemporaryFilesOfDeadProcesses(t *testing.T) {
	dir := t.TempDir()
	live := openCache(t, dir, Limits{})
	liveFile := filepath.Join(live.tmpDir, "fill-123")
	if err := os.WriteFile(liveFile, []byte("half a download"), 0o600); err != nil {
		t.Fatal(err)
	}
	dead := filepath.Join(dir, "tmp", "4242")
	if err := os.MkdirAll(dead, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{dead + ".lock", filepath.Join(dead, "fill-9"), filepath.Join(dir, "tmp", "stray"), filepath.Join(dir, "index-77.tmp")} {
		if err := os.WriteFile(f, []byte("crashed midway"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	second := openCache(t, dir, Limits{})
	names, err := readNames(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	want := []string{filepath.Base(live.tmpDir), filepath.Base(live.tmpDir) + ".lock",
		filepath.Base(second.tmpDir), filepath.Base(second.tmpDir) + ".lock"}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("tmp holds %v, want %v", names, want)
	}
	if _, err := os.Stat(liveFile); err != nil {
		t.Fatalf("the live cache's temporary file: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "index-77.tmp")); !os.IsNotExist(err) {
		t.Fatal("a half-written index was left")
	}
	second.Close()
	if _, err := os.Stat(second.tmpDir); !os.IsNotExist(err) {
		t.Fatal("Close left its temporary folder")
	}
}

// Open trusts the index for entries that still match it, and repairs it
// from the files for the rest.
func TestOpenRepairsTheIndex(t *testing.T) {
	dir := t.TempDir()
	src, d := newSource("kept", "truncated", "retyped", "deleted", "adopted", "corrupt")
	c, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range d[:4] {
		get(t, c, src, x).Release()
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	path := func(i int) string { return filepath.Join(dir, d[i][:2], d[i]+"-444") }
	// truncated: a disk that lost data.
	overwrite(t, path(1), "tru", 0o444)
	// retyped: made writable, through a link, by a task running as root.
	if err := os.Chmod(path(2), 0o644); err != nil {
		t.Fatal(err)
	}
	// deleted by hand.
	if err := os.Remove(path(3)); err != nil {
		t.Fatal(err)
	}
	// adopted and corrupt: files the index never recorded (it was lost).
	overwrite(t, path(4), "adopted", 0o444)
	overwrite(t, path(5), "not what its name says", 0o444)
	if err := os.WriteFile(filepath.Join(dir, d[0][:2], "notes.txt"), []byte("not ours"), 0o644); err != nil {
		t.Fatal(err)
	}

	c = openCache(t, dir, Limits{})
	if got := held(t, c, src, d); strings.Join(got, " ") != "kept adopted" {
		t.Fatalf("held %v, want kept and adopted", got)
	}
	assertStats(t, c, 2, int64(len("kept")+len("adopted")))
	if _, err := os.Stat(filepath.Join(dir, d[0][:2], "notes.txt")); err != nil {
		t.Fatalf("a file that is not an entry was touched: %v", err)
	}
	// The index written at Open holds exactly those two.
	index, err := readIndex(dir)
	if err != nil || len(index) != 2 {
		t.Fatalf("index %v, %v", index, err)
	}

	// A lost or garbled index is rebuilt from the files.
	c.Close()
	if err := os.WriteFile(filepath.Join(dir, indexName), []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, dir, Limits{})
	assertStats(t, c, 2, int64(len("kept")+len("adopted")))
}

// The LRU order survives a restart of the slave.
func TestReopenKeepsTheLRUOrder(t *testing.T) {
	dir := t.TempDir()
	src, d := newSource("a", "b", "c")
	c, err := Open(dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []string{d[0], d[1], d[2], d[0]} {
		get(t, c, src, x).Release()
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	c = openCache(t, dir, Limits{MaxItems: 2}) // b was the least recently used
	if got := lruOrder(c, src); strings.Join(got, "") != "ac" {
		t.Fatalf("after reopening: %v, want a c", got)
	}
}

// Verify finds what Open cannot see: bytes changed in place, size kept.
func TestVerifyRemovesCorruptEntries(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Limits{})
	src, d := newSource("good", "flip")
	for _, x := range d {
		get(t, c, src, x).Release()
	}
	overwrite(t, c.path(key{d[1], 0o444}), "flop", 0o444)
	removed, err := c.Verify(context.Background())
	if err != nil || removed != 1 {
		t.Fatalf("removed %d, %v", removed, err)
	}
	if got := held(t, c, src, d); strings.Join(got, "") != "good" {
		t.Fatalf("held %v", got)
	}
}

// overwrite replaces the file at path, as a disk error or a task running as
// root could.
func overwrite(t *testing.T, path, content string, perm os.FileMode) {
	t.Helper()
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
}
