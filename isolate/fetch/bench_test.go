package fetch

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/dist-test/dist_test/isolate/archive"
	"github.com/dist-test/dist_test/isolate/cache"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
)

// benchTree writes a build tree under dir: 10,000 files, about 200 MB,
// mostly small files and some of several MB, the same bytes on every run.
// It returns the .isolate file listing it.
func benchTree(b *testing.B, dir string) string {
	b.Helper()
	rng := rand.New(rand.NewPCG(2024, 6))
	bytesOf := rand.NewChaCha8([32]byte{'d', 'i', 's', 't'})
	const files, big = 10_000, 40
	for i := range files {
		size := 1 + rng.IntN(16<<10) // 8 KiB on average
		if i%(files/big) == 0 {
			size = 1<<20 + rng.IntN(4<<20) // 3 MiB on average
		}
		data := make([]byte, size)
		bytesOf.Read(data)
		p := filepath.Join(dir, "tree", fmt.Sprintf("d%02d", i/100), fmt.Sprintf("f%04d", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if i%10 == 0 {
			mode = 0o755
		}
		if err := os.WriteFile(p, data, mode); err != nil {
			b.Fatal(err)
		}
	}
	iso := filepath.Join(dir, "bench.isolate")
	if err := os.WriteFile(iso, []byte(`{'variables': {'command': ['tree/d00/f0000'], 'files': ['tree/']}}`), 0o644); err != nil {
		b.Fatal(err)
	}
	return iso
}

// BenchmarkFetch fetches a 10,000-file tree into a fresh sandbox: cold
// with an empty cache, warm with a cache that holds the whole tree, as the
// next task of a job on the same slave finds it; "warm-copies" as a slave
// that does not run as root lays it out: hashed copies, no links.
func BenchmarkFetch(b *testing.B) {
	ctx := context.Background()
	sc := castest.New(b, cas.Options{})
	digest, ast, err := archive.Archive(ctx, sc.Client, archive.Options{IsolatePath: benchTree(b, b.TempDir())})
	if err != nil {
		b.Fatal(err)
	}
	fetchWith := func(b *testing.B, c *cache.Cache, o Options) Stats {
		b.Helper()
		dir, err := os.MkdirTemp(b.TempDir(), "sandbox")
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		tree, st, err := FetchWith(ctx, sc.Client, c, digest, dir, o)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		if tree.Files != ast.Files || tree.Bytes != ast.Bytes {
			b.Fatalf("fetched %d files, %d bytes; archived %d, %d", tree.Files, tree.Bytes, ast.Files, ast.Bytes)
		}
		if err := os.RemoveAll(dir); err != nil {
			b.Fatal(err)
		}
		tree.Release() // as the slave does once the sandbox is gone
		return st
	}
	fetch := func(b *testing.B, c *cache.Cache) Stats { return fetchWith(b, c, Options{}) }
	report := func(b *testing.B, st Stats) {
		b.SetBytes(ast.Bytes)
		b.ReportMetric(float64(st.HotItems), "hot-items/op")
		b.ReportMetric(float64(st.ColdItems), "cold-items/op")
	}

	b.Run("cold", func(b *testing.B) {
		b.StopTimer()
		var st Stats
		for range b.N {
			dir, err := os.MkdirTemp(b.TempDir(), "cache")
			if err != nil {
				b.Fatal(err)
			}
			c, err := cache.Open(dir, cache.Limits{})
			if err != nil {
				b.Fatal(err)
			}
			st = fetch(b, c)
			if err := c.Close(); err != nil {
				b.Fatal(err)
			}
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
		}
		report(b, st)
	})

	b.Run("warm", func(b *testing.B) {
		b.StopTimer()
		c, err := cache.Open(b.TempDir(), cache.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		fetch(b, c) // fills the cache: not part of the measure
		b.ResetTimer()
		var st Stats
		for range b.N {
			st = fetch(b, c)
		}
		if st.ColdItems != 0 {
			b.Fatalf("a warm fetch downloaded %d items", st.ColdItems)
		}
		report(b, st)
	})

	b.Run("warm-copies", func(b *testing.B) {
		b.StopTimer()
		c, err := cache.Open(b.TempDir(), cache.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		fetch(b, c)
		b.ResetTimer()
		var st Stats
		for range b.N {
			st = fetchWith(b, c, Options{Copy: true})
		}
		report(b, st)
	})
}
