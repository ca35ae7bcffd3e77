package artifacts

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// writeTree creates files (slash-separated name → content) under root.
func writeTree(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

type entry struct {
	content string
	mode    fs.FileMode
	method  uint16
}

// readZip reads an archive back, failing on duplicate names.
func readZip(t *testing.T, b []byte) map[string]entry {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatalf("read archive back: %v", err)
	}
	entries := map[string]entry{}
	for _, f := range zr.File {
		if _, dup := entries[f.Name]; dup {
			t.Errorf("%s archived twice", f.Name)
		}
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		content, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s back: %v", f.Name, err)
		}
		entries[f.Name] = entry{string(content), f.Mode(), f.Method}
	}
	return entries
}

func zipOf(t *testing.T, root string, globs []string, opt Options) (Summary, []byte) {
	t.Helper()
	var buf bytes.Buffer
	sum, err := Zip(t.Context(), root, globs, &buf, opt)
	if err != nil {
		t.Fatalf("Zip: %v", err)
	}
	return sum, buf.Bytes()
}

// contents keeps the names and contents of entries.
func contents(entries map[string]entry) map[string]string {
	m := map[string]string{}
	for name, e := range entries {
		m[name] = e.content
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

var tree = map[string]string{
	"a.log":         "top log\n",
	"x/b.log":       "nested log\n",
	"x/y/c.log":     "deeper log\n",
	"x/y/c.txt":     "text\n",
	"x/y/z/d.xml":   "<xml/>\n",
	"other/e.bin":   "\x00\x01\x02",
	".hidden/f.log": "hidden log\n",
}

func TestZipMatches(t *testing.T) {
	tests := []struct {
		name  string
		globs []string
		want  []string
	}{
		{"doublestar at any depth", []string{"**/*.log"}, []string{".hidden/f.log", "a.log", "x/b.log", "x/y/c.log"}},
		{"doublestar under a folder", []string{"x/**"}, []string{"x/b.log", "x/y/c.log", "x/y/c.txt", "x/y/z/d.xml"}},
		{"single star stays in its folder", []string{"x/*"}, []string{"x/b.log"}},
		{"overlapping patterns", []string{"x/**", "**/*.txt", "x/y/c.txt", "./a.log", "a.log"},
			[]string{"a.log", "x/b.log", "x/y/c.log", "x/y/c.txt", "x/y/z/d.xml"}},
		{"alternatives", []string{"{other,x/y/z}/*"}, []string{"other/e.bin", "x/y/z/d.xml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeTree(t, root, tree)
			sum, b := zipOf(t, root, tt.globs, Options{})
			want := map[string]string{}
			var size int64
			for _, name := range tt.want {
				want[name] = tree[name]
				size += int64(len(tree[name]))
			}
			entries := readZip(t, b)
			if got := contents(entries); !equalMaps(got, want) {
				t.Errorf("archive holds %v, want %v", got, want)
			}
			for name, e := range entries {
				if e.method != zip.Deflate {
					t.Errorf("%s stored with method %d, want deflate", name, e.method)
				}
			}
			if sum.Files != len(tt.want) || sum.Bytes != size || sum.TooBig || len(sum.Skipped) != 0 {
				t.Errorf("summary %+v, want %d files of %d bytes", sum, len(tt.want), size)
			}
		})
	}
}

func TestZipNoMatchWritesNothing(t *testing.T) {
	for _, globs := range [][]string{nil, {"*.missing"}, {"x"}, {"x/y"}, {"nowhere/**"}} {
		root := t.TempDir()
		writeTree(t, root, tree)
		sum, b := zipOf(t, root, globs, Options{})
		if sum.Files != 0 || len(b) != 0 {
			t.Errorf("%q: summary %+v and %d bytes written, want nothing", globs, sum, len(b))
		}
	}
}

func TestZipKeepsModes(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"run.sh": "#!/bin/sh\n", "data": "d"})
	if err := os.Chmod(filepath.Join(root, "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(root, "data"), 0o640); err != nil {
		t.Fatal(err)
	}
	_, b := zipOf(t, root, []string{"*"}, Options{})
	entries := readZip(t, b)
	if m := entries["run.sh"].mode; m != 0o755 {
		t.Errorf("run.sh has mode %v, want 0755", m)
	}
	if m := entries["data"].mode; m != 0o640 {
		t.Errorf("data has mode %v, want 0640", m)
	}
}

func TestZipSymlinks(t *testing.T) {
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret.log": "not the task's\n", "deep/er/tree.log": "not the task's either\n"})
	root := t.TempDir()
	writeTree(t, root, map[string]string{"real/data.log": "inside\n"})
	symlink(t, "real/data.log", filepath.Join(root, "in.log"))
	symlink(t, filepath.Join(outside, "secret.log"), filepath.Join(root, "out.log"))
	symlink(t, outside, filepath.Join(root, "outdir"))
	symlink(t, "real", filepath.Join(root, "indir"))
	symlink(t, "missing", filepath.Join(root, "dangling.log"))

	tests := []struct {
		name    string
		globs   []string
		want    map[string]string
		skipped []string
	}{
		{"links to files", []string{"*.log"},
			map[string]string{"in.log": "inside\n"}, []string{"dangling.log", "out.log"}},
		{"doublestar does not walk linked folders", []string{"**/*.log"},
			map[string]string{"in.log": "inside\n", "real/data.log": "inside\n"}, []string{"dangling.log", "out.log"}},
		{"a named linked folder inside", []string{"indir/*"},
			map[string]string{"indir/data.log": "inside\n"}, nil},
		{"a named linked folder outside", []string{"outdir/*"}, map[string]string{}, []string{"outdir"}},
		// The tree the link names is not walked: only the link is told.
		{"a linked folder outside, walked", []string{"outdir/**"}, map[string]string{}, []string{"outdir"}},
		{"a linked folder matched by a wildcard is not entered", []string{"*/**/*.log"}, map[string]string{"real/data.log": "inside\n"}, nil},
		{"a matched link to a folder outside", []string{"outdir"}, map[string]string{}, []string{"outdir"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, b := zipOf(t, root, tt.globs, Options{})
			if !slices.Equal(sum.Skipped, tt.skipped) {
				t.Errorf("skipped %q, want %q", sum.Skipped, tt.skipped)
			}
			if len(tt.want) == 0 {
				if sum.Files != 0 || len(b) != 0 {
					t.Errorf("summary %+v and %d bytes written, want nothing", sum, len(b))
				}
				return
			}
			if got := contents(readZip(t, b)); !equalMaps(got, tt.want) {
				t.Errorf("archive holds %v, want %v", got, tt.want)
			}
		})
	}
}

func TestZipTooBig(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, map[string]string{"a": strings.Repeat("a", 60), "b": strings.Repeat("b", 40)})

	sum, b := zipOf(t, root, []string{"*"}, Options{MaxBytes: 100})
	if sum.TooBig || sum.Files != 2 || len(readZip(t, b)) != 2 {
		t.Errorf("at the limit: summary %+v, want both files archived", sum)
	}

	writeTree(t, root, map[string]string{"c": "c"})
	sum, b = zipOf(t, root, []string{"*"}, Options{MaxBytes: 100})
	if !sum.TooBig || sum.Files != 3 || sum.Bytes != 101 {
		t.Errorf("summary %+v, want too big with 3 files of 101 bytes", sum)
	}
	got := contents(readZip(t, b))
	want := map[string]string{TooBigName: "Size of matched uncompressed test artifacts exceeded maximum size (101 bytes > 100 bytes)!"}
	if !equalMaps(got, want) {
		t.Errorf("archive holds %q, want %q", got, want)
	}
}

func TestZipStreamsLargeFiles(t *testing.T) {
	const size = 32 << 20
	root := t.TempDir()
	f, err := os.Create(filepath.Join(root, "big.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var buf bytes.Buffer // zeros deflate to about 32 KiB
	sum, err := Zip(t.Context(), root, []string{"*.bin"}, &buf, Options{})
	runtime.ReadMemStats(&after)
	if err != nil || sum.Files != 1 || sum.Bytes != size {
		t.Fatalf("got %+v, %v; want one file of %d bytes", sum, err, size)
	}
	if allocated := after.TotalAlloc - before.TotalAlloc; allocated > 8<<20 {
		t.Errorf("Zip allocated %d bytes for a %d-byte file", allocated, size)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	if got := zr.File[0].UncompressedSize64; got != size {
		t.Errorf("entry holds %d bytes, want %d", got, size)
	}
}

func TestZipSkipsUnreadableFiles(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root reads any file")
	}
	root := t.TempDir()
	writeTree(t, root, map[string]string{"ok.log": "ok\n", "locked.log": "no\n"})
	if err := os.Chmod(filepath.Join(root, "locked.log"), 0); err != nil {
		t.Fatal(err)
	}
	sum, b := zipOf(t, root, []string{"*.log"}, Options{})
	if sum.Files != 1 || !slices.Equal(sum.Skipped, []string{"locked.log"}) {
		t.Errorf("summary %+v, want 1 file and locked.log skipped", sum)
	}
	if got := contents(readZip(t, b)); !equalMaps(got, map[string]string{"ok.log": "ok\n"}) {
		t.Errorf("archive holds %v", got)
	}
}

func TestZipRefusesBadPatterns(t *testing.T) {
	root := t.TempDir()
	for _, g := range []string{"../*", "x/../../*", "/etc/*", "a/[b", "{a,b", "", "./"} {
		var buf bytes.Buffer
		if _, err := Zip(t.Context(), root, []string{g}, &buf, Options{}); err == nil || buf.Len() != 0 {
			t.Errorf("pattern %q: error %v, %d bytes written; want an error and nothing written", g, err, buf.Len())
		}
	}
	if _, err := Zip(t.Context(), filepath.Join(root, "missing"), []string{"*"}, io.Discard, Options{}); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing folder: error %v, want fs.ErrNotExist", err)
	}
}

func TestZipStopsWhenCanceled(t *testing.T) {
	root := t.TempDir()
	writeTree(t, root, tree)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := Zip(ctx, root, []string{"**"}, io.Discard, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
}
