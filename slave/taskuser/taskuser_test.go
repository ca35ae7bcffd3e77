package taskuser

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("claiming task users needs root")
	}
}

func TestParse(t *testing.T) {
	needRoot(t)
	cases := []struct {
		spec     string
		uid, gid uint32
		name     string
		bad      string
	}{
		{spec: "nobody", uid: 65534, gid: 65534, name: "nobody"},
		{spec: "65534", uid: 65534, gid: 65534, name: "nobody"},
		{spec: " 3000000 ", uid: 3000000, gid: 3000000, name: "3000000"},
		{spec: "3000000:3000001", uid: 3000000, gid: 3000001, name: "3000000"},
		{spec: "root", bad: "unprivileged"},
		{spec: "0", bad: "unprivileged"},
		{spec: "3000000:0", bad: "unprivileged"},
		{spec: "3000000:x", bad: "gid"},
		{spec: "99999999999", bad: "not a uid"},
		{spec: "no-such-user-here", bad: "no user of this machine"},
	}
	for _, c := range cases {
		u, err := parse(c.spec)
		if c.bad != "" {
			if err == nil || !strings.Contains(err.Error(), c.bad) || !strings.Contains(err.Error(), "task_users") {
				t.Errorf("%q: %v, %v; want an error saying %q", c.spec, u, err, c.bad)
			}
			continue
		}
		if err != nil || u.UID != c.uid || u.GID != c.gid || u.Name != c.name {
			t.Errorf("%q: %+v, %v; want %s %d:%d", c.spec, u, err, c.name, c.uid, c.gid)
		}
	}
}

func testOptions(t *testing.T) Options {
	t.Helper()
	return Options{LockDir: filepath.Join(t.TempDir(), "claims")}
}

// Slaves of one host share a list of users: each claims free ones, and a
// slave that finds too few free refuses to start, naming the busy ones.
func TestClaimSharesAListBetweenSlaves(t *testing.T) {
	needRoot(t)
	o := testOptions(t)
	list := []string{"3000010", "3000011", "3000012"}
	a, err := o.Claim(list, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := uids(a); !slices.Equal(got, []uint32{3000010, 3000011}) {
		t.Errorf("first slave got %v", got)
	}
	if _, err := o.Claim(list, 2); err == nil || !strings.Contains(err.Error(), "3000010, 3000011") {
		t.Errorf("second slave with 2 slots: %v; want an error naming the busy users", err)
	}
	b, err := o.Claim(list, 1)
	if err != nil || !slices.Equal(uids(b), []uint32{3000012}) {
		t.Fatalf("second slave with 1 slot: %v, %v", b, err)
	}
	a.Release()
	c, err := o.Claim(list, 2)
	if err != nil || !slices.Equal(uids(c), []uint32{3000010, 3000011}) {
		t.Errorf("after the first slave released: %v, %v", c, err)
	}
	c.Release()
	b.Release()

	for _, bad := range [][]string{{"3000010"}, {"3000010", "3000010"}, {"3000010", "root"}} {
		if _, err := o.Claim(bad, 2); err == nil {
			t.Errorf("Claim(%q, 2) succeeded", bad)
		}
	}
}

// The folder of claims must be root's alone.
func TestClaimRefusesAnOpenLockFolder(t *testing.T) {
	needRoot(t)
	o := testOptions(t)
	if err := os.MkdirAll(o.LockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(o.LockDir, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := o.Claim([]string{"3000010"}, 1); err == nil || !strings.Contains(err.Error(), "nobody else may write") {
		t.Errorf("Claim with a world-writable lock folder: %v", err)
	}
}

// Without a list, slaves create and claim prefix0, prefix1, ...: two
// slaves starting at once each get users of their own, each created once.
func TestClaimCreatesDefaultUsers(t *testing.T) {
	needRoot(t)
	if _, err := exec.LookPath("useradd"); err != nil {
		t.Skip("no useradd")
	}
	o := testOptions(t)
	o.Prefix = fmt.Sprintf("dtt%d-", os.Getpid())
	var mu sync.Mutex
	created := map[string]int{}
	o.Create = func(name string) error {
		mu.Lock()
		created[name]++
		mu.Unlock()
		return useradd(name)
	}
	t.Cleanup(func() {
		for name := range created {
			exec.Command("userdel", name).Run()
		}
	})
	claims := make([]*Claim, 2)
	var wg sync.WaitGroup
	for i := range claims {
		wg.Go(func() {
			c, err := o.Claim(nil, 2)
			if err != nil {
				t.Error(err)
				return
			}
			claims[i] = c
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	seen := map[uint32]bool{}
	for _, c := range claims {
		for _, u := range c.Users {
			if seen[u.UID] || !strings.HasPrefix(u.Name, o.Prefix) {
				t.Errorf("user %s claimed twice, or not a default one", u)
			}
			seen[u.UID] = true
			acct, err := user.Lookup(u.Name)
			if err != nil || acct.HomeDir != "/nonexistent" {
				t.Errorf("account %s: %+v, %v", u.Name, acct, err)
			}
			grp, err := user.LookupGroupId(fmt.Sprint(u.GID))
			if err != nil || grp.Name != u.Name {
				t.Errorf("group of %s: %+v, %v; want a group of its own", u.Name, grp, err)
			}
		}
		c.Release()
	}
	for name, n := range created {
		if n != 1 {
			t.Errorf("%s created %d times", name, n)
		}
	}
	if len(created) != 4 {
		t.Errorf("created %v; want 4 users", created)
	}
}

func uids(c *Claim) []uint32 {
	var out []uint32
	for _, u := range c.Users {
		out = append(out, u.UID)
	}
	return out
}
