package main

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// docs/performance.md tells how to reproduce each figure by naming its
// benchmark: every name it gives must be a benchmark of the tree, and
// every end-to-end benchmark must be in it.
func TestPerformanceDocNamesBenchmarks(t *testing.T) {
	root := filepath.Join("..", "..")
	doc, err := os.ReadFile(filepath.Join(root, "docs", "performance.md"))
	if err != nil {
		t.Fatal(err)
	}
	declared := map[string]bool{}
	decl := regexp.MustCompile(`(?m)^func (Benchmark\w+)\(b \*testing\.B\)`)
	for _, pattern := range []string{"cmd/dist_test/*_test.go", "server/*_test.go", "internal/*/*_test.go", "web/*_test.go"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		for _, f := range files {
			src, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range decl.FindAllSubmatch(src, -1) {
				declared[string(m[1])] = filepath.Base(f) == "bench_test.go" || filepath.Base(f) == "bench_profile_test.go"
			}
		}
	}
	named := map[string]bool{}
	for _, m := range regexp.MustCompile(`Benchmark[A-Z]\w*`).FindAll(doc, -1) {
		named[string(m)] = true
		if _, ok := declared[string(m)]; !ok {
			t.Errorf("docs/performance.md names %s, which no benchmark of cmd/dist_test, server, internal/* or web has", m)
		}
	}
	if len(named) < 5 {
		t.Errorf("docs/performance.md names %d benchmarks: has it lost them, or this test its way of finding them?", len(named))
	}
	for name, endToEnd := range declared {
		if endToEnd && !named[name] {
			t.Errorf("%s is not in docs/performance.md", name)
		}
	}
}
