package fetch

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cache"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
)

type treeFile struct {
	content string
	mode    int
}

// sharedTree uploads a tree of two manifests, with files of identical
// content under several paths and modes, and returns the top manifest, the
// files, and the distinct blobs (manifests included) with their sizes.
func sharedTree(t *testing.T, sc *castest.CAS, readOnly int) (string, map[string]treeFile, map[string]int64) {
	t.Helper()
	// 640 KiB that do not compress: cut midway in the retry tests.
	bigBytes := make([]byte, 640<<10)
	rand.NewChaCha8([32]byte{1}).Read(bigBytes)
	big := string(bigBytes)
	lib := map[string]treeFile{
		"lib/libfoo.so":  {"\x7fELF shared object", 0o755},
		"lib/libbar.so":  {big, 0o644},
		"lib/README":     {"same bytes\n", 0o644},
		"lib/empty.txt":  {"", 0o644},
		"lib/private.pm": {"same bytes\n", 0o640},
	}
	top := map[string]treeFile{
		"bin/foo-test":             {"\x7fELF test binary", 0o755},
		"bin/run.sh":               {"#!/bin/sh\nexec ./foo-test\n", 0o755},
		"testdata/a.txt":           {"same bytes\n", 0o644},
		"testdata/nested/deep.bin": {"\x00\x01\x02", 0o600},
		"testdata/empty":           {"", 0o644},
	}
	blobs := map[string]int64{}
	manifest := func(files map[string]treeFile, iso *isolate.Isolated) string {
		iso.Files = map[string]isolate.File{}
		for p, f := range files {
			d := sc.Put(t, []byte(f.content))
			blobs[d] = int64(len(f.content))
			iso.Files[p] = isolate.File{Digest: d, Size: int64(len(f.content)), Mode: f.mode}
		}
		data := iso.Encode()
		d := sc.Put(t, data)
		blobs[d] = int64(len(data))
		return d
	}
	inc := manifest(lib, &isolate.Isolated{})
	digest := manifest(top, &isolate.Isolated{Includes: []string{inc}, Command: []string{"./run.sh"}, RelativeCwd: "bin", ReadOnly: &readOnly})
	all := maps.Clone(lib)
	maps.Copy(all, top)
	return digest, all, blobs
}

// checkSandbox asserts the files of a fetched tree: their bytes, and their
// modes with read_only applied.
func checkSandbox(t *testing.T, dir string, files map[string]treeFile, readOnly int) {
	t.Helper()
	for p, f := range files {
		fp := filepath.Join(dir, filepath.FromSlash(p))
		got, err := os.ReadFile(fp)
		if err != nil || string(got) != f.content {
			t.Errorf("%s: %d bytes, %v; want %d", p, len(got), err, len(f.content))
			continue
		}
		fi, err := os.Stat(fp)
		if want := filePerm(f.mode, readOnly); err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, want %v", p, fi.Mode().Perm(), want)
		}
	}
}

func openTestCache(t *testing.T) *cache.Cache {
	t.Helper()
	c, err := cache.Open(t.TempDir(), cache.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c
}

func items(st Stats) int { return st.HotItems + st.ColdItems }

func TestFetchWithoutCacheIsAllCold(t *testing.T) {
	sc := castest.New(t, cas.Options{})
	digest, files, blobs := sharedTree(t, sc, 1)
	tree, st, err := FetchWith(context.Background(), sc.Client, nil, digest, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.HotItems != 0 || st.ColdItems != len(files)+2 || st.HotBytes != 0 || st.ColdBytes != tree.Bytes+blobs[digest]+manifestSize(t, sc, digest) {
		t.Fatalf("stats %+v for %d files of %d bytes", st, len(files), tree.Bytes)
	}
}

// manifestSize returns the size of the manifest included by digest.
func manifestSize(t *testing.T, sc *castest.CAS, digest string) int64 {
	t.Helper()
	rc, _, err := sc.Client.Open(context.Background(), digest)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	iso, err := isolate.ParseIsolated(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	info, err := sc.Store.Stat(context.Background(), sc.Key(t, iso.Includes[0]))
	if err != nil {
		t.Fatal(err)
	}
	return info.Size
}

// Two slots of one slave fetching the same tree at once download each
// blob once, and both get the whole tree.
func TestFetchWithCacheTwoSlotsDownloadOnce(t *testing.T) {
	sc := castest.New(t, cas.Options{})
	digest, files, blobs := sharedTree(t, sc, 1)
	c := openTestCache(t)
	sandboxes := []string{t.TempDir(), t.TempDir()}
	stats := make([]Stats, len(sandboxes))
	var wg sync.WaitGroup
	for i, dir := range sandboxes {
		wg.Go(func() {
			tree, st, err := FetchWith(context.Background(), sc.Client, c, digest, dir, Options{})
			if err != nil {
				t.Error(err)
				return
			}
			if tree.Files != len(files) || strings.Join(tree.Command, " ") != "./run.sh" || tree.ReadOnly != 1 {
				t.Errorf("tree %+v", tree)
			}
			stats[i] = st
		})
	}
	wg.Wait()
	for _, dir := range sandboxes {
		checkSandbox(t, dir, files, 1)
	}
	for d := range blobs {
		if n := sc.Gets(d); n != 1 {
			t.Errorf("blob %s: %d GETs, want 1", d, n)
		}
	}
	var cold, hot int
	var coldBytes int64
	for _, st := range stats {
		if items(st) != len(files)+2 {
			t.Errorf("stats %+v: want %d items", st, len(files)+2)
		}
		cold, hot, coldBytes = cold+st.ColdItems, hot+st.HotItems, coldBytes+st.ColdBytes
	}
	var blobBytes int64
	for _, n := range blobs {
		blobBytes += n
	}
	if cold != len(blobs) || hot != 2*(len(files)+2)-len(blobs) || coldBytes != blobBytes {
		t.Fatalf("%d cold items (%d bytes), %d hot; want %d cold (%d bytes): one per distinct blob", cold, coldBytes, hot, len(blobs), blobBytes)
	}
}

// The next task of the job downloads nothing: manifests and files are hot.
func TestFetchWithCacheSecondFetchIsHot(t *testing.T) {
	sc := castest.New(t, cas.Options{})
	digest, files, _ := sharedTree(t, sc, 1)
	c := openTestCache(t)
	first, st1, err := FetchWith(context.Background(), sc.Client, c, digest, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := sc.AllGets()
	dir := t.TempDir()
	tree, st, err := FetchWith(context.Background(), sc.Client, c, digest, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if after := sc.AllGets(); !maps.Equal(before, after) {
		t.Fatalf("the second fetch sent GETs: %v, then %v", before, after)
	}
	if st.ColdItems != 0 || st.ColdBytes != 0 || st.HotItems != len(files)+2 || st.HotBytes != st1.HotBytes+st1.ColdBytes ||
		tree.Bytes != first.Bytes {
		t.Fatalf("second fetch %+v, first %+v", st, st1)
	}
	checkSandbox(t, dir, files, 1)
}

// read_only 0 files are copies the task may write; read_only 1 and 2 files
// are hardlinks to the cache's read-only entries, when anyone may read them.
func TestFetchWithCacheLinksOnlyReadOnlyFiles(t *testing.T) {
	for _, readOnly := range []int{0, 1, 2} {
		t.Run("read_only="+string(rune('0'+readOnly)), func(t *testing.T) {
			sc := castest.New(t, cas.Options{})
			digest, files, _ := sharedTree(t, sc, readOnly)
			c := openTestCache(t)
			dir := t.TempDir()
			if readOnly == 2 {
				t.Cleanup(func() { makeWritable(dir) })
			}
			if _, _, err := FetchWith(context.Background(), sc.Client, c, digest, dir, Options{}); err != nil {
				t.Fatal(err)
			}
			checkSandbox(t, dir, files, readOnly)
			for p, f := range files {
				placed, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p)))
				if err != nil {
					t.Fatal(err)
				}
				h, err := c.Get(context.Background(), isolate.HashBytes(isolate.SHA1, []byte(f.content)), -1, filePerm(f.mode, readOnly), nil)
				if err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				entry, err := os.Stat(h.Path)
				h.Release()
				if err != nil {
					t.Fatal(err)
				}
				// A task running as another user reads a link through
				// its "other" bits: files only their owner may read
				// (0640, 0600) are copies it owns.
				perm := filePerm(f.mode, readOnly)
				want := readOnly > 0 && perm&0o004 != 0 && (perm&0o100 == 0 || perm&0o001 != 0)
				if linked := os.SameFile(placed, entry); linked != want {
					t.Errorf("%s: linked to the cache %v, want %v", p, linked, want)
				}
			}
			if readOnly == 2 {
				if fi, err := os.Stat(filepath.Join(dir, "lib")); err != nil || fi.Mode().Perm() != 0o555 {
					t.Errorf("lib: %v, %v; want 0555", fi.Mode(), err)
				}
			}
		})
	}
}

func makeWritable(dir string) {
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			os.Chmod(p, 0o755)
		}
		return nil
	})
}

// A task cannot change the cache through its files: writable ones are
// copies, read-only ones refuse writes. Tests run as root, whom modes do
// not stop, so the write is tried as the nobody user.
func TestFetchWithCacheTaskWritesCannotCorruptTheCache(t *testing.T) {
	sc := castest.New(t, cas.Options{})
	ctx := context.Background()
	c := openTestCache(t)
	content := "shared library bytes"
	d := sc.Put(t, []byte(content))
	entryBytes := func() string {
		h, err := c.Get(ctx, d, -1, 0o444, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer h.Release()
		got, _ := os.ReadFile(h.Path)
		return string(got)
	}
	for _, readOnly := range []int{0, 1} {
		iso := &isolate.Isolated{ReadOnly: &readOnly, Files: map[string]isolate.File{"lib.so": {Digest: d, Size: int64(len(content)), Mode: 0o644}}}
		top := sc.Put(t, iso.Encode())
		dir := filepath.Join(t.TempDir(), "sandbox")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, _, err := FetchWith(ctx, sc.Client, c, top, dir, Options{}); err != nil {
			t.Fatal(err)
		}
		target := filepath.Join(dir, "lib.so")
		if readOnly == 0 {
			if err := os.WriteFile(target, []byte("the task changed it"), 0o644); err != nil {
				t.Fatalf("read_only 0: %v", err)
			}
		} else {
			err := writeAsTask(t, dir, target)
			if !errors.Is(err, fs.ErrPermission) {
				t.Fatalf("read_only 1: writing the linked file: %v, want permission denied", err)
			}
		}
		if got := entryBytes(); got != content {
			t.Fatalf("read_only %d: the cache entry now holds %q", readOnly, got)
		}
	}
}

// writeAsTask appends to path as an unprivileged task would, and checks
// that the same task can write an ordinary file beside it.
func writeAsTask(t *testing.T, dir, path string) error {
	t.Helper()
	if os.Geteuid() != 0 {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
		if err == nil {
			f.Close()
		}
		return err
	}
	// Let others through the test's own folders, and no others.
	for d := dir; strings.HasPrefix(d, filepath.Clean(os.TempDir())+"/"); d = filepath.Dir(d) {
		if fi, err := os.Stat(d); err == nil && fi.Mode().Perm()&0o001 == 0 {
			if err := os.Chmod(d, fi.Mode().Perm()|0o011); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	run := func(p string) error {
		cmd := exec.Command("/bin/sh", "-c", `printf x >> "$1"`, "sh", p)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		if err != nil && strings.Contains(string(out), "Permission denied") {
			return fs.ErrPermission
		}
		if err != nil {
			return errors.New(string(out) + err.Error())
		}
		return nil
	}
	if err := run(filepath.Join(dir, "task-output.txt")); err != nil {
		t.Fatalf("the task cannot write its own file: %v", err)
	}
	return run(path)
}

// A download whose connection drops midway is downloaded again.
func TestFetchRetriesACutDownload(t *testing.T) {
	for _, withCache := range []bool{false, true} {
		name := "no cache"
		if withCache {
			name = "cache"
		}
		t.Run(name, func(t *testing.T) {
			sc := castest.New(t, cas.Options{})
			digest, files, blobs := sharedTree(t, sc, 1)
			big := isolate.HashBytes(isolate.SHA1, []byte(files["lib/libbar.so"].content))
			sc.Cut(big, 1)
			f := newFetcher(sc.Client, nil)
			if withCache {
				f.cache = openTestCache(t)
			}
			f.backoff = time.Millisecond
			dir := t.TempDir()
			if _, err := f.fetchTree(context.Background(), digest, dir); err != nil {
				t.Fatal(err)
			}
			checkSandbox(t, dir, files, 1)
			if n := sc.Gets(big); n != 2 {
				t.Fatalf("%d GETs of the cut blob, want 2", n)
			}
			// Downloaded once, though twice requested: cold once.
			want := len(files) + 2
			if withCache {
				want = len(blobs)
			}
			if st := f.stats(); st.ColdItems != want || items(st) != len(files)+2 {
				t.Fatalf("stats %+v, want %d cold items", st, want)
			}
		})
	}
}

// A blob cut every time fails the fetch after a bounded number of tries.
func TestFetchGivesUpOnABlobAlwaysCut(t *testing.T) {
	sc := castest.New(t, cas.Options{})
	digest, files, _ := sharedTree(t, sc, 1)
	big := isolate.HashBytes(isolate.SHA1, []byte(files["lib/libbar.so"].content))
	sc.Cut(big, 100)
	f := newFetcher(sc.Client, openTestCache(t))
	f.backoff = time.Millisecond
	_, err := f.fetchTree(context.Background(), digest, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "lib/libbar.so") {
		t.Fatalf("error %v, want one naming lib/libbar.so", err)
	}
	if n := sc.Gets(big); n != f.attempts {
		t.Fatalf("%d GETs of the cut blob, want %d", n, f.attempts)
	}
	if _, err := f.cache.Get(context.Background(), big, -1, 0o444, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the cut blob is cached: %v", err)
	}
}

// A corrupt blob in the CAS is refused through the cache as without it,
// and is not cached.
func TestFetchWithCacheVerifiesBlobs(t *testing.T) {
	sc := castest.New(t, cas.Options{})
	good := []byte("good bytes")
	d := sc.Put(t, good)
	if err := sc.Store.Put(context.Background(), sc.Key(t, d), strings.NewReader("evil bytes"), -1); err != nil {
		t.Fatal(err)
	}
	top := sc.Put(t, (&isolate.Isolated{Files: map[string]isolate.File{"f.txt": {Digest: d, Size: int64(len(good))}}}).Encode())
	c := openTestCache(t)
	dir := t.TempDir()
	_, _, err := FetchWith(context.Background(), sc.Client, c, top, dir, Options{})
	if !errors.Is(err, cache.ErrMismatch) || !strings.Contains(err.Error(), "hash to") || !strings.Contains(err.Error(), "f.txt") {
		t.Fatalf("error %v, want a digest mismatch naming f.txt", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "f.txt")); !os.IsNotExist(err) {
		t.Fatal("the corrupt file was placed")
	}
	if st := c.Stats(); st.Items != 1 { // the manifest only
		t.Fatalf("cache %+v, want the manifest only", st)
	}
	if n := sc.Gets(d); n != 1 {
		t.Fatalf("a mismatch was retried: %d GETs", n)
	}
}
