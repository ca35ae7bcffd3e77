package cache

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// The cache leans on Linux: flock to share a folder between processes,
// syncfs to make a run's entries durable in one flush, the boot id to tell
// a host crash from a process crash, and an inode's change time and owner
// to notice an entry changed behind its back. The slave runs on Linux only
// (sys_other.go refuses the rest).

// flock takes the exclusive lock of f, waiting for it.
func flock(f *os.File) error { return unix.Flock(int(f.Fd()), unix.LOCK_EX) }

// funlock releases it.
func funlock(f *os.File) { unix.Flock(int(f.Fd()), unix.LOCK_UN) }

// tryFlock takes the exclusive lock of f if nobody holds it; locked is
// false, with no error, when another process does.
func tryFlock(f *os.File) (locked bool, err error) {
	err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
	if errors.Is(err, unix.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}

// syncFS writes back everything the page cache holds for the cache's
// filesystem: one flush for all the entries written since Open, rather
// than one fsync per entry.
func (c *Cache) syncFS() error {
	if err := unix.Syncfs(int(c.lock.Fd())); err != nil {
		return fmt.Errorf("sync the filesystem of %s: %w", c.dir, err)
	}
	return nil
}

// bootIDPath names the boot the kernel is running: it changes on every
// boot, so a mark recorded under another one was left by a writer whose
// host went down after it wrote.
const bootIDPath = "/proc/sys/kernel/random/boot_id"

// readBootID returns the current boot id.
func readBootID() (string, error) {
	b, err := os.ReadFile(bootIDPath)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	if id == "" {
		return "", fmt.Errorf("%s is empty", bootIDPath)
	}
	return id, nil
}

// changeTime is the inode's change time in unix nanoseconds, which nobody
// but the kernel sets.
func changeTime(fi fs.FileInfo) (int64, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Ctim.Nano(), true
}

// ownerOf is the uid owning the file.
func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// checkPlatform: the cache works here.
func checkPlatform() error { return nil }
