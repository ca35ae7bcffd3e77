package local_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/blobtest"
	"github.com/dist-test/dist_test/internal/blob/local"
)

func TestConformance(t *testing.T) {
	blobtest.Run(t, func(t *testing.T) blob.Store { return newStore(t, t.TempDir()) })
}

func newStore(t *testing.T, dir string) *local.Store {
	t.Helper()
	s, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestFailedPutLeavesNoTemporaryFile checks that a Put that fails cleans up
// after itself, so failures do not fill the disk.
func TestFailedPutLeavesNoTemporaryFile(t *testing.T) {
	dir := t.TempDir()
	s := newStore(t, dir)
	if err := s.Put(t.Context(), "k", strings.NewReader("short"), 100); err == nil {
		t.Fatal("Put with a wrong size succeeded")
	}
	left, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Fatalf("temporary files left behind: %v", left)
	}
}

// TestTmpIsAnOrdinaryKey checks that no key reaches the temporary files.
func TestTmpIsAnOrdinaryKey(t *testing.T) {
	s := newStore(t, t.TempDir())
	for _, k := range []string{".tmp", "tmp/x"} {
		if err := s.Put(t.Context(), k, strings.NewReader(k), int64(len(k))); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	rc, _, err := s.Get(t.Context(), "tmp/x")
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if b, _ := io.ReadAll(rc); string(b) != "tmp/x" {
		t.Fatalf("tmp/x holds %q", b)
	}
}

// TestKeyCannotEscapeRoot checks that a key climbing out of the store's
// folder writes nothing next to it.
func TestKeyCannotEscapeRoot(t *testing.T) {
	parent := t.TempDir()
	s := newStore(t, filepath.Join(parent, "store"))
	if err := s.Put(t.Context(), "../escaped", strings.NewReader("x"), 1); err == nil {
		t.Fatal(`Put("../escaped") succeeded`)
	}
	if _, err := os.Stat(filepath.Join(parent, "escaped")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("file outside the store: %v", err)
	}
}
