package archive

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/isolatetest"
)

// benchTreeSpec shapes a generated tree: many small files, some medium
// ones, a few of several MB; half of the bytes compress like text, half
// are random like compiled code and archives.
type benchTreeSpec struct {
	small, medium, large int
	smallMax, mediumMax  int // sizes are drawn up to these
	largeMin, largeMax   int
}

// fullTree is what the benchmarks archive: 10,000 files, about 200 MB.
var fullTree = benchTreeSpec{small: 8500, medium: 1480, large: 20,
	smallMax: 4 << 10, mediumMax: 112 << 10, largeMin: 2 << 20, largeMax: 8 << 20}

// genBenchTree writes the tree under dir/tree, with a deterministic PRNG,
// and an .isolate file listing it; it returns the .isolate file and the
// tree's size in bytes.
func genBenchTree(tb testing.TB, dir string, spec benchTreeSpec) (string, int64) {
	tb.Helper()
	rng := rand.New(rand.NewPCG(42, 1))
	chacha := rand.NewChaCha8([32]byte{1, 2, 3})
	// Text is cut from one generated page of words, so it compresses as
	// source and logs do.
	words := strings.Fields("the quick brown fox jumps over lazy dog kudu tablet server client " +
		"master raft consensus leader follower replica schema column row scan write flush compaction")
	var page strings.Builder
	for page.Len() < 1<<20 {
		page.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			page.WriteByte('\n')
		} else {
			page.WriteByte(' ')
		}
	}
	text := page.String()
	content := func(n int, i int) []byte {
		b := make([]byte, n)
		if i%2 == 0 {
			for off := 0; off < n; {
				start := rng.IntN(len(text) - 4096)
				off += copy(b[off:], text[start:start+min(4096, n-off)])
			}
		} else {
			chacha.Read(b)
		}
		return b
	}
	var total int64
	write := func(i, size int) {
		p := filepath.Join(dir, "tree", fmt.Sprintf("d%03d", i%100), fmt.Sprintf("f%05d", i))
		if i < 100 { // the first file of each folder
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				tb.Fatal(err)
			}
		}
		if err := os.WriteFile(p, content(size, i), 0o644); err != nil {
			tb.Fatal(err)
		}
		total += int64(size)
	}
	i := 0
	for range spec.small {
		write(i, 1+rng.IntN(spec.smallMax))
		i++
	}
	for range spec.medium {
		write(i, spec.smallMax+rng.IntN(spec.mediumMax-spec.smallMax))
		i++
	}
	for range spec.large {
		write(i, spec.largeMin+rng.IntN(spec.largeMax-spec.largeMin))
		i++
	}
	iso := filepath.Join(dir, "tree.isolate")
	if err := os.WriteFile(iso, []byte(`{'variables': {'command': ['tree/d000/f00000'], 'files': ['tree/']}}`), 0o644); err != nil {
		tb.Fatal(err)
	}
	return iso, total
}

// benchCAS is a CAS server on httptest whose blob store can be replaced.
type benchCAS struct {
	srv     *httptest.Server
	handler atomic.Pointer[http.Handler]
	client  CAS
	wire    atomic.Int64 // bytes of upload bodies, as sent
}

func newBenchCAS(tb testing.TB) *benchCAS {
	bc := &benchCAS{}
	bc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			cr := &isolatetest.CountingReader{R: r.Body}
			r.Body = io.NopCloser(cr)
			defer func() { bc.wire.Add(cr.N) }()
		}
		(*bc.handler.Load()).ServeHTTP(w, r)
	}))
	tb.Cleanup(bc.srv.Close)
	bc.client = cas.NewClient(bc.srv.URL, nil)
	return bc
}

// useStore serves an empty store kept in dir.
func (bc *benchCAS) useStore(tb testing.TB, dir string) {
	tb.Helper()
	for _, d := range []string{"blobs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			tb.Fatal(err)
		}
	}
	st, err := local.New(filepath.Join(dir, "blobs"))
	if err != nil {
		tb.Fatal(err)
	}
	r := chi.NewRouter()
	r.Mount(protocol.PathCAS, cas.NewHandler(st, cas.Options{TempDir: filepath.Join(dir, "tmp")}))
	h := http.Handler(r)
	bc.handler.Store(&h)
}

// BenchmarkArchive archives a tree of 10,000 files (about 200 MB) to a CAS
// server on httptest over a local blob store: cold into an empty store each
// time, unchanged into a store that holds it already (nothing to upload).
func BenchmarkArchive(b *testing.B) {
	dir := b.TempDir()
	iso, size := genBenchTree(b, dir, fullTree)
	ctx := context.Background()

	b.Run("cold", func(b *testing.B) {
		bc := newBenchCAS(b)
		stores := b.TempDir()
		b.SetBytes(size)
		var uploaded int64
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			storeDir := filepath.Join(stores, fmt.Sprint(i))
			bc.useStore(b, storeDir)
			b.StartTimer()
			_, st, err := Archive(ctx, bc.client, Options{IsolatePath: iso})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			if st.Files != fullTree.small+fullTree.medium+fullTree.large {
				b.Fatalf("archived %d files", st.Files)
			}
			uploaded += st.UploadedBytes
			if err := os.RemoveAll(storeDir); err != nil { // 200 MB a time
				b.Fatal(err)
			}
			b.StartTimer()
		}
		b.ReportMetric(float64(uploaded)/float64(b.N), "uploaded_bytes/op")
		b.ReportMetric(float64(bc.wire.Load())/float64(b.N), "wire_bytes/op")
	})

	b.Run("unchanged", func(b *testing.B) {
		bc := newBenchCAS(b)
		bc.useStore(b, b.TempDir())
		if _, _, err := Archive(ctx, bc.client, Options{IsolatePath: iso}); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(size)
		var uploaded int64
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			_, st, err := Archive(ctx, bc.client, Options{IsolatePath: iso})
			if err != nil {
				b.Fatal(err)
			}
			if st.UploadedBytes != 0 || st.Uploaded != 0 {
				b.Fatalf("an unchanged tree uploaded %d items, %d bytes", st.Uploaded, st.UploadedBytes)
			}
			uploaded += st.UploadedBytes
		}
		b.ReportMetric(float64(uploaded)/float64(b.N), "uploaded_bytes/op")
	})
}

// The benchmarks' machinery, on a small tree: a cold archive sends every
// distinct byte, and archiving again sends none.
func TestArchiveGeneratedTree(t *testing.T) {
	spec := benchTreeSpec{small: 150, medium: 40, large: 2, smallMax: 4 << 10, mediumMax: 64 << 10, largeMin: 200 << 10, largeMax: 400 << 10}
	iso, size := genBenchTree(t, t.TempDir(), spec)
	bc := newBenchCAS(t)
	bc.useStore(t, t.TempDir())
	ctx := context.Background()
	digest, st, err := Archive(ctx, bc.client, Options{IsolatePath: iso})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 192 || st.Bytes != size || st.Uploaded != 193 || st.UploadedBytes <= size {
		t.Fatalf("cold: %+v, tree of %d bytes", st, size)
	}
	again, st, err := Archive(ctx, bc.client, Options{IsolatePath: iso})
	if err != nil || again != digest || st.Uploaded != 0 || st.UploadedBytes != 0 || st.Hits != 193 {
		t.Fatalf("unchanged: %s %+v %v", again, st, err)
	}
	// The same PRNG makes the same tree.
	iso2, size2 := genBenchTree(t, t.TempDir(), spec)
	d2, _, err := Archive(ctx, bc.client, Options{IsolatePath: iso2})
	if err != nil || d2 != digest || size2 != size {
		t.Fatalf("a second generated tree differs: %s vs %s, %d vs %d bytes, %v", d2, digest, size2, size, err)
	}
}
