package isolate

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/model"
)

// Tree is what Fetch laid out: how to run the task and how much it wrote.
type Tree struct {
	Command     []string
	RelativeCwd string
	ReadOnly    int
	Files       int   // regular files written
	Bytes       int64 // their total size
}

const (
	maxManifestSize = 64 << 20 // bytes of one .isolated
	maxManifests    = 1000     // manifests in one include graph
	fetchParallel   = 8        // blobs downloaded at once
)

// Fetch lays out the tree of the manifest digest in dir, which must exist
// and be empty. It loads the manifest and everything it includes, and checks
// the whole tree before writing anything: a tree with a path or a link that
// would land outside dir is refused. Every blob is verified against its
// digest as it is written. On a failure after writing started, dir may hold
// part of the tree, but nothing outside dir is touched.
func Fetch(ctx context.Context, c *CASClient, digest, dir string) (Tree, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Tree{}, fmt.Errorf("fetch %s: %w", digest, err)
	}
	if len(entries) > 0 {
		return Tree{}, fmt.Errorf("fetch %s: folder %s is not empty", digest, dir)
	}
	f := fetcher{c: c}
	l := &treeLoader{f: f, onPath: map[string]bool{}, done: map[string]bool{}, files: map[string]File{}}
	if err := l.load(ctx, digest); err != nil {
		return Tree{}, fmt.Errorf("fetch %s: %w", digest, err)
	}
	if err := checkTree(l.files); err != nil {
		return Tree{}, fmt.Errorf("fetch %s: %w", digest, err)
	}
	tree := l.tree()
	algo, _ := AlgoOf(digest) // load checked it
	if err := writeTree(ctx, f, algo, dir, l.files, &tree); err != nil {
		return Tree{}, fmt.Errorf("fetch %s: %w", digest, err)
	}
	return tree, nil
}

// treeLoader gathers the files of a manifest and of its includes, depth
// first: a path keeps the first entry met, so a manifest's own files win
// over its includes', and earlier includes over later ones.
type treeLoader struct {
	f         fetcher
	onPath    map[string]bool // manifests being loaded, to detect cycles
	done      map[string]bool
	files     map[string]File
	manifests []*Isolated // in load order
}

func (l *treeLoader) load(ctx context.Context, digest string) error {
	if l.onPath[digest] {
		return fmt.Errorf("manifest %s includes itself: %w", digest, model.ErrInvalid)
	}
	if l.done[digest] {
		return nil
	}
	if len(l.manifests) >= maxManifests {
		return fmt.Errorf("more than %d manifests included: %w", maxManifests, model.ErrTooLarge)
	}
	iso, err := l.f.manifest(ctx, digest)
	if err != nil {
		return err
	}
	l.manifests = append(l.manifests, iso)
	for p, f := range iso.Files {
		if _, ok := l.files[p]; !ok {
			l.files[p] = f
		}
	}
	l.onPath[digest] = true
	for _, inc := range iso.Includes {
		if err := l.load(ctx, inc); err != nil {
			return fmt.Errorf("included by %s: %w", digest, err)
		}
	}
	delete(l.onPath, digest)
	l.done[digest] = true
	return nil
}

// tree takes the command and its folder from the first manifest that has a
// command, and read_only from the first that says.
func (l *treeLoader) tree() Tree {
	t := Tree{RelativeCwd: l.manifests[0].RelativeCwd}
	for _, m := range l.manifests {
		if len(m.Command) > 0 {
			t.Command, t.RelativeCwd = m.Command, m.RelativeCwd
			break
		}
	}
	for _, m := range l.manifests {
		if m.ReadOnly != nil {
			t.ReadOnly = *m.ReadOnly
			break
		}
	}
	return t
}

// writeTree writes files and links under dir; the tree has been checked.
func writeTree(ctx context.Context, f fetcher, algo Algo, dir string, files map[string]File, tree *Tree) error {
	paths := sortedKeys(files)
	dirs := map[string]bool{}
	for _, p := range paths {
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	folders := sortedKeys(dirs)
	for _, d := range folders {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
	}
	var written atomic.Int64
	readOnly := tree.ReadOnly
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	for _, p := range paths {
		e := files[p]
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if e.IsLink() {
			if err := os.Symlink(e.Link, dst); err != nil {
				return err
			}
			continue
		}
		tree.Files++
		g.Go(func() error {
			n, err := f.fetch(gctx, algo, e.Digest, e.Size, dst, filePerm(e.Mode, readOnly))
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			written.Add(n)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	tree.Bytes = written.Load()
	if tree.ReadOnly >= 2 {
		// Deepest first, so that each folder is still writable while its
		// subfolders change. dir itself stays the caller's.
		slices.Reverse(folders)
		for _, d := range folders {
			if err := os.Chmod(filepath.Join(dir, filepath.FromSlash(d)), 0o555); err != nil {
				return err
			}
		}
	}
	return nil
}

// filePerm applies read_only to a recorded mode as luci's run_isolated does.
func filePerm(mode, readOnly int) os.FileMode {
	perm := os.FileMode(mode)
	if perm == 0 {
		perm = 0o644 // not recorded
	}
	if readOnly >= 1 {
		return perm &^ 0o222
	}
	return perm | 0o200
}

// fetcher gets blobs from the CAS. It is the one way bytes reach a task's
// folder, so that a local cache can take its place.
type fetcher struct {
	c *CASClient
}

// manifest downloads, verifies and parses one .isolated.
func (f fetcher) manifest(ctx context.Context, digest string) (*Isolated, error) {
	algo, err := AlgoOf(digest)
	if err != nil {
		return nil, err
	}
	rc, _, err := f.c.Open(ctx, digest)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, maxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", digest, err)
	}
	if len(data) > maxManifestSize {
		return nil, fmt.Errorf("manifest %s over %d bytes: %w", digest, maxManifestSize, model.ErrTooLarge)
	}
	if got := HashBytes(algo, data); got != digest {
		return nil, fmt.Errorf("manifest %s: downloaded bytes hash to %s", digest, got)
	}
	iso, err := ParseIsolated(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", digest, err)
	}
	if iso.Algo != algo {
		return nil, fmt.Errorf("manifest %s says its algo is %s: %w", digest, iso.Algo, model.ErrInvalid)
	}
	return iso, nil
}

// fetch writes blob digest to the new file dst with perm, verifying its
// size (when known, -1 otherwise) and digest; it returns the bytes written.
// A file that fails verification is removed.
func (f fetcher) fetch(ctx context.Context, algo Algo, digest string, size int64, dst string, perm os.FileMode) (n int64, err error) {
	rc, _, err := f.c.Open(ctx, digest)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := out.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	h := algo.New()
	src := io.Reader(rc)
	if size >= 0 {
		src = io.LimitReader(rc, size+1)
	}
	n, err = io.Copy(io.MultiWriter(out, h), src)
	if err != nil {
		return 0, fmt.Errorf("download %s: %w", digest, err)
	}
	if size >= 0 && n != size {
		return 0, fmt.Errorf("blob %s: got %d bytes, the manifest says %d", digest, n, size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return 0, fmt.Errorf("blob %s: downloaded bytes hash to %s", digest, got)
	}
	if err := out.Chmod(perm); err != nil {
		return 0, err
	}
	return n, nil
}
