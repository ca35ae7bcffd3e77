package archive

import (
	"context"
	"errors"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/dist-test/dist_test/isolate"
)

// memCAS is a CAS in memory that records the order of the uploads.
type memCAS struct {
	mu       sync.Mutex
	blobs    map[string][]byte
	uploads  []string
	missing  int
	failWith error // Missing fails with it when set
}

func (m *memCAS) Missing(_ context.Context, digests []string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.missing++
	if m.failWith != nil {
		return nil, m.failWith
	}
	var out []string
	for _, d := range digests {
		if _, ok := m.blobs[d]; !ok {
			out = append(out, d)
		}
	}
	return out, nil
}

func (m *memCAS) Upload(_ context.Context, digest string, r io.Reader, _ int64) error {
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.blobs[digest] = data
	m.uploads = append(m.uploads, digest)
	return nil
}

// Archive works with any CAS, and uploads a manifest only once every file
// it names is there: a manifest in the CAS promises its files.
func TestArchiveUploadsManifestsLast(t *testing.T) {
	m := &memCAS{blobs: map[string][]byte{}}
	digest, st, err := Archive(context.Background(), m, Options{IsolatePath: kuduTree(t, t.TempDir()), Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if m.missing != 1 || len(m.uploads) != st.Uploaded || st.Hits != 0 {
		t.Fatalf("%d missing-queries, %d uploads, stats %+v; want 1 query and every blob uploaded", m.missing, len(m.uploads), st)
	}
	if last := m.uploads[len(m.uploads)-1]; last != digest || slices.Index(m.uploads, digest) != len(m.uploads)-1 {
		t.Fatalf("uploads %v: the manifest %s is not last, alone", m.uploads, digest)
	}
	iso, err := isolate.ParseIsolated(m.blobs[digest])
	if err != nil {
		t.Fatal(err)
	}
	for p, f := range iso.Files {
		if f.IsLink() {
			continue
		}
		if data, ok := m.blobs[f.Digest]; !ok || isolate.HashBytes(isolate.SHA1, data) != f.Digest {
			t.Errorf("%s: blob %s not uploaded whole", p, f.Digest)
		}
	}

	// A CAS that cannot answer fails the archive, and nothing is uploaded.
	down := &memCAS{blobs: map[string][]byte{}, failWith: errors.New("cas down")}
	if _, _, err := Archive(context.Background(), down, Options{IsolatePath: kuduTree(t, t.TempDir())}); !errors.Is(err, down.failWith) {
		t.Fatalf("archive through a failing CAS: %v, want its error", err)
	}
	if len(down.uploads) != 0 {
		t.Fatalf("%d uploads after the missing-query failed", len(down.uploads))
	}
}
