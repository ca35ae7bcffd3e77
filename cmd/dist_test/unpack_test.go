package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fetch -a refuses to unpack an archive bigger unpacked than --max-unpack:
// a task's 64 MiB of zeros zip to a few hundred kilobytes.
func TestFetchRefusesZipBomb(t *testing.T) {
	c := newCluster(t, 1)
	c.writeInputs(map[string]string{"bomb": "mkdir -p out && head -c 67108864 /dev/zero > out/zeros && echo small > out/small.txt; exit 1\n"})
	hash := c.archive("bomb", "ARG=")
	path := c.writeJob("bomb.json", []jobTask{{IsolateHash: hash, Description: "bomb", Globs: []string{"out/*"}}})
	if code, _, stderr := c.run("submit", path); code != 88 {
		t.Fatalf("submit: %d %s", code, stderr)
	}
	job := lastJob(t, c)
	for _, tc := range []struct {
		limit    string
		unpacked bool
	}{{"10MiB", false}, {"2GiB", true}} {
		dir := t.TempDir()
		code, _, stderr := c.run("fetch", "-a", "--max-unpack", tc.limit, "-d", dir, job)
		if code != 0 {
			t.Fatalf("fetch --max-unpack %s: %d %s", tc.limit, code, stderr)
		}
		zips, _ := filepath.Glob(filepath.Join(dir, "*.zip"))
		if len(zips) != 1 {
			t.Fatalf("fetch --max-unpack %s fetched %v", tc.limit, zips)
		}
		info, _ := os.Stat(zips[0])
		_, err := os.Stat(filepath.Join(strings.TrimSuffix(zips[0], ".zip"), "out", "zeros"))
		if tc.unpacked != (err == nil) {
			t.Errorf("--max-unpack %s: unpacked %v, want %v\n%s", tc.limit, err == nil, tc.unpacked, stderr)
		}
		if !tc.unpacked && !strings.Contains(stderr, "unpacks to more than --max-unpack") {
			t.Errorf("--max-unpack %s: no clear message:\n%s", tc.limit, stderr)
		}
		t.Logf("a %d-byte zip, --max-unpack %s: %s", info.Size(), tc.limit, strings.TrimSpace(stderr[strings.LastIndex(strings.TrimSpace(stderr), "\n")+1:]))
	}
	if code, _, _ := c.run("fetch", "-a", "--max-unpack", "lots", job); code == 0 {
		t.Error("a --max-unpack that is not a size was accepted")
	}
}
