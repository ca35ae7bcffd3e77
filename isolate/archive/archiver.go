package archive

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/isolatefile"
)

// Stats tells what an archive run did. Files and Bytes count the
// distinct files read (a file that several trees list counts once); an
// item is a blob the trees need, file or manifest, counted once by digest:
// Uploaded of them were sent, Hits were on the server already. Archiving
// unchanged trees again uploads nothing.
type Stats struct {
	Tests         int // trees archived
	Files         int
	Bytes         int64
	Uploaded      int
	UploadedBytes int64
	Hits          int
	HitBytes      int64
}

// archiveJob is one .isolate file to turn into a manifest in the CAS.
type archiveJob struct {
	isolate string // the .isolate file
	vars    isolatefile.Variables
	out     string // where to write the manifest too; "" for nowhere
	tree    *Tree  // given directly: no .isolate file to read

	// Filled in by the run.
	walked   map[string]walkedFile // regular files by tree path
	links    map[string]string     // links by tree path
	base     *isolate.Isolated     // the manifest without its files
	manifest []byte
	digest   string
	err      error // this job failed; the others go on
}

// archiver archives the trees of one run through one path: each file is
// hashed once however many trees list it, the server is asked about every
// blob in batches, and each missing blob is uploaded once.
type archiver struct {
	c      CAS
	algo   isolate.Algo
	conc   int
	hashed atomic.Int64 // files hashed, which tests check
}

func newArchiver(c CAS, algo isolate.Algo, conc int) (*archiver, error) {
	if algo == "" {
		algo = isolate.SHA1
	}
	if !algo.Valid() {
		return nil, fmt.Errorf("unknown digest algorithm %q (want %s or %s)", algo, isolate.SHA1, isolate.SHA256)
	}
	if conc <= 0 {
		conc = 2 * runtime.NumCPU()
	}
	return &archiver{c: c, algo: algo, conc: conc}, nil
}

// fileKey is a file as it was when walked.
type fileKey struct {
	src         string
	size, mtime int64
}

type hashed struct {
	digest string
	size   int64
	err    error
}

// run archives the jobs. An error of one job (a malformed .isolate file,
// a missing file) is left in its err, and the others go on; the returned
// error is one that stops them all (the server failing, ctx ending).
func (a *archiver) run(ctx context.Context, jobs []*archiveJob) (Stats, error) {
	if err := a.each(ctx, jobs, func(j *archiveJob) { j.err = a.walk(j) }); err != nil {
		return Stats{}, err
	}
	byKey, err := a.hashFiles(ctx, ok(jobs))
	if err != nil {
		return Stats{}, err
	}
	for _, j := range ok(jobs) {
		j.err = a.finish(j, byKey)
	}
	blobs, st := needed(ok(jobs), byKey)
	if len(blobs) == 0 {
		return st, nil
	}
	fileBlobs, manifests, err := a.missing(ctx, blobs, &st)
	if err != nil {
		return st, err
	}
	// Manifests only once all files are there: a manifest on the server
	// promises its files.
	for _, batch := range [][]string{fileBlobs, manifests} {
		if err := a.upload(ctx, blobs, batch); err != nil {
			return st, err
		}
	}
	return st, nil
}

// hashFiles hashes each distinct file of the jobs once, in parallel. A
// file that cannot be read has its error in its result; the error
// returned stops everything.
func (a *archiver) hashFiles(ctx context.Context, jobs []*archiveJob) (map[fileKey]hashed, error) {
	var keys []fileKey
	seen := map[fileKey]bool{}
	for _, j := range jobs {
		for _, p := range slices.Sorted(maps.Keys(j.walked)) {
			f := j.walked[p]
			if k := (fileKey{f.src, f.size, f.mtime}); !seen[k] {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	results := make([]hashed, len(keys))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.conc)
	for i, k := range keys {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			a.hashed.Add(1)
			d, n, err := isolate.HashFile(a.algo, k.src)
			results[i] = hashed{d, n, err}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	byKey := make(map[fileKey]hashed, len(keys))
	for i, k := range keys {
		byKey[k] = results[i]
	}
	return byKey, nil
}

// source is where the bytes of a blob to upload come from.
type source struct {
	src  string // file to read, or
	data []byte // the manifest
	size int64
}

// needed lists every blob the jobs need, once by digest: their files'
// and their manifests; the stats count the trees and their distinct files.
func needed(jobs []*archiveJob, byKey map[fileKey]hashed) (map[string]source, Stats) {
	var st Stats
	blobs := map[string]source{}
	files := map[fileKey]bool{}
	for _, j := range jobs {
		st.Tests++
		for _, p := range slices.Sorted(maps.Keys(j.walked)) {
			f := j.walked[p]
			k := fileKey{f.src, f.size, f.mtime}
			h := byKey[k]
			if !files[k] {
				files[k] = true
				st.Files++
				st.Bytes += h.size
			}
			if _, dup := blobs[h.digest]; !dup {
				blobs[h.digest] = source{src: f.src, size: h.size}
			}
		}
	}
	for _, j := range jobs {
		blobs[j.digest] = source{data: j.manifest, size: int64(len(j.manifest))}
	}
	return blobs, st
}

// missing asks the CAS which blobs it lacks, counts hits and uploads in
// st, and returns the file blobs to upload, largest first (so that the big
// ones do not finish alone at the end), and the manifests.
func (a *archiver) missing(ctx context.Context, blobs map[string]source, st *Stats) (fileBlobs, manifests []string, err error) {
	missing, err := a.c.Missing(ctx, slices.Sorted(maps.Keys(blobs)))
	if err != nil {
		return nil, nil, err
	}
	st.Hits, st.Uploaded = len(blobs), 0
	for _, b := range blobs {
		st.HitBytes += b.size
	}
	for _, d := range missing {
		b, ok := blobs[d]
		if !ok {
			continue // the server named a digest not asked about
		}
		st.Hits--
		st.HitBytes -= b.size
		st.Uploaded++
		st.UploadedBytes += b.size
		if b.data != nil {
			manifests = append(manifests, d)
		} else {
			fileBlobs = append(fileBlobs, d)
		}
	}
	slices.SortFunc(fileBlobs, func(x, y string) int {
		return cmp.Or(cmp.Compare(blobs[y].size, blobs[x].size), strings.Compare(x, y))
	})
	return fileBlobs, manifests, nil
}

// upload sends the blobs of batch, conc at a time.
func (a *archiver) upload(ctx context.Context, blobs map[string]source, batch []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.conc)
	for _, d := range batch {
		b := blobs[d]
		g.Go(func() error {
			if b.data != nil {
				if err := a.c.Upload(gctx, d, bytes.NewReader(b.data), b.size); err != nil {
					return fmt.Errorf("manifest: %w", err)
				}
				return nil
			}
			return a.uploadFile(gctx, d, b.src, b.size)
		})
	}
	return g.Wait()
}

// each runs fn on every job, conc at a time.
func (a *archiver) each(ctx context.Context, jobs []*archiveJob, fn func(*archiveJob)) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.conc)
	for _, j := range jobs {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			fn(j)
			return nil
		})
	}
	return g.Wait()
}

func ok(jobs []*archiveJob) []*archiveJob {
	var out []*archiveJob
	for _, j := range jobs {
		if j.err == nil {
			out = append(out, j)
		}
	}
	return out
}

// walk reads the job's .isolate file and finds the files of its tree.
func (a *archiver) walk(j *archiveJob) error {
	if j.tree != nil {
		return a.walkTree(j)
	}
	isoFile, err := isolatefile.Load(j.isolate, j.vars)
	if err != nil {
		return err // names the file already
	}
	root, err := rootOf(isoFile)
	if err != nil {
		return fmt.Errorf("%s: %w", j.isolate, err)
	}
	w := newTreeWalker(root)
	for _, f := range isoFile.Files {
		rel, err := filepath.Rel(root, filepath.Join(isoFile.Dir, filepath.FromSlash(f)))
		if err != nil {
			return fmt.Errorf("%s: %s: %w", j.isolate, f, err)
		}
		item := walkItem{rel: rootDot(filepath.ToSlash(rel)), listed: f, direct: true, wantDir: strings.HasSuffix(f, "/")}
		if err := w.add(item); err != nil {
			return fmt.Errorf("%s: %w", j.isolate, err)
		}
	}
	readOnly := 1 // luci's default: files read-only, folders writable
	if isoFile.ReadOnly != nil {
		readOnly = *isoFile.ReadOnly
	}
	j.base = &isolate.Isolated{Algo: a.algo, Version: isolate.IsolatedVersion, Command: isoFile.Command, ReadOnly: &readOnly}
	if len(isoFile.Command) > 0 {
		cwd, err := filepath.Rel(root, isoFile.Dir)
		if err != nil {
			return fmt.Errorf("%s: %w", j.isolate, err)
		}
		j.base.RelativeCwd = filepath.ToSlash(cwd)
	}
	j.walked, j.links = w.files, w.links
	return nil
}

// finish builds the job's manifest from the digests of its files and
// writes it where asked.
func (a *archiver) finish(j *archiveJob, byKey map[fileKey]hashed) error {
	m := *j.base
	m.Files = make(map[string]isolate.File, len(j.walked)+len(j.links))
	for p, target := range j.links {
		m.Files[p] = isolate.File{Link: target}
	}
	for _, p := range slices.Sorted(maps.Keys(j.walked)) {
		f := j.walked[p]
		h := byKey[fileKey{f.src, f.size, f.mtime}]
		if h.err != nil {
			return fmt.Errorf("%s: %w", j.isolate, h.err)
		}
		m.Files[p] = isolate.File{Digest: h.digest, Size: h.size, Mode: f.mode}
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("%s: the tree cannot be isolated: %w", j.isolate, err)
	}
	j.manifest = m.Encode()
	j.digest = isolate.HashBytes(a.algo, j.manifest)
	if j.out != "" {
		if err := os.WriteFile(j.out, j.manifest, 0o644); err != nil {
			return fmt.Errorf("%s: writing the manifest: %w", j.isolate, err)
		}
	}
	return nil
}

func (a *archiver) uploadFile(ctx context.Context, digest, src string, size int64) error {
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := a.c.Upload(ctx, digest, f, size); err != nil {
		if errors.Is(err, model.ErrInvalid) {
			return fmt.Errorf("%s (did it change while archiving?): %w", src, err)
		}
		return fmt.Errorf("%s: %w", src, err)
	}
	return nil
}
