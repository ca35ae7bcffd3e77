package archive

import (
	"context"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/isolatefile"
)

// CAS is what archiving needs of the content-addressed store: which of
// the blobs it holds, and a way to add one, verified against its digest.
// *cas.Client is the real one.
type CAS interface {
	// Missing returns the digests the store does not hold; those it holds
	// stay another retention period.
	Missing(ctx context.Context, digests []string) ([]string, error)
	// Upload sends size bytes of r (-1: unknown) under digest. A transient
	// failure may be retried when r is an io.Seeker.
	Upload(ctx context.Context, digest string, r io.Reader, size int64) error
}

// Options says what Archive puts in the CAS.
type Options struct {
	IsolatePath string                // the .isolate file
	Vars        isolatefile.Variables // values of its variables
	Algo        isolate.Algo          // isolate.SHA1 when empty
	Concurrency int                   // files hashed or uploaded at once; 2 per CPU when 0
	IsolatedOut string                // when set, the .isolated manifest is also written there
}

// Archive does what luci's `isolate archive` does: it reads the .isolate
// file, hashes every file it lists, uploads the blobs the server lacks, then
// the .isolated manifest, and returns the manifest's digest (a task's
// isolate_hash). It is Batch for one tree.
//
// The manifest's root is the deepest folder holding both the .isolate file's
// folder and everything it lists; relative_cwd is the .isolate file's folder
// seen from there, so the command runs where its relative paths were written.
func Archive(ctx context.Context, c CAS, opts Options) (digest string, st Stats, err error) {
	a, err := newArchiver(c, opts.Algo, opts.Concurrency)
	if err != nil {
		return "", st, fmt.Errorf("archive: %w", err)
	}
	j := &archiveJob{isolate: opts.IsolatePath, vars: opts.Vars, out: opts.IsolatedOut}
	st, err = a.run(ctx, []*archiveJob{j})
	if err != nil {
		return "", st, fmt.Errorf("archive %s: %w", opts.IsolatePath, err)
	}
	if j.err != nil {
		return "", st, fmt.Errorf("archive: %w", j.err)
	}
	return j.digest, st, nil
}

// rootOf climbs from the .isolate file's folder as far as its entries climb
// with leading "..", as luci's determine_root_dir does.
func rootOf(isoFile *isolatefile.File) (string, error) {
	up := 0
	for _, f := range isoFile.Files {
		n := 0
		for seg := range strings.SplitSeq(path.Clean(f), "/") {
			if seg != ".." {
				break
			}
			n++
		}
		up = max(up, n)
	}
	root := isoFile.Dir
	for range up {
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("the files listed climb above the top folder %s", root)
		}
		root = parent
	}
	return root, nil
}
