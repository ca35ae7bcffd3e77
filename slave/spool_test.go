package slave

import (
	"os"
	"path/filepath"
	"testing"
)

// A lease never reaches a path it does not name inside the spool: a
// forged one (a path, a parent, empty, oversized) is refused by save and
// ignored by done, and nothing outside the spool is made or removed.
func TestSpoolRefusesLeasesThatAreNotNames(t *testing.T) {
	root := t.TempDir()
	sp, err := openSpool(filepath.Join(root, "spool"))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "victim")
	if err := os.Mkdir(victim, 0o700); err != nil {
		t.Fatal(err)
	}
	long := make([]byte, 200)
	for i := range long {
		long[i] = 'a'
	}
	for _, lease := range []string{"", ".", "..", "../victim", "a/b", "/tmp", "x\x00y", "lease with space", string(long)} {
		if err := sp.save(report{Lease: lease}, nil); err == nil {
			t.Errorf("save with lease %q succeeded", lease)
		}
		sp.done(lease)
	}
	sp.done("../victim")
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("done with a forged lease removed a folder outside the spool: %v", err)
	}
	entries, err := os.ReadDir(filepath.Join(root, "spool"))
	if err != nil || len(entries) != 0 {
		t.Fatalf("the spool holds %v after refused saves (%v)", entries, err)
	}
	if got := sp.leases(); len(got) != 0 {
		t.Fatalf("leases after refused saves: %v", got)
	}
	// A lease of the master's form is saved and removed.
	if err := sp.save(report{Lease: "0123456789abcdef0123456789abcdef"}, nil); err != nil {
		t.Fatal(err)
	}
	sp.done("0123456789abcdef0123456789abcdef")
	if entries, _ := os.ReadDir(filepath.Join(root, "spool")); len(entries) != 0 {
		t.Fatalf("the spool holds %v after done", entries)
	}
}
