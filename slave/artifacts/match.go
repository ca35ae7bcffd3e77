package artifacts

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/bmatcuk/doublestar/v4"
)

// file is one regular file to archive.
type file struct {
	name string      // slash-separated, relative to root: the name in the zip
	real string      // the path to read, links resolved
	info fs.FileInfo // of real
}

// match returns the regular files under root matching any of globs, sorted
// by name, and the sorted names of matches it had to leave out.
func match(ctx context.Context, root string, globs []string) ([]file, []string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return nil, nil, fmt.Errorf("artifact folder: %w", err)
	}
	skipped := map[string]bool{}
	fsys := &confined{FS: os.DirFS(realRoot), root: realRoot, refused: skipped}
	found := map[string]file{}
	for _, g := range globs {
		pattern, err := cleanPattern(g)
		if err != nil {
			return nil, nil, err
		}
		// WithNoFollow: "**" must not walk into linked folders, which may
		// lead out of root or into a cycle.
		err = doublestar.GlobWalk(fsys, pattern, func(name string, _ fs.DirEntry) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			if _, ok := found[name]; ok || skipped[name] {
				return nil
			}
			f, ok := resolve(realRoot, name)
			switch {
			case !ok:
				skipped[name] = true
			case f.info.Mode().IsRegular():
				found[name] = f
			}
			return nil
		}, doublestar.WithNoFollow())
		if err != nil {
			return nil, nil, fmt.Errorf("match artifact pattern %q: %w", g, err)
		}
	}
	files := make([]file, 0, len(found))
	for _, f := range found {
		files = append(files, f)
	}
	slices.SortFunc(files, func(a, b file) int { return strings.Compare(a.name, b.name) })
	names := make([]string, 0, len(skipped))
	for name := range skipped {
		names = append(names, name)
	}
	slices.Sort(names)
	return files, names, nil
}

// resolve follows the links on the way to name and reports false when they
// lead out of root or nowhere.
func resolve(realRoot, name string) (file, bool) {
	real, err := filepath.EvalSymlinks(filepath.Join(realRoot, filepath.FromSlash(name)))
	if err != nil || !within(realRoot, real) {
		return file{}, false
	}
	info, err := os.Stat(real)
	if err != nil {
		return file{}, false
	}
	return file{name: name, real: real, info: info}, true
}

// cleanPattern refuses patterns that could only point out of the task's
// folder and drops a leading "./", which io/fs paths do not allow.
func cleanPattern(g string) (string, error) {
	p := g
	for strings.HasPrefix(p, "./") {
		p = strings.TrimLeft(p[2:], "/")
	}
	switch {
	case p == "" || p == ".":
		return "", fmt.Errorf("artifact pattern %q matches no file: name files inside the task folder", g)
	case strings.HasPrefix(p, "/"):
		return "", fmt.Errorf("artifact pattern %q is absolute: make it relative to the task folder", g)
	case slices.Contains(strings.Split(p, "/"), ".."):
		return "", fmt.Errorf("artifact pattern %q leads out of the task folder with \"..\"", g)
	case !doublestar.ValidatePattern(p):
		return "", fmt.Errorf("artifact pattern %q is not valid: check its brackets and braces", g)
	}
	return p, nil
}

// confined is the task's folder as the glob walk sees it: a folder reached
// through a link that leads out of the task's folder, or nowhere, reads as
// absent, and is noted in refused. Without it a pattern such as "link/**"
// walked whatever tree the link named, "/" included, with the slave's
// privileges.
type confined struct {
	fs.FS
	root    string // resolved
	refused map[string]bool
}

func (c *confined) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." && !within(c.root, filepath.Join(c.root, filepath.FromSlash(name))) {
		c.refused[name] = true
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	return fs.ReadDir(c.FS, name)
}

// within tells whether path, links resolved, lies in the resolved root.
func within(root, path string) bool {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return false
	}
	rel, err := filepath.Rel(root, real)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
