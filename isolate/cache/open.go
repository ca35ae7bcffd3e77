package cache

import (
	"container/list"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Open opens the cache folder dir, creating it if needed, for a slave
// process: all its slots share the *Cache it returns. Under the folder's
// flock it removes what crashed processes left (their temporary files) and
// repairs the index from the files: an entry file the index lacks is
// verified against its digest and adopted, or removed if corrupt; one whose
// size or mode no longer matches (truncated, written through a link) is
// removed; a record without its file is dropped. If a Cache that ended
// without Close ran before the host last booted, every entry is verified
// first, which reads the whole cache. Then it evicts down to lim. Close it
// when the process is done with it.
func Open(dir string, lim Limits) (*Cache, error) {
	return openWith(dir, lim, readBootID)
}

// openWith is Open with the boot id read by bootID.
func openWith(dir string, lim Limits, bootID func() (string, error)) (*Cache, error) {
	if err := checkPlatform(); err != nil {
		return nil, fmt.Errorf("open cache %s: %w", dir, err)
	}
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = 20 << 30
	}
	if lim.MaxItems <= 0 {
		lim.MaxItems = 100_000
	}
	// The folder is its owner's alone: tasks reach an entry only through
	// the link or the copy they are given.
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o700); err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	c := &Cache{
		dir:     dir,
		uid:     os.Geteuid(),
		lim:     lim,
		lock:    lock,
		link:    os.Link,
		now:     time.Now,
		entries: map[key]*entry{},
		perms:   map[string][]fs.FileMode{},
		lru:     list.New(),
		added:   map[key]bool{},
		removed: map[key]bool{},
	}
	// Unknown, it matches no recorded boot: an unclean end is then always
	// taken for a host crash.
	boot, _ := bootID()
	if err := c.open(boot); err != nil {
		if c.tmpLock != nil {
			os.RemoveAll(c.tmpDir)
			os.Remove(c.tmpLock.Name())
			c.tmpLock.Close()
		}
		lock.Close()
		return nil, fmt.Errorf("open cache %s: %w", dir, err)
	}
	return c, nil
}

func (c *Cache) open(boot string) error {
	if err := flock(c.lock); err != nil {
		return fmt.Errorf("lock %s: %w", c.lock.Name(), err)
	}
	defer funlock(c.lock)
	dead, err := c.cleanTemps(boot)
	if err != nil {
		return err
	}
	if err := c.claimTemp(boot); err != nil {
		return err
	}
	disk, err := readIndex(c.dir)
	if err != nil {
		return err
	}
	c.verifiedAll = dead.otherBoot
	if err := c.scan(disk, dead.otherBoot); err != nil {
		return err
	}
	if len(dead.marks) > 0 {
		// What the dead writers wrote (in this boot: still in the page
		// cache) and what the verify removed must be on the disk before
		// their marks go: nothing else says to verify after a host crash.
		if err := c.syncFS(); err != nil {
			return err
		}
		if err := c.removeMarks(dead.marks); err != nil {
			return err
		}
	}
	c.reorder()
	c.evict(nil)
	c.lastSync = c.now()
	if err := c.writeIndex(); err != nil {
		return err
	}
	clear(c.added)
	clear(c.removed)
	return nil
}

func (c *Cache) tmpRoot() string { return filepath.Join(c.dir, "tmp") }

// cleanTemps removes the temporary files of Caches whose process is gone:
// each open Cache holds a flock on tmp/<id>.lock while it uses tmp/<id>/.
// Index files half written are removed too. The folder's flock is held, so
// no Cache is between creating its lock file and locking it. The lock file
// of a Cache that ended without Close is its mark, which it returns, not
// removed: it goes once what that Cache wrote is known durable.
func (c *Cache) cleanTemps(boot string) (dead deadWriters, err error) {
	tmpRoot := c.tmpRoot()
	names, err := readNames(tmpRoot)
	if err != nil {
		return dead, err
	}
	for _, name := range names {
		p := filepath.Join(tmpRoot, name)
		if !strings.HasSuffix(name, ".lock") {
			if _, err := os.Lstat(p + ".lock"); errors.Is(err, fs.ErrNotExist) {
				if err := os.RemoveAll(p); err != nil {
					return dead, err
				}
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return dead, err
		}
		locked, err := tryFlock(f)
		if locked { // else a live Cache's
			err = os.RemoveAll(strings.TrimSuffix(p, ".lock"))
			var empty, sameBoot bool
			if err == nil {
				empty, sameBoot, err = readMark(f, boot)
			}
			switch {
			case err != nil:
			case empty:
				err = os.Remove(p)
			default:
				dead.marks = append(dead.marks, p)
				dead.otherBoot = dead.otherBoot || !sameBoot
			}
		}
		f.Close()
		if err != nil {
			return dead, fmt.Errorf("remove temporary files: %w", err)
		}
	}
	names, err = readNames(c.dir)
	if err != nil {
		return dead, err
	}
	for _, name := range names {
		if strings.HasPrefix(name, indexName+"-") && strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(filepath.Join(c.dir, name)); err != nil {
				return dead, err
			}
		}
	}
	return dead, nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// claimTemp makes this Cache's folder of temporary files, and its mark.
func (c *Cache) claimTemp(boot string) error {
	lf, err := os.CreateTemp(c.tmpRoot(), "*.lock")
	if err != nil {
		return err
	}
	if locked, err := tryFlock(lf); !locked {
		lf.Close()
		os.Remove(lf.Name())
		if err == nil {
			err = errors.New("held by another process")
		}
		return fmt.Errorf("lock %s: %w", lf.Name(), err)
	}
	c.tmpLock = lf
	c.tmpDir = strings.TrimSuffix(lf.Name(), ".lock")
	if err := os.Mkdir(c.tmpDir, 0o700); err != nil {
		return err
	}
	return c.writeMark(boot)
}

// scan builds the entries from the files, trusting the index's record of a
// file only when its mode, size and times still match, and not at all when
// verifyAll is set: then every file is hashed.
func (c *Cache) scan(disk map[key]record, verifyAll bool) error {
	for i := range 256 {
		sub := fmt.Sprintf("%02x", i)
		p := filepath.Join(c.dir, sub)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return err
		}
		names, err := readNames(p)
		if err != nil {
			return err
		}
		for _, name := range names {
			k, ok := parseName(name)
			if !ok || k.digest[:2] != sub {
				continue // not an entry: leave it alone
			}
			fp := filepath.Join(p, name)
			fi, err := os.Lstat(fp)
			if err != nil {
				return err
			}
			r, recorded := disk[k]
			switch {
			case !fi.Mode().IsRegular() || fi.Mode().Perm() != k.perm:
				// Its mode was changed through a link: so may its bytes.
				err = os.Remove(fp)
			case recorded && r.ino.size != fi.Size():
				err = os.Remove(fp) // truncated, or written
			case recorded && !verifyAll && r.ino == inodeOf(fi):
				c.insert(k, r.ino, r.used)
			default:
				used := fi.ModTime().UnixNano()
				if recorded {
					used = r.used
				}
				var good bool
				c.hashedAtOpen++
				if good, err = verifyFile(fp, k); good {
					// Unless it changed while it was hashed.
					if after, serr := os.Lstat(fp); serr == nil && inodeOf(after) == inodeOf(fi) {
						c.insert(k, inodeOf(fi), used)
					} else {
						err = os.Remove(fp)
					}
				} else if err == nil {
					err = os.Remove(fp)
				}
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// verifyFile tells whether the file of entry k has k's mode and bytes that
// hash to k's digest.
func verifyFile(path string, k key) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	if fi.Mode().Perm() != k.perm {
		return false, nil
	}
	h := hashFor(k.digest)
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return hex.EncodeToString(h.Sum(nil)) == k.digest, nil
}

// Verify hashes every entry and removes those whose bytes or mode no longer
// match (a disk error; a task running as root that wrote through its
// hardlink). It reads the whole cache: run it when a slave starts or is
// idle, not on the way of a task. It returns how many entries it removed.
func (c *Cache) Verify(ctx context.Context) (removed int, err error) {
	c.mu.Lock()
	keys := make([]key, 0, len(c.entries))
	for k := range c.entries {
		keys = append(keys, k)
	}
	c.mu.Unlock()
	for _, k := range keys {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		good, err := verifyFile(c.path(k), k)
		if errors.Is(err, fs.ErrNotExist) {
			continue // evicted meanwhile
		}
		if err != nil {
			return removed, fmt.Errorf("verify cache %s: %w", c.dir, err)
		}
		if !good {
			c.remove(k)
			removed++
		}
	}
	return removed, nil
}
