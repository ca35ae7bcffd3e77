package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cache"
)

// Tree is what Fetch laid out: how to run the task and how much it wrote.
type Tree struct {
	Command     []string
	RelativeCwd string
	ReadOnly    int
	Files       int   // regular files written
	Bytes       int64 // their total size

	links []*cache.Handle // the cache entries linked into the tree
}

// Release tells the cache that the tree's links to it are gone: call it
// once the tree's folder has been removed (see cache.Handle.Release). It
// may be called more than once.
func (t Tree) Release() {
	for _, h := range t.links {
		h.Release()
	}
}

// ErrInvalidTree is wrapped by the errors of a fetch that the manifests
// themselves cause: malformed, including themselves, too large, or laying
// out paths or links that lead out of the folder. Fetching again, on any
// machine, gives the same error.
var ErrInvalidTree = errors.New("invalid inputs")

func invalidTree(err error) error { return fmt.Errorf("%w: %w", ErrInvalidTree, err) }

// CAS is what a fetch needs of the content-addressed store: the bytes of
// a blob. *cas.Client is the real one.
type CAS interface {
	// Open starts reading blob digest; the size is the blob's, or -1 when
	// unknown. A blob the store lacks gives an error wrapping
	// model.ErrNotFound. A read that fails midway may succeed if tried
	// again.
	Open(ctx context.Context, digest string) (io.ReadCloser, int64, error)
}

// Options say whom FetchWith lays a tree out for.
type Options struct {
	// Owner, when set, owns the tree's folders, links and copies (the
	// caller must be root): the user the task runs as. Hardlinks to the
	// cache stay the cache's, read-only.
	Owner *cache.Owner
	// Copy makes every file a copy, never a hardlink to the cache: the
	// task runs as the cache's own user, who could write through a link.
	Copy bool
}

const (
	maxManifests  = 1000 // manifests in one include graph
	fetchParallel = 8    // files placed at once
)

// Stats tells where the bytes of a fetch came from, as swarming
// reports it per task. Every regular file of the tree and every manifest is
// one item: hot when it was in the slave's cache (or another slot was
// downloading it at the same time), cold when this fetch downloaded it.
type Stats struct {
	HotItems, ColdItems int
	HotBytes, ColdBytes int64
	Duration            time.Duration
}

// Fetch lays out the tree of the manifest digest in dir, which must exist
// and be empty. It loads the manifest and everything it includes, and checks
// the whole tree before writing anything: a tree with a path or a link that
// would land outside dir is refused. Every blob is verified against its
// digest as it is written. On a failure after writing started, dir may hold
// part of the tree, but nothing outside dir is touched. Fetch downloads
// every blob; FetchWith takes them from a cache.
func Fetch(ctx context.Context, c CAS, digest, dir string) (Tree, error) {
	tree, _, err := FetchWith(ctx, c, nil, digest, dir, Options{})
	return tree, err
}

// FetchWith is Fetch through the slave's cache: blobs it holds are not
// downloaded again, and those downloaded stay in it for the next tasks.
// With read_only 1 or 2 the files are hardlinks to the cache's read-only
// entries (unless o.Copy); with read_only 0 they are copies, which the task
// may change without changing the cache. cache nil downloads everything,
// as Fetch. The stats are filled in as far as the fetch went, also on an
// error; the tree returned, also on an error, holds the links to Release
// once dir is removed.
func FetchWith(ctx context.Context, c CAS, cache *cache.Cache, digest, dir string, o Options) (Tree, Stats, error) {
	f := newFetcher(c, cache)
	f.opts = o
	start := time.Now()
	tree, err := f.fetchTree(ctx, digest, dir)
	st := f.stats()
	st.Duration = time.Since(start)
	return tree, st, err
}

func (f *fetcher) fetchTree(ctx context.Context, digest, dir string) (Tree, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Tree{}, fmt.Errorf("fetch %s: %w", digest, err)
	}
	if len(entries) > 0 {
		return Tree{}, fmt.Errorf("fetch %s: folder %s is not empty", digest, dir)
	}
	l := &treeLoader{f: f, onPath: map[string]bool{}, done: map[string]bool{}, files: map[string]isolate.File{}}
	if err := l.load(ctx, digest); err != nil {
		return Tree{}, fmt.Errorf("fetch %s: %w", digest, err)
	}
	if err := isolate.CheckTree(l.files); err != nil {
		return Tree{}, fmt.Errorf("fetch %s: %w", digest, invalidTree(err))
	}
	tree := l.tree()
	algo, _ := isolate.AlgoOf(digest) // load checked it
	if err := writeTree(ctx, f, algo, dir, l.files, &tree); err != nil {
		return Tree{links: tree.links}, fmt.Errorf("fetch %s: %w", digest, err)
	}
	return tree, nil
}

// treeLoader gathers the files of a manifest and of its includes, depth
// first: a path keeps the first entry met, so a manifest's own files win
// over its includes', and earlier includes over later ones.
type treeLoader struct {
	f         *fetcher
	onPath    map[string]bool // manifests being loaded, to detect cycles
	done      map[string]bool
	files     map[string]isolate.File
	manifests []*isolate.Isolated // in load order
}

func (l *treeLoader) load(ctx context.Context, digest string) error {
	if l.onPath[digest] {
		return invalidTree(fmt.Errorf("manifest %s includes itself: %w", digest, model.ErrInvalid))
	}
	if l.done[digest] {
		return nil
	}
	if len(l.manifests) >= maxManifests {
		return invalidTree(fmt.Errorf("more than %d manifests included: %w", maxManifests, model.ErrTooLarge))
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
func writeTree(ctx context.Context, f *fetcher, algo isolate.Algo, dir string, files map[string]isolate.File, tree *Tree) error {
	paths := slices.Sorted(maps.Keys(files))
	dirs := map[string]bool{}
	addParents := func(p string) {
		for d := p; d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for _, p := range paths {
		addParents(path.Dir(p))
	}
	// The task runs in relative_cwd even when no input lies in it (Kudu's
	// .isolate files sit in a folder of their own and list nothing there),
	// so the folder exists as luci's run_isolated made it. The manifest's
	// check refused a relative_cwd that leaves the tree.
	if rc := path.Clean(tree.RelativeCwd); rc != "." && rc != "" {
		for d := rc; d != "."; d = path.Dir(d) {
			if _, ok := files[d]; ok {
				return invalidTree(fmt.Errorf("relative_cwd %s: %s is a file or link, not a folder: %w", rc, d, model.ErrInvalid))
			}
		}
		addParents(rc)
	}
	folders := slices.Sorted(maps.Keys(dirs))
	for _, d := range folders {
		if err := os.MkdirAll(filepath.Join(dir, filepath.FromSlash(d)), 0o755); err != nil {
			return err
		}
		if err := f.chown(filepath.Join(dir, filepath.FromSlash(d))); err != nil {
			return err
		}
	}
	for _, p := range paths {
		if e := files[p]; e.IsLink() {
			if err := os.Symlink(e.Link, filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				return err
			}
			if err := f.chown(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				return err
			}
		}
	}
	var mu sync.Mutex // guards tree.links until g.Wait
	var written atomic.Int64
	readOnly := tree.ReadOnly
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(fetchParallel)
	for _, p := range paths {
		e := files[p]
		if e.IsLink() {
			continue
		}
		dst := filepath.Join(dir, filepath.FromSlash(p))
		tree.Files++
		g.Go(func() error {
			n, link, err := f.place(gctx, algo, e.Digest, e.Size, dst, filePerm(e.Mode, readOnly))
			if link != nil {
				mu.Lock()
				tree.links = append(tree.links, link)
				mu.Unlock()
			}
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
