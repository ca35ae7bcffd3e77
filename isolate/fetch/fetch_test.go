package fetch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
	"github.com/dist-test/dist_test/isolate/isolatetest"
)

func intp(n int) *int { return &n }

var writeFile = isolatetest.WriteFile

// putManifest uploads iso with the blobs of contents and returns its digest.
func putManifest(t *testing.T, tc *castest.CAS, iso *isolate.Isolated, contents map[string]string) string {
	t.Helper()
	if iso.Files == nil {
		iso.Files = map[string]isolate.File{}
	}
	for p, c := range contents {
		iso.Files[p] = isolate.File{Digest: tc.Put(t, []byte(c)), Size: int64(len(c)), Mode: 0o644}
	}
	return tc.Put(t, iso.Encode())
}

func assertEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("%s holds %d entries, want none", dir, len(entries))
	}
}

func TestFetchRefusesEscapingManifests(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	file := `{"h":"` + tc.Put(t, []byte("pwned")) + `","s":5}`
	safe := `"ok/first.txt":` + file + `,`
	tests := []struct {
		name, files, want string
	}{
		{"absolute path", safe + `"/tmp/pwned":` + file, "/tmp/pwned"},
		{"dot-dot path", safe + `"ok/../../pwned":` + file, "ok/../../pwned"},
		{"absolute link", safe + `"ok/l":{"l":"/etc"}`, "ok/l -> /etc"},
		{"link up", safe + `"ok/l":{"l":"../.."}`, "ok/l -> ../.."},
		{"write through a link", safe + `"ok/l":{"l":"."},"ok/l/x":` + file, "ok/l/x is inside ok/l"},
	}
	for _, tt := range tests {
		for _, via := range fetchVariants(t) {
			t.Run(tt.name+" "+via.name, func(t *testing.T) {
				digest := tc.Put(t, []byte(`{"algo":"sha-1","version":"1.4","files":{`+tt.files+`}}`))
				dir := t.TempDir()
				err := via.fetch(tc.Client, digest, dir)
				if !errors.Is(err, model.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("error %v, want model.ErrInvalid naming %q", err, tt.want)
				}
				assertEmpty(t, dir)
			})
		}
	}
}

// fetchVariants are the ways to fetch a tree, which must refuse the same
// trees: without a cache, and through one.
func fetchVariants(t *testing.T) []struct {
	name  string
	fetch func(c CAS, digest, dir string) error
} {
	c := openTestCache(t)
	return []struct {
		name  string
		fetch func(c CAS, digest, dir string) error
	}{
		{"without cache", func(cc CAS, digest, dir string) error {
			_, err := Fetch(context.Background(), cc, digest, dir)
			return err
		}},
		{"with cache", func(cc CAS, digest, dir string) error {
			_, _, err := FetchWith(context.Background(), cc, c, digest, dir, Options{})
			return err
		}},
	}
}

// Each manifest alone is safe; merged through includes a link escapes.
func TestFetchRefusesEscapeAcrossIncludes(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	inc := putManifest(t, tc, &isolate.Isolated{Files: map[string]isolate.File{"d/up": {Link: ".."}}}, nil)
	top := putManifest(t, tc, &isolate.Isolated{Includes: []string{inc}, Files: map[string]isolate.File{"d/esc": {Link: "up/.."}}},
		map[string]string{"a.txt": "a"})
	for _, via := range fetchVariants(t) {
		dir := t.TempDir()
		err := via.fetch(tc.Client, top, dir)
		if !errors.Is(err, model.ErrInvalid) || !strings.Contains(err.Error(), "d/esc") {
			t.Fatalf("%s: error %v", via.name, err)
		}
		assertEmpty(t, dir)
	}
}

func TestFetchNestedIncludes(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	leaf := putManifest(t, tc, &isolate.Isolated{ReadOnly: intp(0)},
		map[string]string{"shared.txt": "from leaf", "lib/libx.so": "lib"})
	mid := putManifest(t, tc, &isolate.Isolated{Includes: []string{leaf}, Command: []string{"./run.sh"}, RelativeCwd: "bin"},
		map[string]string{"bin/run.sh": "#!/bin/sh\n", "shared.txt": "from mid"})
	other := putManifest(t, tc, &isolate.Isolated{Command: []string{"ignored"}},
		map[string]string{"other.txt": "other", "shared.txt": "from other"})
	// Including leaf twice (directly and through mid) is fine.
	top := putManifest(t, tc, &isolate.Isolated{Includes: []string{mid, other, leaf}},
		map[string]string{"top.txt": "top"})

	dir := t.TempDir()
	tree, err := Fetch(context.Background(), tc.Client, top, dir)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tree.Command, " ") != "./run.sh" || tree.RelativeCwd != "bin" || tree.ReadOnly != 0 || tree.Files != 5 {
		t.Fatalf("tree %+v", tree)
	}
	for rel, want := range map[string]string{
		"top.txt": "top", "bin/run.sh": "#!/bin/sh\n", "shared.txt": "from mid", "lib/libx.so": "lib", "other.txt": "other",
	} {
		got, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil || string(got) != want {
			t.Errorf("%s: %q, %v; want %q", rel, got, err, want)
		}
	}
	// read_only 0: files writable by their owner.
	fi, err := os.Stat(filepath.Join(dir, "top.txt"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("top.txt mode %v, %v", fi.Mode(), err)
	}
}

func TestFetchReadOnlyFolders(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	top := putManifest(t, tc, &isolate.Isolated{ReadOnly: intp(2)}, map[string]string{"a/b/c.txt": "c"})
	dir := t.TempDir()
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
	if _, err := Fetch(context.Background(), tc.Client, top, dir); err != nil {
		t.Fatal(err)
	}
	for rel, want := range map[string]os.FileMode{"a": 0o555, "a/b": 0o555, "a/b/c.txt": 0o444} {
		fi, err := os.Stat(filepath.Join(dir, rel))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v, %v; want %v", rel, fi.Mode().Perm(), err, want)
		}
	}
}

func TestFetchVerifiesBlobs(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	good := []byte("good bytes")
	d := tc.Put(t, good)
	// Corrupt the store behind the server's back.
	if err := tc.Store.Put(context.Background(), tc.Key(t, d), strings.NewReader("evil bytes"), -1); err != nil {
		t.Fatal(err)
	}
	top := tc.Put(t, (&isolate.Isolated{Files: map[string]isolate.File{"f.txt": {Digest: d, Size: int64(len(good))}}}).Encode())
	dir := t.TempDir()
	_, err := Fetch(context.Background(), tc.Client, top, dir)
	if err == nil || !strings.Contains(err.Error(), "hash to") || !strings.Contains(err.Error(), "f.txt") {
		t.Fatalf("error %v, want a digest mismatch naming f.txt", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "f.txt")); !os.IsNotExist(err) {
		t.Fatal("the corrupt file was left in place")
	}
}

func TestFetchErrors(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	ctx := context.Background()
	top := putManifest(t, tc, &isolate.Isolated{}, map[string]string{"a": "a"})

	dir := t.TempDir()
	writeFile(t, dir, "already-here", "x", 0o644)
	if _, err := Fetch(ctx, tc.Client, top, dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("non-empty folder: %v", err)
	}
	if _, err := Fetch(ctx, tc.Client, top, filepath.Join(dir, "absent")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("absent folder: %v", err)
	}
	absent := isolate.HashBytes(isolate.SHA1, []byte("never uploaded"))
	if _, err := Fetch(ctx, tc.Client, absent, t.TempDir()); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("absent manifest: %v", err)
	}
	missingInclude := putManifest(t, tc, &isolate.Isolated{Includes: []string{absent}}, nil)
	empty := t.TempDir()
	if _, err := Fetch(ctx, tc.Client, missingInclude, empty); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("absent include: %v", err)
	}
	assertEmpty(t, empty)
	notManifest := tc.Put(t, []byte("just some file"))
	if _, err := Fetch(ctx, tc.Client, notManifest, t.TempDir()); !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("not a manifest: %v", err)
	}
}

// The task's working folder exists even when no input lies in it, as
// luci's run_isolated made it: Kudu's .isolate files sit in build/isolate/
// and list nothing there. A relative_cwd that is a file, or passes through
// one, is refused before anything is written.
func TestFetchMakesRelativeCwd(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	for _, ro := range []int{0, 1, 2} {
		digest := putManifest(t, tc, &isolate.Isolated{Command: []string{"../../tools/run.sh"}, RelativeCwd: "build/isolate", ReadOnly: &ro},
			map[string]string{"tools/run.sh": "#!/bin/sh\n"})
		for _, via := range fetchVariants(t) {
			dir := t.TempDir()
			if err := via.fetch(tc.Client, digest, dir); err != nil {
				t.Fatalf("read_only %d %s: %v", ro, via.name, err)
			}
			fi, err := os.Stat(filepath.Join(dir, "build", "isolate"))
			if err != nil || !fi.IsDir() {
				t.Fatalf("read_only %d %s: build/isolate: %v", ro, via.name, err)
			}
			entries, _ := os.ReadDir(filepath.Join(dir, "build", "isolate"))
			if len(entries) != 0 {
				t.Errorf("read_only %d %s: build/isolate holds %d entries, want none", ro, via.name, len(entries))
			}
			os.Chmod(filepath.Join(dir, "build", "isolate"), 0o755) // so that the test can clean up
			os.Chmod(filepath.Join(dir, "build"), 0o755)
			os.Chmod(filepath.Join(dir, "tools"), 0o755)
		}
	}

	for _, tt := range []struct{ cwd, want string }{
		{"tools/run.sh", "tools/run.sh is a file or link"},
		{"tools/run.sh/deeper", "tools/run.sh is a file or link"},
		{"l/x", "l is a file or link"},
	} {
		digest := putManifest(t, tc, &isolate.Isolated{Command: []string{"x"}, RelativeCwd: tt.cwd,
			Files: map[string]isolate.File{"l": {Link: "tools"}}}, map[string]string{"tools/run.sh": "#!/bin/sh\n"})
		for _, via := range fetchVariants(t) {
			dir := t.TempDir()
			err := via.fetch(tc.Client, digest, dir)
			if !errors.Is(err, model.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("relative_cwd %s %s: error %v, want model.ErrInvalid saying %q", tt.cwd, via.name, err, tt.want)
			}
			assertEmpty(t, dir)
		}
	}
}
