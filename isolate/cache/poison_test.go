package cache

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// poison rewrites an entry's bytes the way a task running as the cache's
// owner could: make it writable, write bytes of the same size, make it
// read-only again and set its modification time back. Only the change
// time tells.
func poison(t *testing.T, path, content string) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
}

func rechecks(c *Cache) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rechecks
}

// An entry whose file changed since the cache recorded it is hashed again
// before it is handed out: poisoned, it is removed and filled again.
func TestChangedEntryIsHashedAgain(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("the right bytes")
	h := get(t, c, src, d[0])
	h.Release()
	poison(t, h.Path, "the wrong bytes")

	h = get(t, c, src, d[0])
	defer h.Release()
	if got, _ := os.ReadFile(h.Path); string(got) != "the right bytes" || h.Hot || src.count(d[0]) != 2 || rechecks(c) != 1 {
		t.Fatalf("after poisoning: %q, hot %v, %d fills, %d rechecks; want the right bytes filled again", got, h.Hot, src.count(d[0]), rechecks(c))
	}
	// A file that only looks changed (touched) is kept once hashed, and
	// recorded anew: the next use hashes nothing.
	h.Release()
	now := time.Now()
	if err := os.Chtimes(h.Path, now, now); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		h := get(t, c, src, d[0])
		h.Release()
		if !h.Hot {
			t.Error("a touched but intact entry was filled again")
		}
	}
	if src.count(d[0]) != 2 || rechecks(c) != 2 {
		t.Errorf("%d fills, %d rechecks; want 2 and 2", src.count(d[0]), rechecks(c))
	}
}

// A copy is hashed as it is made: an entry changed behind the cache's back
// in a way its record does not show is never copied into a task's folder.
func TestCopyOfChangedEntryIsRefused(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("the right bytes")
	h := get(t, c, src, d[0])
	h.Release()
	poison(t, h.Path, "the wrong bytes")
	// Make the record match the poisoned file: the metadata check passes.
	fi, _ := os.Lstat(h.Path)
	c.mu.Lock()
	c.entries[key{d[0], 0o444}].ino = inodeOf(fi)
	c.mu.Unlock()

	dst := filepath.Join(t.TempDir(), "f")
	p, err := c.Place(context.Background(), d[0], -1, dst, 0o444, src.fill(d[0]), PlaceOptions{Copy: true})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(dst); string(got) != "the right bytes" || p.Linked != nil || src.count(d[0]) != 2 {
		t.Fatalf("copied %q, linked %v, %d fills; want the right bytes, filled again", got, p.Linked, src.count(d[0]))
	}
	if fi, _ := os.Stat(dst); fi.Mode().Perm() != 0o444 {
		t.Errorf("copy mode %v, want 0444", fi.Mode())
	}
}

// The cache's own links and their removal change an entry's change time:
// that does not make the entry suspect.
func TestOwnLinksDoNotMakeEntriesSuspect(t *testing.T) {
	c := openCache(t, t.TempDir(), Limits{})
	src, d := newSource("shared tree")
	ctx := context.Background()
	for i := range 3 {
		sandbox := t.TempDir()
		var links []*Handle
		for j := range 3 {
			p, err := c.Place(ctx, d[0], -1, filepath.Join(sandbox, string(rune('a'+j))), 0o444, src.fill(d[0]), PlaceOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if p.Linked == nil {
				t.Fatalf("round %d: not linked", i)
			}
			links = append(links, p.Linked)
		}
		// Another slot's fetch while this task's folder is being removed.
		os.Remove(filepath.Join(sandbox, "a"))
		get(t, c, src, d[0]).Release()
		if err := os.RemoveAll(sandbox); err != nil {
			t.Fatal(err)
		}
		for _, h := range links {
			h.Release()
		}
	}
	if n := rechecks(c); n != 0 || src.count(d[0]) != 1 {
		t.Errorf("%d rechecks, %d fills; want none and 1", n, src.count(d[0]))
	}
	// And a change of the change time with no link out is suspect.
	h := get(t, c, src, d[0])
	h.Release()
	if err := os.Chmod(h.Path, 0o444); err != nil { // same mode: only the change time moves
		t.Fatal(err)
	}
	get(t, c, src, d[0]).Release()
	if n := rechecks(c); n != 1 {
		t.Errorf("%d rechecks after a chmod, want 1", n)
	}
}

// Read-only files a task could not read through a link of root's (0400,
// 0500) are copies, owned by the task's user when Place is told one; Copy
// forbids links altogether. The cache folder is its owner's alone.
func TestPlaceForAnotherUser(t *testing.T) {
	dir := t.TempDir()
	c := openCache(t, dir, Limits{})
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache folder: %v, %v; want mode 0700", fi, err)
	}
	src, d := newSource("#!/bin/sh\n")
	ctx := context.Background()
	sandbox := t.TempDir()
	owner := &Owner{UID: os.Getuid(), GID: os.Getgid()}
	if os.Geteuid() == 0 {
		owner = &Owner{UID: 12345, GID: 23456}
	}
	tests := []struct {
		name   string
		perm   os.FileMode
		copy   bool
		linked bool
	}{
		{"r", 0o444, false, true},
		{"rx", 0o555, false, true},
		{"owner-r", 0o400, false, false},
		{"owner-rx", 0o500, false, false},
		{"group-rx", 0o550, false, false},
		{"rw", 0o644, false, false},
		{"copy-r", 0o444, true, false},
	}
	for _, tt := range tests {
		dst := filepath.Join(sandbox, tt.name)
		p, err := c.Place(ctx, d[0], -1, dst, tt.perm, src.fill(d[0]), PlaceOptions{Copy: tt.copy, Owner: owner})
		if err != nil {
			t.Fatal(err)
		}
		if p.Linked != nil {
			defer p.Linked.Release()
		}
		fi, _ := os.Lstat(dst)
		st := fi.Sys().(*syscall.Stat_t)
		if (p.Linked != nil) != tt.linked || fi.Mode().Perm() != tt.perm {
			t.Errorf("%s: linked %v, mode %v; want linked %v, mode %v", tt.name, p.Linked != nil, fi.Mode().Perm(), tt.linked, tt.perm)
		}
		if !tt.linked && (int(st.Uid) != owner.UID || int(st.Gid) != owner.GID) {
			t.Errorf("%s: copy owned by %d:%d, want %d:%d", tt.name, st.Uid, st.Gid, owner.UID, owner.GID)
		}
		if tt.linked && int(st.Uid) != os.Geteuid() {
			t.Errorf("%s: a link to an entry of uid %d", tt.name, st.Uid)
		}
	}
}
