package archive

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/dist-test/dist_test/isolate"
)

// Tree is a task's input tree given directly rather than by a .isolate
// file: frontends that know their inputs (dist_test go-test) build it
// without writing a file into the user's source tree.
type Tree struct {
	Name string // for messages
	Root string // absolute folder that Paths are relative to
	// Paths are files and folders (written with a trailing "/") relative
	// to Root, slash-separated; folders are walked as a .isolate file's
	// are.
	Paths []string
	// Extra are files from outside Root by their tree path, such as build
	// outputs in a temporary folder.
	Extra       map[string]string
	Command     []string
	RelativeCwd string // slash-separated, relative to Root
}

// Trees archives trees as Batch archives gen files: files they share are
// hashed, queried and uploaded once, and only blobs the server lacks are
// sent. It returns the manifest digest of each tree, in order; a tree in
// error stops nothing else, and its error comes back joined with the
// others'.
func Trees(ctx context.Context, c CAS, trees []Tree, opt BatchOptions) ([]string, Stats, error) {
	a, err := newArchiver(c, opt.Algo, opt.Concurrency)
	if err != nil {
		return nil, Stats{}, err
	}
	jobs := make([]*archiveJob, len(trees))
	for i := range trees {
		jobs[i] = &archiveJob{isolate: trees[i].Name, tree: &trees[i]}
	}
	st, err := a.run(ctx, jobs)
	if err != nil {
		return nil, st, err
	}
	digests := make([]string, len(jobs))
	var errs []error
	for i, j := range jobs {
		if j.err != nil {
			errs = append(errs, j.err)
			continue
		}
		digests[i] = j.digest
	}
	return digests, st, errors.Join(errs...)
}

// walkTree finds the files of a Tree.
func (a *archiver) walkTree(j *archiveJob) error {
	t := j.tree
	w := newTreeWalker(t.Root)
	for _, p := range t.Paths {
		rel := rootDot(path.Clean(p))
		if rel == ".." || strings.HasPrefix(rel, "../") || path.IsAbs(rel) {
			return fmt.Errorf("%s: %s is outside %s", t.Name, p, t.Root)
		}
		item := walkItem{rel: rel, listed: p, direct: true, wantDir: strings.HasSuffix(p, "/")}
		if err := w.add(item); err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
	}
	for rel, src := range t.Extra {
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("%s: %w", t.Name, err)
		}
		w.files[rel] = walkedFile{src: src, mode: fileMode(fi), size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	}
	readOnly := 1
	j.base = &isolate.Isolated{Algo: a.algo, Version: isolate.IsolatedVersion, Command: t.Command,
		ReadOnly: &readOnly, RelativeCwd: t.RelativeCwd}
	j.walked, j.links = w.files, w.links
	return nil
}
