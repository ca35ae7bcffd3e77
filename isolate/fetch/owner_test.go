package fetch

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cache"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
)

// For a task running as another user, the tree's folders, links and
// copies are that user's, and the hardlinks stay the cache's read-only
// entries; with Copy nothing is a link. Both need root.
func TestFetchForAnotherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("giving files to another user needs root")
	}
	owner := &cache.Owner{UID: 54321, GID: 54322}
	for _, copyOnly := range []bool{false, true} {
		sc := castest.New(t, cas.Options{})
		digest, files, _ := sharedTree(t, sc, 1)
		c := openTestCache(t)
		dir := t.TempDir()
		tree, _, err := FetchWith(context.Background(), sc.Client, c, digest, dir, Options{Owner: owner, Copy: copyOnly})
		if err != nil {
			t.Fatal(err)
		}
		checkSandbox(t, dir, files, 1)
		links := 0
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == dir {
				return err
			}
			fi, _ := os.Lstat(p)
			st := fi.Sys().(*syscall.Stat_t)
			mine := int(st.Uid) == owner.UID && int(st.Gid) == owner.GID
			switch {
			case d.IsDir() && !mine:
				t.Errorf("copy %v: folder %s owned by %d:%d", copyOnly, p, st.Uid, st.Gid)
			case !d.IsDir() && st.Nlink > 1:
				links++
				if st.Uid != 0 || fi.Mode().Perm()&0o222 != 0 {
					t.Errorf("copy %v: link %s is %v of uid %d; want a read-only entry of root", copyOnly, p, fi.Mode(), st.Uid)
				}
			case !d.IsDir() && !mine:
				t.Errorf("copy %v: copy %s owned by %d:%d", copyOnly, p, st.Uid, st.Gid)
			}
			return nil
		})
		if copyOnly && links > 0 || !copyOnly && links == 0 {
			t.Errorf("copy %v: %d hardlinks", copyOnly, links)
		}
		if !copyOnly && len(tree.links) != links {
			t.Errorf("the tree holds %d links to release, the folder %d", len(tree.links), links)
		}
		tree.Release()
	}
}

// A manifest that is not a valid tree is told apart from inputs that could
// not be fetched: the first wraps ErrInvalidTree, whatever the machine.
func TestFetchInvalidTreeIsTold(t *testing.T) {
	sc := castest.New(t, cas.Options{})
	c := openTestCache(t)
	blob := sc.Put(t, []byte("x"))
	one := 1
	cases := map[string]string{
		"not JSON":       sc.Put(t, []byte("this is not a manifest")),
		"escaping path":  sc.Put(t, []byte(`{"algo":"sha-1","version":"1.4","files":{"../x":{"h":"`+blob+`","s":1}}}`)),
		"escaping link":  sc.Put(t, (&isolate.Isolated{Files: map[string]isolate.File{"l": {Link: "../../etc"}}}).Encode()),
		"cwd is a file":  sc.Put(t, (&isolate.Isolated{Command: []string{"x"}, RelativeCwd: "a/b", ReadOnly: &one, Files: map[string]isolate.File{"a": {Digest: blob, Size: 1}}}).Encode()),
		"algo of digest": sc.Put(t, []byte(`{"algo":"sha-256","version":"1.4"}`)),
	}
	for name, digest := range cases {
		_, _, err := FetchWith(context.Background(), sc.Client, c, digest, t.TempDir(), Options{})
		if !errors.Is(err, ErrInvalidTree) {
			t.Errorf("%s: %v; want ErrInvalidTree", name, err)
		}
	}
	// A blob the server lacks is not the tree's fault.
	absent := isolate.HashBytes(isolate.SHA1, []byte("never uploaded"))
	missing := sc.Put(t, (&isolate.Isolated{Files: map[string]isolate.File{"f": {Digest: absent, Size: 14}}}).Encode())
	_, _, err := FetchWith(context.Background(), sc.Client, c, missing, t.TempDir(), Options{})
	if err == nil || errors.Is(err, ErrInvalidTree) {
		t.Errorf("missing blob: %v; want an error that is not ErrInvalidTree", err)
	}
	if _, _, err := FetchWith(context.Background(), sc.Client, c, absent, t.TempDir(), Options{}); err == nil || errors.Is(err, ErrInvalidTree) || !strings.Contains(err.Error(), absent) {
		t.Errorf("missing manifest: %v; want an error that is not ErrInvalidTree", err)
	}
}
