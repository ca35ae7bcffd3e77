package isolate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sync/errgroup"
)

// ArchiveOptions says what Archive puts in the CAS.
type ArchiveOptions struct {
	IsolatePath string            // the .isolate file
	Vars        map[string]string // values of its <(NAME) variables
	Algo        Algo              // SHA1 when empty
	Concurrency int               // files hashed or uploaded at once; 8 when 0
	IsolatedOut string            // when set, the .isolated manifest is also written there
}

// ArchiveStats tells what Archive did. Files and Bytes count the regular
// files of the tree; Uploaded and UploadedBytes the blobs actually sent,
// the manifest included, so archiving an unchanged tree again sends none.
type ArchiveStats struct {
	Files         int
	Bytes         int64
	Uploaded      int
	UploadedBytes int64
}

// Archive does what luci's `isolate archive` does: it reads the .isolate
// file, hashes every file it lists, uploads the blobs the server lacks, then
// the .isolated manifest, and returns the manifest's digest (a task's
// isolate_hash).
//
// The manifest's root is the deepest folder holding both the .isolate file's
// folder and everything it lists; relative_cwd is the .isolate file's folder
// seen from there, so the command runs where its relative paths were written.
func Archive(ctx context.Context, c *CASClient, opts ArchiveOptions) (digest string, st ArchiveStats, err error) {
	algo := opts.Algo
	if algo == "" {
		algo = SHA1
	}
	if !algo.Valid() {
		return "", st, fmt.Errorf("archive: unknown digest algorithm %q (want %s or %s)", algo, SHA1, SHA256)
	}
	conc := opts.Concurrency
	if conc <= 0 {
		conc = 8
	}
	isoFile, err := LoadIsolate(opts.IsolatePath, opts.Vars)
	if err != nil {
		return "", st, fmt.Errorf("archive: %w", err)
	}
	manifest, sources, err := buildManifest(ctx, isoFile, algo, conc)
	if err != nil {
		return "", st, fmt.Errorf("archive %s: %w", opts.IsolatePath, err)
	}
	for _, f := range manifest.Files {
		if !f.IsLink() {
			st.Files++
			st.Bytes += f.Size
		}
	}
	data := manifest.Encode()
	digest = HashBytes(algo, data)
	if opts.IsolatedOut != "" {
		if err := os.WriteFile(opts.IsolatedOut, data, 0o644); err != nil {
			return "", st, fmt.Errorf("archive: writing the manifest: %w", err)
		}
	}
	if err := upload(ctx, c, manifest, sources, digest, data, conc, &st); err != nil {
		return "", st, fmt.Errorf("archive %s: %w", opts.IsolatePath, err)
	}
	return digest, st, nil
}

// buildManifest walks and hashes the tree of isoFile. sources maps each
// file digest to one file holding those bytes.
func buildManifest(ctx context.Context, isoFile *IsolateFile, algo Algo, conc int) (*Isolated, map[string]string, error) {
	root, err := rootOf(isoFile)
	if err != nil {
		return nil, nil, err
	}
	w := newTreeWalker(root)
	for _, f := range isoFile.Files {
		rel, err := filepath.Rel(root, filepath.Join(isoFile.Dir, filepath.FromSlash(f)))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f, err)
		}
		item := walkItem{rel: rootDot(filepath.ToSlash(rel)), listed: f, direct: true, wantDir: strings.HasSuffix(f, "/")}
		if err := w.add(item); err != nil {
			return nil, nil, err
		}
	}
	readOnly := 1 // luci's default: files read-only, folders writable
	if isoFile.ReadOnly != nil {
		readOnly = *isoFile.ReadOnly
	}
	m := &Isolated{Algo: algo, Version: IsolatedVersion, Command: isoFile.Command, ReadOnly: &readOnly,
		Files: make(map[string]File, len(w.files)+len(w.links))}
	if len(isoFile.Command) > 0 {
		cwd, err := filepath.Rel(root, isoFile.Dir)
		if err != nil {
			return nil, nil, err
		}
		m.RelativeCwd = filepath.ToSlash(cwd)
	}
	for p, target := range w.links {
		m.Files[p] = File{Link: target}
	}

	paths := sortedKeys(w.files)
	hashed := make([]File, len(paths))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for i, p := range paths {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			d, n, err := HashFile(algo, w.files[p].src)
			if err != nil {
				return err
			}
			hashed[i] = File{Digest: d, Size: n, Mode: w.files[p].mode}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	sources := make(map[string]string, len(paths))
	for i, p := range paths {
		m.Files[p] = hashed[i]
		if _, ok := sources[hashed[i].Digest]; !ok {
			sources[hashed[i].Digest] = w.files[p].src
		}
	}
	if err := m.validate(); err != nil {
		return nil, nil, fmt.Errorf("the tree cannot be isolated: %w", err)
	}
	return m, sources, nil
}

// rootOf climbs from the .isolate file's folder as far as its entries climb
// with leading "..", as luci's determine_root_dir does.
func rootOf(isoFile *IsolateFile) (string, error) {
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

// upload sends the blobs the server lacks, then the manifest.
func upload(ctx context.Context, c *CASClient, m *Isolated, sources map[string]string, digest string, data []byte, conc int, st *ArchiveStats) error {
	digests := append(sortedKeys(sources), digest)
	missing, err := c.Missing(ctx, digests)
	if err != nil {
		return err
	}
	sizes := make(map[string]int64, len(m.Files))
	for _, f := range m.Files {
		sizes[f.Digest] = f.Size
	}
	manifestMissing := false
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for _, d := range missing {
		src, ok := sources[d]
		if !ok {
			manifestMissing = manifestMissing || d == digest
			continue
		}
		st.Uploaded++
		st.UploadedBytes += sizes[d]
		g.Go(func() error {
			f, err := os.Open(src)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := c.Upload(gctx, d, f, sizes[d]); err != nil {
				return fmt.Errorf("%s (did it change while archiving?): %w", src, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if !manifestMissing {
		return nil
	}
	if err := c.Upload(ctx, digest, bytes.NewReader(data), int64(len(data))); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	st.Uploaded++
	st.UploadedBytes += int64(len(data))
	return nil
}
