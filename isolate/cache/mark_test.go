package cache

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func boot(id string) func() (string, error) {
	return func() (string, error) { return id, nil }
}

func noBootID() (string, error) { return "", errors.New("no /proc here") }

func openBoot(t *testing.T, dir string, bootID func() (string, error)) *Cache {
	t.Helper()
	c, err := openWith(dir, Limits{}, bootID)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// crash ends c as a killed process would: its flocks go with its file
// descriptors, and nothing more is written.
func crash(c *Cache) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.tmpLock.Close()
	c.lock.Close()
}

func syncIndex(t *testing.T, c *Cache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.sync(); err != nil {
		t.Fatal(err)
	}
}

// assertOnlyMarkOf checks that the only mark left in tmp is c's: those of
// dead writers are gone once their entries are known durable.
func assertOnlyMarkOf(t *testing.T, dir string, c *Cache) {
	t.Helper()
	names, err := readNames(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(names)
	if want := []string{filepath.Base(c.tmpDir), filepath.Base(c.tmpLock.Name())}; !slices.Equal(names, want) {
		t.Fatalf("tmp holds %v, want %v", names, want)
	}
	if got, err := os.ReadFile(c.tmpLock.Name()); err != nil || len(strings.TrimSpace(string(got))) == 0 {
		t.Fatalf("the open cache's mark: %q, %v", got, err)
	}
}

// "flip" rewritten as "flop" in place, size kept, stands for an entry
// whose bytes did not reach the disk before the host went down: only a
// full verify tells it from a good one. Whether it is still held after
// the reopen tells whether that verify ran.
func TestOpenVerifiesOnlyAfterAHostCrash(t *testing.T) {
	tests := []struct {
		name          string
		before, after func() (string, error) // boot ids of the writer and of the reopen
		clean         bool                   // the writer closed
		verify        bool
	}{
		{"process killed", boot("b1"), boot("b1"), false, false},
		{"host crashed", boot("b1"), boot("b2"), false, true},
		{"closed", boot("b1"), boot("b1"), true, false},
		{"closed then rebooted", boot("b1"), boot("b2"), true, false},
		{"boot id unreadable, killed", noBootID, noBootID, false, true},
		{"boot id unreadable, closed", noBootID, noBootID, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			src, d := newSource("good", "flip", "new")
			c := openBoot(t, dir, tt.before)
			for _, x := range d[:2] {
				get(t, c, src, x).Release()
			}
			syncIndex(t, c) // the index trusts both: only a verify looks further
			if tt.clean {
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
			} else {
				crash(c)
			}
			overwrite(t, c.path(key{d[1], 0o444}), "flop", 0o444)
			// What a host crash leaves: a file whose size and times are
			// as recorded, and whose bytes never reached the disk.
			rerecord(t, dir, c.path(key{d[1], 0o444}))

			c = openBoot(t, dir, tt.after)
			want, hashed := "good flip", 0
			if tt.verify {
				want, hashed = "good", 2
			}
			if c.verifiedAll != tt.verify || c.hashedAtOpen != hashed {
				t.Errorf("verified all %v, %d files hashed; want %v, %d", c.verifiedAll, c.hashedAtOpen, tt.verify, hashed)
			}
			if got := strings.Join(held(t, c, src, d[:2]), " "); got != want {
				t.Errorf("held %q, want %q", got, want)
			}
			assertOnlyMarkOf(t, dir, c)
			// The cache works on: hits are hot, misses fill.
			if h := get(t, c, src, d[0]); !h.Hot {
				t.Error("a kept entry was downloaded again")
			} else {
				h.Release()
			}
			if h := get(t, c, src, d[2]); h.Hot || src.count(d[2]) != 1 {
				t.Errorf("a new blob: hot %v, %d fills", h.Hot, src.count(d[2]))
			} else {
				h.Release()
			}
		})
	}
}

// One writer closing cleanly does not vouch for another that shares the
// folder and went down with the host.
func TestACleanCloseDoesNotVouchForAnotherWriter(t *testing.T) {
	dir := t.TempDir()
	src, d := newSource("good", "flip")
	a := openBoot(t, dir, boot("b1"))
	b := openBoot(t, dir, boot("b1"))
	get(t, a, src, d[0]).Release()
	get(t, b, src, d[1]).Release()
	syncIndex(t, b)
	syncIndex(t, a)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	crash(b)
	overwrite(t, b.path(key{d[1], 0o444}), "flop", 0o444)
	c := openBoot(t, dir, boot("b2"))
	if !c.verifiedAll {
		t.Fatal("no verify after a writer went down with the host")
	}
	if got := strings.Join(held(t, c, src, d), " "); got != "good" {
		t.Fatalf("held %q, want good", got)
	}
}

// The mark of a live writer is not a crash, whatever boot id it holds;
// the mark of a writer that died before it wrote anything is empty, as are
// those of dist_test versions that fsync'd every entry: neither costs a
// verify.
func TestLiveAndEmptyMarksDoNotVerify(t *testing.T) {
	dir := t.TempDir()
	live := openBoot(t, dir, boot("b0"))
	if err := os.WriteFile(filepath.Join(dir, "tmp", "4242.lock"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	c := openBoot(t, dir, boot("b1"))
	if c.verifiedAll {
		t.Fatal("verified all")
	}
	src, d := newSource("still usable")
	get(t, live, src, d[0]).Release()
	if _, err := os.Stat(filepath.Join(dir, "tmp", "4242.lock")); !os.IsNotExist(err) {
		t.Fatalf("the empty mark was left: %v", err)
	}
}

// The marks of dead writers go only once the verify is done: an Open that
// fails midway leaves them, and the next one verifies.
func TestAFailedOpenLeavesTheMarks(t *testing.T) {
	dir := t.TempDir()
	src, d := newSource("good", "flip")
	c := openBoot(t, dir, boot("b1"))
	for _, x := range d {
		get(t, c, src, x).Release()
	}
	syncIndex(t, c)
	crash(c)
	overwrite(t, c.path(key{d[1], 0o444}), "flop", 0o444)
	// Something named like an entry that Open cannot remove.
	other := digestOf([]byte("blocker"))
	blocker := filepath.Join(dir, other[:2], other+"-444")
	if err := os.MkdirAll(filepath.Join(blocker, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := openWith(dir, Limits{}, boot("b2")); err == nil {
		t.Fatal("Open removed a folder that is not empty")
	}
	if err := os.RemoveAll(blocker); err != nil {
		t.Fatal(err)
	}
	c = openBoot(t, dir, boot("b2"))
	if !c.verifiedAll {
		t.Fatal("the failed Open's successor did not verify")
	}
	if got := strings.Join(held(t, c, src, d), " "); got != "good" {
		t.Fatalf("held %q, want good", got)
	}
	assertOnlyMarkOf(t, dir, c)
}

// Close makes the entries durable before it removes its mark; a Cache
// that cannot do so leaves it.
func TestCloseRemovesItsMarkOnlyWhenSynced(t *testing.T) {
	dir := t.TempDir()
	c := openBoot(t, dir, boot("b1"))
	mark := c.tmpLock.Name()
	if got, err := os.ReadFile(mark); err != nil || string(got) != "b1\n" {
		t.Fatalf("mark %q, %v", got, err)
	}
	src, d := newSource("data")
	get(t, c, src, d[0]).Release()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); !os.IsNotExist(err) {
		t.Fatalf("the mark outlived Close: %v", err)
	}

	// A filesystem that cannot be synced (here: the descriptor syncfs is
	// given is closed) leaves the mark, for the next Open to deal with.
	c = openBoot(t, dir, boot("b1"))
	mark = c.tmpLock.Name()
	get(t, c, src, d[0]).Release()
	c.lock.Close()
	if err := c.Close(); err == nil {
		t.Fatal("Close hid that it could not sync")
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("the mark of an unclean Close: %v", err)
	}
	c = openBoot(t, dir, boot("b1"))
	if c.verifiedAll {
		t.Fatal("verified all after an unclean Close in the same boot")
	}
	assertOnlyMarkOf(t, dir, c)
}

// rerecord makes the index's record of the entry at path match its file
// as it is now.
func rerecord(t *testing.T, dir, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	ino := inodeOf(fi)
	b, err := os.ReadFile(filepath.Join(dir, indexName))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	found := false
	for i, line := range lines {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == filepath.Base(path) {
			lines[i] = fmt.Sprintf("%s %d %s %d %d", f[0], ino.size, f[2], ino.ctime, ino.mtime)
			found = true
		}
	}
	if !found {
		t.Fatalf("no record of %s in the index", path)
	}
	if err := os.WriteFile(filepath.Join(dir, indexName), []byte(strings.Join(lines, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}
