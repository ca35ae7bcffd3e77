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

	"golang.org/x/sys/unix"
)

// Open opens the cache folder dir, creating it if needed, for a slave
// process: all its slots share the *Cache it returns. Under the folder's
// flock it removes what crashed processes left (their temporary files) and
// repairs the index from the files: an entry file the index lacks is
// verified against its digest and adopted, or removed if corrupt; one whose
// size or mode no longer matches (truncated, written through a link) is
// removed; a record without its file is dropped. Then it evicts down to
// lim. Close it when the process is done with it.
func Open(dir string, lim Limits) (*Cache, error) {
	if lim.MaxBytes <= 0 {
		lim.MaxBytes = 20 << 30
	}
	if lim.MaxItems <= 0 {
		lim.MaxItems = 100_000
	}
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache: %w", err)
	}
	c := &Cache{
		dir:     dir,
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
	if err := c.open(); err != nil {
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

func (c *Cache) open() error {
	if err := unix.Flock(int(c.lock.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("lock %s: %w", c.lock.Name(), err)
	}
	defer unix.Flock(int(c.lock.Fd()), unix.LOCK_UN)
	if err := c.cleanTemps(); err != nil {
		return err
	}
	if err := c.claimTemp(); err != nil {
		return err
	}
	disk, err := readIndex(c.dir)
	if err != nil {
		return err
	}
	if err := c.scan(disk); err != nil {
		return err
	}
	c.reorder()
	c.evict(nil)
	c.lastSync = c.now()
	return c.writeIndex()
}

// cleanTemps removes the temporary files of Caches whose process is gone:
// each open Cache holds a flock on tmp/<id>.lock while it uses tmp/<id>/.
// Index files half written are removed too. The folder's flock is held, so
// no Cache is between creating its lock file and locking it.
func (c *Cache) cleanTemps() error {
	tmpRoot := filepath.Join(c.dir, "tmp")
	names, err := readNames(tmpRoot)
	if err != nil {
		return err
	}
	for _, name := range names {
		p := filepath.Join(tmpRoot, name)
		if !strings.HasSuffix(name, ".lock") {
			if _, err := os.Lstat(p + ".lock"); errors.Is(err, fs.ErrNotExist) {
				if err := os.RemoveAll(p); err != nil {
					return err
				}
			}
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			err = os.RemoveAll(strings.TrimSuffix(p, ".lock"))
			if err == nil {
				err = os.Remove(p)
			}
		} else if errors.Is(err, unix.EWOULDBLOCK) {
			err = nil // a live Cache's
		}
		f.Close()
		if err != nil {
			return fmt.Errorf("remove temporary files: %w", err)
		}
	}
	names, err = readNames(c.dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if strings.HasPrefix(name, indexName+"-") && strings.HasSuffix(name, ".tmp") {
			if err := os.Remove(filepath.Join(c.dir, name)); err != nil {
				return err
			}
		}
	}
	return nil
}

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return f.Readdirnames(-1)
}

// claimTemp makes this Cache's folder of temporary files.
func (c *Cache) claimTemp() error {
	lf, err := os.CreateTemp(filepath.Join(c.dir, "tmp"), "*.lock")
	if err != nil {
		return err
	}
	if err := unix.Flock(int(lf.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		lf.Close()
		os.Remove(lf.Name())
		return fmt.Errorf("lock %s: %w", lf.Name(), err)
	}
	c.tmpLock = lf
	c.tmpDir = strings.TrimSuffix(lf.Name(), ".lock")
	return os.Mkdir(c.tmpDir, 0o700)
}

// scan builds the entries from the files, trusting the index's record of a
// file only when its size and mode still match.
func (c *Cache) scan(disk map[key]record) error {
	for i := range 256 {
		sub := fmt.Sprintf("%02x", i)
		p := filepath.Join(c.dir, sub)
		if err := os.MkdirAll(p, 0o755); err != nil {
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
			case recorded && r.size == fi.Size():
				c.insert(k, r.size, r.used)
			case recorded:
				err = os.Remove(fp) // truncated, or written
			default:
				var good bool
				if good, err = verifyFile(fp, k); good {
					c.insert(k, fi.Size(), fi.ModTime().UnixNano())
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
