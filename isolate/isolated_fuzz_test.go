package isolate

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
)

// FuzzParseIsolated feeds manifests to ParseIsolated, as a slave reads them
// from the isolate server. An accepted manifest must be one a fetch can lay
// out inside its folder, which the kernel itself confirms on a written copy
// of the tree, and must survive Encode and ParseIsolated unchanged, encoding
// to the same bytes again (its digest is what names it). A refused one must
// say why with model.ErrInvalid.
func FuzzParseIsolated(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		iso, err := ParseIsolated(data)
		if err != nil {
			if !errors.Is(err, model.ErrInvalid) {
				t.Fatalf("error %v does not wrap model.ErrInvalid", err)
			}
			return
		}
		checkManifestPaths(t, iso)

		enc := iso.Encode()
		if !json.Valid(enc) {
			t.Fatalf("Encode wrote invalid JSON: %s", enc)
		}
		for _, c := range enc {
			if c < ' ' || c > '~' {
				t.Fatalf("Encode wrote the byte %#x; luci's form is printable ASCII: %s", c, enc)
			}
		}
		again, err := ParseIsolated(enc)
		if err != nil {
			t.Fatalf("the encoded manifest is refused: %v\n%s", err, enc)
		}
		if !reflect.DeepEqual(iso, again) {
			t.Fatalf("the manifest changed through Encode and ParseIsolated:\n was %+v\n now %+v", iso, again)
		}
		if enc2 := again.Encode(); !bytes.Equal(enc, enc2) {
			t.Fatalf("encoded differently the second time:\n%s\n%s", enc, enc2)
		}
		if runtime.GOOS == "linux" {
			checkTreeOnDisk(t, iso)
		}
	})
}

// checkManifestPaths asserts, without ParseIsolated's own helpers, that
// every path of an accepted manifest is relative, clean and inside the tree.
func checkManifestPaths(t *testing.T, iso *Isolated) {
	t.Helper()
	inside := func(what, p string) {
		t.Helper()
		if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == "." || p == ".." || strings.HasPrefix(p, "../") ||
			strings.ContainsAny(p, "\\\x00") {
			t.Fatalf("accepted %s %q", what, p)
		}
	}
	if rc := iso.RelativeCwd; rc != "" && rc != "." {
		inside("relative_cwd", rc)
	}
	for p, f := range iso.Files {
		inside("path", p)
		if f.IsLink() {
			if path.IsAbs(f.Link) || strings.ContainsAny(f.Link, "\\\x00") {
				t.Fatalf("accepted link %s -> %q", p, f.Link)
			}
			continue
		}
		if a, err := AlgoOf(f.Digest); err != nil || a != iso.Algo {
			t.Fatalf("accepted %s with digest %q in a %s manifest", p, f.Digest, iso.Algo)
		}
		if f.Mode&^0o777 != 0 || f.Size < -1 {
			t.Fatalf("accepted %s with mode %#o, size %d", p, f.Mode, f.Size)
		}
	}
}

// checkTreeOnDisk writes the tree as a fetch would (folders, then links,
// then empty files) and asks the kernel, through os.Root, whether any link
// or the working folder leads out of it. Trees a file system cannot hold
// (over-long names) are left to checkManifestPaths.
func checkTreeOnDisk(t *testing.T, iso *Isolated) {
	if len(iso.Files) > 64 {
		return
	}
	for p := range iso.Files {
		if len(p) > 512 {
			return
		}
		for seg := range strings.SplitSeq(p, "/") {
			if len(seg) > 255 {
				return
			}
		}
	}
	dir := t.TempDir()
	for _, p := range sortedKeys(iso.Files) {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatalf("folder of %s: %v", p, err)
		}
	}
	for _, p := range sortedKeys(iso.Files) {
		f := iso.Files[p]
		var err error
		if f.IsLink() {
			err = os.Symlink(f.Link, filepath.Join(dir, p))
		} else {
			err = os.WriteFile(filepath.Join(dir, p), nil, 0o644)
		}
		if err != nil {
			t.Fatalf("writing %s: %v", p, err)
		}
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	escapes := func(p string) bool {
		_, err := root.Stat(p)
		return err != nil && strings.Contains(err.Error(), "path escapes from parent")
	}
	for p, f := range iso.Files {
		if f.IsLink() && escapes(p) {
			t.Fatalf("accepted link %s -> %s leads out of the tree", p, f.Link)
		}
	}
	if rc := iso.RelativeCwd; rc != "" && escapes(rc) {
		t.Fatalf("accepted relative_cwd %s leads out of the tree", rc)
	}
}
