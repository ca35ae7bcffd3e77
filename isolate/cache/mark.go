package cache

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// unknownBoot is recorded by a writer that cannot read the boot id: it
// matches no boot, so its unclean end always costs a full verify.
const unknownBoot = "unknown"

// deadWriters are the marks of Caches that ended without Close, found
// (and left in place) by cleanTemps.
type deadWriters struct {
	marks []string // their tmp/<id>.lock files
	// otherBoot is set when one of them ran before the host last booted:
	// what it wrote may not have reached the disk.
	otherBoot bool
}

// readMark classifies the mark of a dead writer, read from f. An empty mark
// was never written (the writer died within Open, before it stored
// anything) or was left by a version of dist_test that fsync'd every
// entry: either way its entries are whole. boot is "" when the current
// boot id is unknown.
func readMark(f *os.File, boot string) (empty, sameBoot bool, err error) {
	b, err := io.ReadAll(io.LimitReader(f, 256))
	if err != nil {
		return false, false, err
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return true, false, nil
	}
	return false, boot != "" && string(b) == boot, nil
}

// writeMark records in this Cache's lock file, durably, the boot it runs
// in. It is done before Open returns, so before any entry is written.
func (c *Cache) writeMark(boot string) error {
	if boot == "" {
		boot = unknownBoot
	}
	if _, err := c.tmpLock.WriteString(boot + "\n"); err != nil {
		return fmt.Errorf("write %s: %w", c.tmpLock.Name(), err)
	}
	if err := c.tmpLock.Sync(); err != nil {
		return fmt.Errorf("write %s: %w", c.tmpLock.Name(), err)
	}
	// The mark's name, and the tmp folder's on a new cache.
	if err := syncDir(c.tmpRoot()); err != nil {
		return err
	}
	return syncDir(c.dir)
}

// removeMarks removes marks whose writers' entries are now known durable,
// and makes the removal durable.
func (c *Cache) removeMarks(marks []string) error {
	if len(marks) == 0 {
		return nil
	}
	for _, m := range marks {
		if err := os.Remove(m); err != nil {
			return fmt.Errorf("remove %s: %w", m, err)
		}
	}
	return syncDir(c.tmpRoot())
}

// syncDir makes the names created or removed in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
