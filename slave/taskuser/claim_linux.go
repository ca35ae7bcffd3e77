package taskuser

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// take claims u if no other slave of the host holds it.
func (c *Claim) take(dir string, u User) (bool, error) {
	f, err := os.OpenFile(filepath.Join(dir, strconv.FormatUint(uint64(u.UID), 10)+".lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return false, fmt.Errorf("claim task user %s: %w", u, err)
	}
	switch err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); {
	case errors.Is(err, unix.EWOULDBLOCK):
		f.Close()
		return false, nil
	case err != nil:
		f.Close()
		return false, fmt.Errorf("claim task user %s: %w", u, err)
	}
	c.Users = append(c.Users, u)
	c.locks = append(c.locks, f)
	return true, nil
}

// lockDir makes the folder of claims, and checks that only root may change
// it: a task user that could would claim or free users at will.
func lockDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("folder of task user claims: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("folder of task user claims: %w", err)
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || st == nil || int(st.Uid) != os.Geteuid() || fi.Mode().Perm()&0o022 != 0 {
		return fmt.Errorf("folder of task user claims %s must be a folder of uid %d that nobody else may write (it is %v)",
			dir, os.Geteuid(), fi.Mode())
	}
	return nil
}

// ensure returns the default user name, creating it if it is missing.
// Slaves of one host that start at once create users one at a time.
func (o Options) ensure(name string) (User, error) {
	if acct, err := user.Lookup(name); err == nil {
		return o.checked(name, acct)
	}
	f, err := os.OpenFile(filepath.Join(o.LockDir, "create.lock"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return User{}, fmt.Errorf("create task user %s: %w", name, err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		return User{}, fmt.Errorf("create task user %s: %w", name, err)
	}
	if acct, err := user.Lookup(name); err == nil {
		return o.checked(name, acct) // made by another slave meanwhile
	}
	cerr := o.Create(name)
	acct, err := user.Lookup(name)
	if err != nil {
		if cerr == nil {
			cerr = err
		}
		return User{}, fmt.Errorf("create task user %s: %w; create the users yourself, or list them in [slave] task_users", name, cerr)
	}
	return o.checked(name, acct)
}
