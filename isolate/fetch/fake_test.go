package fetch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/isolate"
)

// memCAS serves blobs from memory; the first read of a blob in cut fails
// halfway through, as a dropped connection would.
type memCAS struct {
	mu    sync.Mutex
	blobs map[string][]byte
	cut   map[string]bool
	opens map[string]int
}

func (m *memCAS) put(data []byte) string {
	d := isolate.HashBytes(isolate.SHA1, data)
	m.blobs[d] = data
	return d
}

func (m *memCAS) Open(_ context.Context, digest string) (io.ReadCloser, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	data, ok := m.blobs[digest]
	if !ok {
		return nil, 0, fmt.Errorf("blob %s: %w", digest, model.ErrNotFound)
	}
	m.opens[digest]++
	if m.cut[digest] {
		m.cut[digest] = false
		half := io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(io.ErrUnexpectedEOF))
		return io.NopCloser(half), int64(len(data)), nil
	}
	return io.NopCloser(bytes.NewReader(data)), int64(len(data)), nil
}

// A fetch works from any CAS: it lays the tree out, reads a blob cut
// midway again, and says which blob a CAS lacks.
func TestFetchFromAnyCAS(t *testing.T) {
	for _, withCache := range []bool{false, true} {
		t.Run(fmt.Sprintf("cache %v", withCache), func(t *testing.T) {
			m := &memCAS{blobs: map[string][]byte{}, cut: map[string]bool{}, opens: map[string]int{}}
			big := bytes.Repeat([]byte("input bytes\n"), 1000)
			dBig, dSmall := m.put(big), m.put([]byte("small"))
			m.cut[dBig] = true
			top := m.put((&isolate.Isolated{Files: map[string]isolate.File{
				"big.txt": {Digest: dBig, Size: int64(len(big))}, "sub/small.txt": {Digest: dSmall, Size: 5},
			}}).Encode())
			f := newFetcher(m, nil)
			if withCache {
				f.cache = openTestCache(t)
			}
			f.backoff = time.Millisecond
			dir := t.TempDir()
			if _, err := f.fetchTree(context.Background(), top, dir); err != nil {
				t.Fatal(err)
			}
			for p, want := range map[string][]byte{"big.txt": big, "sub/small.txt": []byte("small")} {
				if got, err := os.ReadFile(filepath.Join(dir, p)); err != nil || !bytes.Equal(got, want) {
					t.Errorf("%s: %d bytes, %v; want the %d of the blob", p, len(got), err, len(want))
				}
			}
			if m.opens[dBig] != 2 || m.opens[dSmall] != 1 || m.opens[top] != 1 {
				t.Fatalf("opens %v: want the cut blob twice, the others once", m.opens)
			}

			lost := m.put((&isolate.Isolated{Files: map[string]isolate.File{"gone": {Digest: isolate.HashBytes(isolate.SHA1, []byte("gone")), Size: 4}}}).Encode())
			if _, err := f.fetchTree(context.Background(), lost, t.TempDir()); !errors.Is(err, model.ErrNotFound) {
				t.Fatalf("fetch of a tree whose blob the CAS lacks: %v, want model.ErrNotFound", err)
			}
		})
	}
}
