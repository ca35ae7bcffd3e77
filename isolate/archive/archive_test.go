package archive

import (
	"bytes"
	"context"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
	"github.com/dist-test/dist_test/isolate/fetch"
	"github.com/dist-test/dist_test/isolate/isolatefile"
	"github.com/dist-test/dist_test/isolate/isolatetest"
)

var writeFile = isolatetest.WriteFile

// kuduTree lays out a Kudu-like source tree under dir and returns its
// .isolate file: a test binary reached through the build/latest link, a
// library with a versioned link, scripts, nested test data, and files with
// identical content.
func kuduTree(t *testing.T, dir string) string {
	t.Helper()
	writeFile(t, dir, "build/debug/bin/foo-test", "\x7fELF test binary", 0o755)
	writeFile(t, dir, "build/debug/lib/libfoo.so.1", "shared object", 0o644)
	writeFile(t, dir, "build/debug/lib/libdup.so", "same bytes\n", 0o644)
	writeFile(t, dir, "build-support/run_dist_test.py", "#!/usr/bin/env python\n", 0o755)
	writeFile(t, dir, "build-support/common/shared.txt", "same bytes\n", 0o640)
	writeFile(t, dir, "build-support/.git/HEAD", "ref: refs/heads/main\n", 0o644)
	writeFile(t, dir, "build-support/helper.pyc", "compiled", 0o644)
	writeFile(t, dir, "src/kudu/tserver/testdata/nested/deep/data.bin", "\x00\x01\x02", 0o600)
	writeFile(t, dir, "src/kudu/tserver/testdata/copy.txt", "same bytes\n", 0o644)
	writeFile(t, dir, "src/kudu/tserver/testdata/empty", "", 0o644)
	for link, target := range map[string]string{
		"build/latest":                "debug",
		"build/debug/lib/libfoo.so":   "libfoo.so.1",
		"src/kudu/tserver/testdata/d": "nested/deep",
	} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	return writeFile(t, dir, "src/kudu/tserver/foo-test.isolate", `{'variables': {'command': ['../../../build-support/run_dist_test.py',
                           '--',
                           '../../../build/latest/bin/foo-test'],
               'files': ['../../../build/latest/bin/foo-test',
                         '../../../build-support/',
                         '../../../build/latest/lib/',
                         'testdata/']}}
`, 0o644)
}

func TestArchiveFetchRoundTrip(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	ctx := context.Background()
	src := t.TempDir()
	isoPath := kuduTree(t, src)
	out := filepath.Join(t.TempDir(), "foo-test.isolated")

	digest, st, err := Archive(ctx, tc.Client, Options{IsolatePath: isoPath, IsolatedOut: out, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	// 8 files, 3 of them with the same bytes: 6 distinct blobs + the manifest.
	if st.Files != 8 || st.Bytes != 16+13+11+22+11+3+11+0 || st.Uploaded != 7 {
		t.Fatalf("first archive: %+v", st)
	}
	if n := tc.Count(http.MethodPut); n != st.Uploaded {
		t.Fatalf("%d PUTs, stats say %d", n, st.Uploaded)
	}
	written, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if isolate.HashBytes(isolate.SHA1, written) != digest {
		t.Fatal("IsolatedOut does not hold the manifest of the returned digest")
	}
	iso, err := isolate.ParseIsolated(written)
	if err != nil {
		t.Fatal(err)
	}
	wantKeys := "build-support/common/shared.txt build-support/run_dist_test.py build/debug/bin/foo-test " +
		"build/debug/lib/libdup.so build/debug/lib/libfoo.so build/debug/lib/libfoo.so.1 build/latest " +
		"src/kudu/tserver/testdata/copy.txt src/kudu/tserver/testdata/d src/kudu/tserver/testdata/empty " +
		"src/kudu/tserver/testdata/nested/deep/data.bin"
	if got := strings.Join(slices.Sorted(maps.Keys(iso.Files)), " "); got != wantKeys {
		t.Fatalf("manifest files:\n got %s\nwant %s", got, wantKeys)
	}
	if iso.RelativeCwd != "src/kudu/tserver" || *iso.ReadOnly != 1 || iso.Command[2] != "../../../build/latest/bin/foo-test" {
		t.Fatalf("manifest header: %+v", iso)
	}
	if f := iso.Files["build/debug/bin/foo-test"]; f.Mode != 0o755 {
		t.Fatalf("executable recorded with mode %#o", f.Mode)
	}
	if f := iso.Files["build-support/common/shared.txt"]; f.Mode != 0o640 {
		t.Fatalf("shared.txt recorded with mode %#o", f.Mode)
	}
	if l := iso.Files["build/latest"].Link; l != "debug" {
		t.Fatalf("build/latest recorded as %+v", iso.Files["build/latest"])
	}

	// Archiving the same tree again sends nothing.
	again, st2, err := Archive(ctx, tc.Client, Options{IsolatePath: isoPath})
	if err != nil {
		t.Fatal(err)
	}
	if again != digest || st2.Uploaded != 0 || st2.UploadedBytes != 0 || st2.Files != 8 {
		t.Fatalf("second archive: %s %+v", again, st2)
	}
	// One changed file: that blob and a new manifest.
	writeFile(t, src, "src/kudu/tserver/testdata/empty", "not empty now", 0o644)
	third, st3, err := Archive(ctx, tc.Client, Options{IsolatePath: isoPath})
	if err != nil {
		t.Fatal(err)
	}
	if third == digest || st3.Uploaded != 2 {
		t.Fatalf("third archive: %s %+v", third, st3)
	}

	// Fetch the first tree and compare.
	dst := t.TempDir()
	tree, err := fetch.Fetch(ctx, tc.Client, digest, dst)
	if err != nil {
		t.Fatal(err)
	}
	if tree.RelativeCwd != "src/kudu/tserver" || tree.ReadOnly != 1 || tree.Files != 8 || tree.Bytes != st.Bytes ||
		strings.Join(tree.Command, " ") != "../../../build-support/run_dist_test.py -- ../../../build/latest/bin/foo-test" {
		t.Fatalf("tree %+v", tree)
	}
	for rel, content := range map[string]string{
		"build/latest/bin/foo-test":                      "\x7fELF test binary",
		"build/debug/lib/libfoo.so":                      "shared object",
		"build-support/common/shared.txt":                "same bytes\n",
		"src/kudu/tserver/testdata/d/data.bin":           "\x00\x01\x02",
		"src/kudu/tserver/testdata/empty":                "",
		"src/kudu/tserver/testdata/nested/deep/data.bin": "\x00\x01\x02",
	} {
		got, err := os.ReadFile(filepath.Join(dst, rel))
		if err != nil || string(got) != content {
			t.Errorf("%s: %q, %v; want %q", rel, got, err, content)
		}
	}
	// read_only 1: recorded modes without their write bits.
	for rel, mode := range map[string]os.FileMode{
		"build/debug/bin/foo-test":                       0o555,
		"build-support/common/shared.txt":                0o440,
		"src/kudu/tserver/testdata/nested/deep/data.bin": 0o400,
	} {
		fi, err := os.Stat(filepath.Join(dst, rel))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v, %v; want %v", rel, fi.Mode(), err, mode)
		}
	}
	if target, err := os.Readlink(filepath.Join(dst, "build/latest")); err != nil || target != "debug" {
		t.Errorf("build/latest -> %q, %v", target, err)
	}
	for _, skipped := range []string{"build-support/.git", "build-support/helper.pyc"} {
		if _, err := os.Lstat(filepath.Join(dst, skipped)); !os.IsNotExist(err) {
			t.Errorf("%s was archived", skipped)
		}
	}
}

func TestArchiveSHA256(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	dir := t.TempDir()
	writeFile(t, dir, "data.txt", "x", 0o644)
	iso := writeFile(t, dir, "t.isolate", `{"variables": {"files": ["data.txt"]}}`, 0o644)
	digest, _, err := Archive(context.Background(), tc.Client, Options{IsolatePath: iso, Algo: isolate.SHA256})
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := isolate.AlgoOf(digest); a != isolate.SHA256 {
		t.Fatalf("digest %s", digest)
	}
	dst := t.TempDir()
	tree, err := fetch.Fetch(context.Background(), tc.Client, digest, dst)
	if err != nil || tree.Files != 1 || tree.Command != nil {
		t.Fatalf("fetch: %+v, %v", tree, err)
	}
}

func TestArchiveErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		files string
		want  string
	}{
		{"missing file", nil, `'nope.txt'`, "nope.txt: no such file"},
		{"folder without slash", func(t *testing.T, dir string) { writeFile(t, dir, "d/x", "x", 0o644) },
			`'d'`, "d is a folder: write it with a trailing slash"},
		{"file with slash", func(t *testing.T, dir string) { writeFile(t, dir, "f", "x", 0o644) },
			`'f/'`, "f/ is a file"},
		{"link out of the tree", func(t *testing.T, dir string) {
			writeFile(t, dir, "d/x", "x", 0o644)
			if err := os.Symlink("/etc/passwd", filepath.Join(dir, "d/evil")); err != nil {
				t.Fatal(err)
			}
		}, `'d/'`, "link d/evil -> /etc/passwd leads out of the tree"},
		{"relative link out of the tree", func(t *testing.T, dir string) {
			writeFile(t, dir, "d/x", "x", 0o644)
			if err := os.Symlink("../../outside", filepath.Join(dir, "d/up")); err != nil {
				t.Fatal(err)
			}
		}, `'d/'`, "link d/up -> ../../outside leads out of the tree"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tc := castest.New(t, cas.Options{})
			dir := t.TempDir()
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			iso := writeFile(t, dir, "t.isolate", "{'variables': {'files': ["+tt.files+"]}}", 0o644)
			_, _, err := Archive(context.Background(), tc.Client, Options{IsolatePath: iso})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if n := tc.Count(http.MethodPut); n != 0 {
				t.Fatalf("%d blobs uploaded by a failed archive", n)
			}
		})
	}
}

// A listed path through a link that leaves the tree stands for what it
// names, as with luci: build folders are often such links.
func TestArchiveFollowsListedLinkOutOfTree(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	outside := t.TempDir()
	writeFile(t, outside, "bin/tool", "tool", 0o755)
	dir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "out")); err != nil {
		t.Fatal(err)
	}
	iso := writeFile(t, dir, "t.isolate", "{'variables': {'files': ['out/bin/tool', 'out/']}}", 0o644)
	digest, st, err := Archive(context.Background(), tc.Client, Options{IsolatePath: iso})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 1 {
		t.Fatalf("stats %+v", st)
	}
	dst := t.TempDir()
	if _, err := fetch.Fetch(context.Background(), tc.Client, digest, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(dst, "out/bin/tool"))
	if err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("out/bin/tool: %v, %v", fi, err)
	}
}

// read_only, conditions and path variables reach the manifest, and a tree
// whose blobs travel compressed both ways comes back byte for byte.
func TestArchiveReadOnlyAndVariables(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	ctx := context.Background()
	dir := t.TempDir()
	big := isolatetest.TextBlob(3 << 20)
	writeFile(t, dir, "out/Release/big-test", string(big), 0o755)
	writeFile(t, dir, "out/Release/random.bin", string(isolatetest.RandomBlob(3, 500<<10)), 0o644)
	writeFile(t, dir, "src/data.txt", "data", 0o600)
	iso := writeFile(t, dir, "src/t.isolate", `{'conditions': [['OS=="linux" and not asan==1',
                 {'variables': {'command': ['<(PRODUCT_DIR)/big-test'],
                                'files': ['<(PRODUCT_DIR)/']}}],
                ['asan==1', {'variables': {'read_only': 0}}],
                ['asan==0', {'variables': {'read_only': 2}}]],
 'variables': {'files': ['data.txt']}}`, 0o644)
	for _, tt := range []struct {
		asan     string
		readOnly int
		files    int
	}{{"0", 2, 3}, {"1", 0, 1}} {
		digest, st, err := Archive(ctx, tc.Client, Options{IsolatePath: iso, Vars: isolatefile.Variables{
			Path: map[string]string{"PRODUCT_DIR": "out/Release"}, Config: map[string]string{"asan": tt.asan}, Cwd: dir}})
		if err != nil {
			t.Fatal(err)
		}
		if st.Files != tt.files || st.Tests != 1 {
			t.Fatalf("asan=%s: stats %+v", tt.asan, st)
		}
		rc, _, err := tc.Client.Open(ctx, digest)
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(rc)
		rc.Close()
		m, err := isolate.ParseIsolated(data)
		if err != nil {
			t.Fatal(err)
		}
		if *m.ReadOnly != tt.readOnly {
			t.Fatalf("asan=%s: read_only %d, want %d", tt.asan, *m.ReadOnly, tt.readOnly)
		}
		if tt.asan == "0" {
			if strings.Join(m.Command, " ") != "../out/Release/big-test" || m.RelativeCwd != "src" {
				t.Fatalf("manifest %+v", m)
			}
			dst := t.TempDir()
			// read_only 2 leaves folders without write permission, which
			// only root could empty: give it back before the removal.
			t.Cleanup(func() {
				_ = filepath.WalkDir(dst, func(p string, d fs.DirEntry, err error) error {
					if err == nil && d.IsDir() {
						_ = os.Chmod(p, 0o755)
					}
					return nil
				})
			})
			if _, err := fetch.Fetch(ctx, tc.Client, digest, dst); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(filepath.Join(dst, "out/Release/big-test"))
			if err != nil || !bytes.Equal(got, big) {
				t.Fatalf("fetched big-test: %d bytes, %v", len(got), err)
			}
		}
	}
}
