package archive

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/dist-test/dist_test/isolate"
)

// treeWalker turns the entries of a .isolate file into the regular files
// and links of a manifest rooted at root. It follows luci's rules for
// symbolic links: a link found inside the tree is recorded as a link (with a
// relative target, also when written absolute) and what it points to is
// included too; a link on the way to a listed path that leads out of the
// tree is followed as if it were the folder or file it names (build output
// folders are often such links); a link found inside a listed folder that
// leads out of the tree is an error, since the task could not follow it.
type treeWalker struct {
	root     string // absolute
	rootReal string // root with its own links resolved, to place absolute targets
	files    map[string]walkedFile
	links    map[string]string
	seen     map[string]bool
}

type walkedFile struct {
	src  string // absolute path to read
	mode int
	// size and mtime (Unix nanoseconds) as walked: with src, they tell
	// when a file met again in the same run need not be hashed again.
	size, mtime int64
}

// walkItem is one path to add, relative to the root (slash-separated, clean;
// "" is the root itself).
type walkItem struct {
	rel     string
	listed  string // the .isolate entry it comes from, for messages
	direct  bool   // the entry names this very path (not something found inside it)
	wantDir bool   // the entry ends in "/"
	checked bool   // its parent folders are known to be real folders
	hops    int
}

func newTreeWalker(root string) *treeWalker {
	real, err := filepath.EvalSymlinks(root)
	if err != nil {
		real = root
	}
	return &treeWalker{root: root, rootReal: real, files: map[string]walkedFile{},
		links: map[string]string{}, seen: map[string]bool{}}
}

func (w *treeWalker) abs(rel string) string { return filepath.Join(w.root, filepath.FromSlash(rel)) }

// inTree returns the tree path a link at linkRel with target leads to, and
// whether it stays inside the tree (judged lexically, as the manifest's own
// check will judge it).
func (w *treeWalker) inTree(linkRel, target string) (string, bool) {
	if filepath.IsAbs(target) {
		for _, r := range []string{w.root, w.rootReal} {
			rel, err := filepath.Rel(r, filepath.Clean(target))
			if rel = filepath.ToSlash(rel); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
				return rootDot(rel), true
			}
		}
		return "", false
	}
	t := path.Join(path.Dir(linkRel), filepath.ToSlash(target))
	if t == ".." || strings.HasPrefix(t, "../") {
		return "", false
	}
	return rootDot(t), true
}

// rootDot maps the clean path "." to "", the walker's name for the root.
func rootDot(p string) string {
	if p == "." {
		return ""
	}
	return p
}

// relTarget is the target to record for a link at linkRel leading to the
// tree path to.
func relTarget(linkRel, to string) string {
	r, err := filepath.Rel(filepath.FromSlash(path.Dir(linkRel)), filepath.FromSlash(nonEmpty(to)))
	if err != nil {
		return to
	}
	return filepath.ToSlash(r)
}

func nonEmpty(p string) string {
	if p == "" {
		return "."
	}
	return p
}

// add walks one item and everything it leads to.
func (w *treeWalker) add(first walkItem) error {
	queue := []walkItem{first}
	for len(queue) > 0 {
		it := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		more, err := w.step(it)
		if err != nil {
			return err
		}
		queue = append(queue, more...)
	}
	return nil
}

// step walks one item: it returns the items it leads to (a link's
// target, a folder's entries), and records the files and links met.
func (w *treeWalker) step(it walkItem) ([]walkItem, error) {
	if it.hops > isolate.MaxLinkHops {
		return nil, fmt.Errorf("%s: too many levels of links", it.listed)
	}
	if !utf8.ValidString(it.rel) {
		return nil, fmt.Errorf("%s: file name %q is not valid UTF-8", it.listed, it.rel)
	}
	if !it.checked && it.rel != "" {
		if next, ok, err := w.throughParentLink(it); err != nil || ok {
			return next, err
		}
	}
	if w.seen[it.rel] {
		return nil, nil
	}
	w.seen[it.rel] = true

	abs := w.abs(it.rel)
	fi, err := os.Lstat(abs)
	if err != nil {
		return nil, missingErr(it, err)
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		var next []walkItem
		if next, fi, err = w.link(it, abs); err != nil || next != nil {
			return next, err
		}
	}
	return w.visit(it, abs, fi)
}

// throughParentLink resolves links among the parent folders of it: the
// first that leads inside the tree is recorded, and it is walked again
// through that link's target (ok). Links out of the tree are followed as
// plain folders.
func (w *treeWalker) throughParentLink(it walkItem) (next []walkItem, ok bool, err error) {
	segs := strings.Split(it.rel, "/")
	for i := 1; i < len(segs); i++ {
		prefix := strings.Join(segs[:i], "/")
		fi, err := os.Lstat(w.abs(prefix))
		if err != nil {
			return nil, false, missingErr(it, err)
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			continue
		}
		target, err := os.Readlink(w.abs(prefix))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", it.listed, err)
		}
		to, inside := w.inTree(prefix, target)
		if !inside {
			continue // followed as a plain folder
		}
		w.links[prefix] = relTarget(prefix, to)
		n := it
		n.rel = path.Join(nonEmpty(to), strings.Join(segs[i:], "/"))
		n.hops++
		return []walkItem{n}, true, nil
	}
	return nil, false, nil
}

// link handles an item that is a link: one inside the tree is recorded and
// its target walked next; a listed one out of the tree stands for what it
// names, whose FileInfo is returned; one found out of the tree inside a
// listed folder is an error.
func (w *treeWalker) link(it walkItem, abs string) ([]walkItem, fs.FileInfo, error) {
	target, err := os.Readlink(abs)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", it.listed, err)
	}
	to, ok := w.inTree(it.rel, target)
	switch {
	case ok:
		w.links[it.rel] = relTarget(it.rel, to)
		// What the link names comes along, as luci does.
		return []walkItem{{rel: to, listed: it.listed, hops: it.hops + 1}}, nil, nil
	case !it.direct:
		return nil, nil, fmt.Errorf("%s: link %s -> %s leads out of the tree rooted at %s",
			it.listed, it.rel, target, w.root)
	}
	fi, err := os.Stat(abs)
	if err != nil {
		return nil, nil, missingErr(it, err)
	}
	return nil, fi, nil
}

// visit records a regular file, or returns the entries of a folder.
func (w *treeWalker) visit(it walkItem, abs string, fi fs.FileInfo) ([]walkItem, error) {
	switch {
	case fi.IsDir():
		if it.direct && !it.wantDir {
			return nil, fmt.Errorf("%s is a folder: write it with a trailing slash", it.listed)
		}
		entries, err := os.ReadDir(abs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", it.listed, err)
		}
		var more []walkItem
		for _, e := range entries {
			if skipped(e.Name(), e.IsDir()) {
				continue
			}
			more = append(more, walkItem{rel: path.Join(it.rel, e.Name()), listed: it.listed, checked: true, hops: it.hops})
		}
		return more, nil
	case fi.Mode().IsRegular():
		if it.direct && it.wantDir {
			return nil, fmt.Errorf("%s is a file, not a folder: remove the trailing slash", it.listed)
		}
		w.files[it.rel] = walkedFile{src: abs, mode: fileMode(fi), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
		return nil, nil
	}
	return nil, fmt.Errorf("%s: %s is a %s, neither a file, a folder nor a link", it.listed, abs, fi.Mode().Type())
}

// fileMode is the mode a manifest records for a file: its permission bits,
// but none on Windows, whose modes mean nothing to a slave (luci's isolate
// leaves them out there too); the slave then uses 0644.
func fileMode(fi fs.FileInfo) int {
	if runtime.GOOS == "windows" {
		return 0
	}
	return int(fi.Mode().Perm())
}

// skipped tells the entries of listed folders that never belong to task
// inputs, as luci's default blacklist does.
func skipped(name string, isDir bool) bool {
	if isDir {
		return name == ".git" || name == ".svn" || name == ".hg"
	}
	return strings.HasSuffix(name, ".pyc") || strings.HasSuffix(name, ".swp")
}

func missingErr(it walkItem, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: no such file or folder (listed in the .isolate file)", it.listed)
	}
	return fmt.Errorf("%s: %w", it.listed, err)
}
