package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// batcharchive as Kudu's build calls it: Go-style flags, "--", one
// gen.json per test. Shared files are uploaded once; the dump lists every
// test; the manifests it names run as tasks.
func TestBatchArchiveCommand(t *testing.T) {
	c := newCluster(t, 2)
	c.writeInputs(map[string]string{"hello": `echo "hello from $1"` + "\n"})
	dir := filepath.Join(c.dir, "inputs")
	var gens []string
	for i := range 3 {
		gen := filepath.Join(c.dir, fmt.Sprintf("t%d.isolated.gen.json", i))
		doc := fmt.Sprintf(`{"version": 1, "dir": %q, "name": "t%d", "args": ["-i", "task.isolate", "-s", "t%d.isolated",
			"--extra-variable", "SCRIPT=hello", "--extra-variable", "ARG=t%d"]}`, dir, i, i, i)
		if err := os.WriteFile(gen, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		gens = append(gens, gen)
	}
	dump := filepath.Join(c.dir, "dump.json")
	args := append([]string{"isolate", "batcharchive", "-isolate-server=" + c.url, "-dump-json=" + dump, "--"}, gens...)
	code, stdout, stderr := c.run(args...)
	if code != 0 {
		t.Fatalf("batcharchive exited %d: %s", code, stderr)
	}
	var hashes map[string]string
	b, err := os.ReadFile(dump)
	if err != nil || json.Unmarshal(b, &hashes) != nil || len(hashes) != 3 {
		t.Fatalf("dump-json = %s, %v", b, err)
	}
	for name, h := range hashes {
		if !strings.Contains(stdout, h+"\t"+name) {
			t.Errorf("stdout lacks %q:\n%s", h+"\t"+name, stdout)
		}
		if _, err := os.Stat(filepath.Join(dir, name+".isolated")); err != nil {
			t.Errorf("no %s.isolated written: %v", name, err)
		}
	}
	// One script file shared by all three, plus three manifests.
	if !strings.Contains(stderr, "uploaded 4 items") {
		t.Errorf("summary: %s", stderr)
	}
	code, _, stderr = c.run(args...)
	if code != 0 || !strings.Contains(stderr, "uploaded 0 items") {
		t.Errorf("second batcharchive: exit %d, %s; want nothing uploaded", code, stderr)
	}
	var tasks []jobTask
	for name, h := range hashes {
		tasks = append(tasks, jobTask{IsolateHash: h, Description: name})
	}
	if code, stdout, stderr := c.run("submit", c.writeJob("batch.json", tasks)); code != 0 {
		t.Errorf("the archived tasks did not pass: %d\n%s\n%s", code, stdout, stderr)
	}
}
