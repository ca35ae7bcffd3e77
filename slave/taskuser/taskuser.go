// Package taskuser finds the unprivileged users that a slave running as
// root gives its task slots: one user per slot, so that a task can touch
// neither the slave nor the tasks of other slots. The users are named in
// the configuration ([slave] task_users), or else the slave claims
// dist_test-slot-N, creating each with useradd when it is missing.
//
// A user serves one slot of one slave at a time: after each task the slave
// kills every process of the slot's user. Slaves of one host respect each
// other's claims through lock files (one per uid, flocked for the slave's
// lifetime) in a folder only root may write.
package taskuser

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/dist-test/dist_test/slave/process"
)

// DefaultLockDir holds the host's claims.
const DefaultLockDir = "/run/dist_test/task-users"

// DefaultPrefix names the users a slave creates: dist_test-slot-0, ...
const DefaultPrefix = "dist_test-slot-"

// maxDefault bounds the default users tried: enough for the slaves of one
// host, however many slots each has.
const maxDefault = 1024

// User is one task user.
type User struct {
	Name string // the account's name, or the uid when it has none
	process.User
}

func (u User) String() string {
	return fmt.Sprintf("%s (uid %d, gid %d)", u.Name, u.UID, u.GID)
}

// Claim is the users a slave holds, one per slot.
type Claim struct {
	Users []User
	locks []*os.File
}

// Release gives the users back to the host.
func (c *Claim) Release() {
	for _, f := range c.locks {
		f.Close()
	}
	c.locks = nil
}

// Options say where a claim is recorded and how default users are made.
type Options struct {
	LockDir string // DefaultLockDir when empty
	Prefix  string // DefaultPrefix when empty
	// Create makes a missing default user; useradd when nil.
	Create func(name string) error
}

// Claim claims slots users: the first free ones of specs (names, or
// uid[:gid], as [slave] task_users lists them), or, with no specs, the
// first free of the default users, creating those that are missing. It
// must run as root. The error says what to change.
func (o Options) Claim(specs []string, slots int) (*Claim, error) {
	if o.LockDir == "" {
		o.LockDir = DefaultLockDir
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Create == nil {
		o.Create = useradd
	}
	if err := lockDir(o.LockDir); err != nil {
		return nil, err
	}
	c := &Claim{}
	fail := func(err error) (*Claim, error) {
		c.Release()
		return nil, err
	}
	if len(specs) > 0 {
		if len(specs) < slots {
			return nil, fmt.Errorf("[slave] task_users lists %d users for %d slots: list one per slot", len(specs), slots)
		}
		seen := map[uint32]bool{}
		var busy []string
		for _, s := range specs {
			u, err := parse(s)
			if err != nil {
				return fail(err)
			}
			if seen[u.UID] {
				return fail(fmt.Errorf("[slave] task_users lists uid %d twice: each slot needs a user of its own", u.UID))
			}
			seen[u.UID] = true
			if len(c.Users) == slots {
				continue // checked, not needed
			}
			ok, err := c.take(o.LockDir, u)
			if err != nil {
				return fail(err)
			}
			if !ok {
				busy = append(busy, u.Name)
			}
		}
		if len(c.Users) < slots {
			return fail(fmt.Errorf("[slave] task_users: only %d of its users are free for %d slots; %s serve other slaves of this host: list more",
				len(c.Users), slots, strings.Join(busy, ", ")))
		}
		return c, nil
	}
	for n := 0; len(c.Users) < slots; n++ {
		if n == maxDefault {
			return fail(fmt.Errorf("no free task user among %s0 to %s%d: set [slave] task_users", o.Prefix, o.Prefix, maxDefault-1))
		}
		u, err := o.ensure(o.Prefix + strconv.Itoa(n))
		if err != nil {
			return fail(err)
		}
		if _, err := c.take(o.LockDir, u); err != nil {
			return fail(err)
		}
	}
	return c, nil
}

// parse reads one entry of [slave] task_users: a user name, or uid[:gid].
// A uid without a gid takes its account's group, or the gid equal to it.
func parse(spec string) (User, error) {
	spec = strings.TrimSpace(spec)
	bad := func(why string) (User, error) {
		return User{}, fmt.Errorf("[slave] task_users: %q %s", spec, why)
	}
	var u User
	if uidText, gidText, hasGID := strings.Cut(spec, ":"); isNumber(uidText) {
		uid, err := strconv.ParseUint(uidText, 10, 32)
		if err != nil {
			return bad("is not a uid")
		}
		u.UID, u.GID, u.Name = uint32(uid), uint32(uid), uidText
		if acct, err := user.LookupId(uidText); err == nil {
			u.Name = acct.Username
			if gid, err := strconv.ParseUint(acct.Gid, 10, 32); err == nil {
				u.GID = uint32(gid)
			}
		}
		if hasGID {
			gid, err := strconv.ParseUint(gidText, 10, 32)
			if err != nil || !isNumber(gidText) {
				return bad("has no number for a gid after its ':'")
			}
			u.GID = uint32(gid)
		}
	} else {
		acct, err := user.Lookup(spec)
		if err != nil {
			return bad("is no user of this machine: give a user name, or uid[:gid]")
		}
		if u, err = fromAccount(acct); err != nil {
			return bad(err.Error())
		}
	}
	switch {
	case u.UID == 0 || u.GID == 0:
		return bad("is root, or in root's group: a task user must be unprivileged")
	case int(u.UID) == os.Geteuid():
		return bad("is the slave's own user: a task user must be another")
	}
	return u, nil
}

func fromAccount(acct *user.User) (User, error) {
	uid, err1 := strconv.ParseUint(acct.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(acct.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return User{}, fmt.Errorf("has uid %q and gid %q, which are not numbers", acct.Uid, acct.Gid)
	}
	return User{Name: acct.Username, User: process.User{UID: uint32(uid), GID: uint32(gid)}}, nil
}

func isNumber(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

func (o Options) checked(name string, acct *user.User) (User, error) {
	u, err := fromAccount(acct)
	if err == nil && (u.UID == 0 || u.GID == 0 || int(u.UID) == os.Geteuid()) {
		err = errors.New("is root, in root's group, or the slave's own user")
	}
	if err != nil {
		return User{}, fmt.Errorf("task user %s %v: set [slave] task_users", name, err)
	}
	return u, nil
}

// useradd creates a system user with a group of its own, no home and no
// login shell.
func useradd(name string) error {
	shell := "/bin/false"
	for _, s := range []string{"/usr/sbin/nologin", "/sbin/nologin"} {
		if _, err := os.Stat(s); err == nil {
			shell = s
			break
		}
	}
	out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
		"--home-dir", "/nonexistent", "--shell", shell, "--comment", "dist_test task slot", name).CombinedOutput()
	if err != nil {
		return fmt.Errorf("useradd: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
