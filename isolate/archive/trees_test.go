package archive

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/isolate"
)

// Trees given directly: their files, a file from outside the root under a
// tree path of its own, the command and its folder make the manifest;
// shared files go up once, and nothing again when nothing changed.
func TestTrees(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	for name, body := range map[string]string{"pkg/a.go": "a", "pkg/testdata/in.txt": "in", "other.txt": "no"} {
		p := filepath.Join(root, filepath.FromSlash(name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(body), 0o644)
	}
	bin := filepath.Join(outside, "pkg.test")
	os.WriteFile(bin, []byte("binary"), 0o755)
	tree := func(run string) Tree {
		return Tree{Name: run, Root: root, Paths: []string{"pkg/a.go", "pkg/testdata/"},
			Extra: map[string]string{"pkg/.dist_test/pkg.test": bin}, Command: []string{"./.dist_test/pkg.test", "-test.run=" + run}, RelativeCwd: "pkg"}
	}
	c := &memCAS{blobs: map[string][]byte{}}
	digests, st, err := Trees(context.Background(), c, []Tree{tree("A"), tree("B")}, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(digests) != 2 || digests[0] == digests[1] {
		t.Fatalf("digests %v", digests)
	}
	if st.Files != 3 || st.Uploaded != 5 {
		t.Errorf("stats %+v: want 3 files, and 3 blobs and 2 manifests uploaded", st)
	}
	m, err := isolate.ParseIsolated(c.blobs[digests[1]])
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for p := range m.Files {
		files = append(files, p)
	}
	slices.Sort(files)
	if want := []string{"pkg/.dist_test/pkg.test", "pkg/a.go", "pkg/testdata/in.txt"}; !slices.Equal(files, want) {
		t.Errorf("files %v, want %v", files, want)
	}
	if m.RelativeCwd != "pkg" || strings.Join(m.Command, " ") != "./.dist_test/pkg.test -test.run=B" {
		t.Errorf("command %q in %q", m.Command, m.RelativeCwd)
	}
	if m.Files["pkg/.dist_test/pkg.test"].Mode&0o111 == 0 {
		t.Errorf("the binary lost its exec bits: %o", m.Files["pkg/.dist_test/pkg.test"].Mode)
	}
	_, st, err = Trees(context.Background(), c, []Tree{tree("A"), tree("B")}, BatchOptions{})
	if err != nil || st.Uploaded != 0 {
		t.Errorf("again: %+v, %v; want nothing uploaded", st, err)
	}

	// A path out of the root fails its tree alone.
	bad := tree("C")
	bad.Paths = []string{"../escape"}
	digests, _, err = Trees(context.Background(), c, []Tree{tree("A"), bad}, BatchOptions{})
	if err == nil || !strings.Contains(err.Error(), "C: ../escape is outside") || digests[0] == "" {
		t.Errorf("digests %v, error %v", digests, err)
	}
}
