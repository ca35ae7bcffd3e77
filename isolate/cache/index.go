package cache

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

const (
	indexName = "index"
	// Version 2 records each entry's size, change and modification times;
	// an index of version 1 reads as lost, and Open hashes every entry once.
	indexHeader = "dist_test cache index 2"
)

// record is an entry as the index file has it.
type record struct {
	ino  inode
	used int64
}

// tick returns the time of a use, always later than the last one, so that
// uses within one clock tick keep their order.
func (c *Cache) tick() int64 {
	t := c.now().UnixNano()
	if t <= c.lastUse {
		t = c.lastUse + 1
	}
	c.lastUse = t
	return t
}

// touch records a use of e. c.mu is held.
func (c *Cache) touch(e *entry) {
	e.used = c.tick()
	c.lru.MoveToFront(e.elem)
	c.changes++
}

// add records the new entry k, whose file is ino, then evicts what the
// limits require, but not k: its callers are about to pin it.
func (c *Cache) add(k key, ino inode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil {
		// Another caller's file was replaced by this one (same bytes).
		e.ino = ino
		c.touch(e)
		return
	}
	e := c.insert(k, ino, c.tick())
	c.added[k] = true
	delete(c.removed, k)
	c.changes++
	c.evict(e)
	c.maybeSync()
}

// insert puts a new entry in the maps, at the front of the LRU list.
// c.mu is held (or c is not shared yet).
func (c *Cache) insert(k key, ino inode, used int64) *entry {
	e := &entry{key: k, ino: ino, used: used}
	e.elem = c.lru.PushFront(e)
	c.entries[k] = e
	c.perms[k.digest] = append(c.perms[k.digest], k.perm)
	c.bytes += ino.size
	return e
}

// drop takes e out of the maps; its file is someone else's business.
// c.mu is held.
func (c *Cache) drop(e *entry) {
	c.lru.Remove(e.elem)
	delete(c.entries, e.key)
	perms := slices.DeleteFunc(c.perms[e.key.digest], func(p fs.FileMode) bool { return p == e.key.perm })
	if len(perms) == 0 {
		delete(c.perms, e.key.digest)
	} else {
		c.perms[e.key.digest] = perms
	}
	c.bytes -= e.ino.size
}

// removeLocked deletes the entry e and its file. c.mu is held.
func (c *Cache) removeLocked(e *entry) {
	c.drop(e)
	// A file that cannot be removed is no longer counted; the next Open
	// finds it and verifies it again.
	os.Remove(c.path(e.key))
	c.removed[e.key] = true
	delete(c.added, e.key)
	c.changes++
}

// remove deletes entry k, pinned or not: it is corrupt. Holders of a
// Handle keep reading the file they opened.
func (c *Cache) remove(k key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil {
		c.removeLocked(e)
	}
}

// forget drops entry k whose file another process removed.
func (c *Cache) forget(k key) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[k]; e != nil {
		c.drop(e)
		c.removed[k] = true
		delete(c.added, k)
	}
}

// evict removes unpinned entries, least recently used first, until the
// cache is within its limits; keep is spared. c.mu is held.
func (c *Cache) evict(keep *entry) {
	elem := c.lru.Back()
	for elem != nil && (c.bytes > c.lim.MaxBytes || len(c.entries) > c.lim.MaxItems) {
		e := elem.Value.(*entry)
		elem = elem.Prev()
		if e.pins > 0 || e == keep {
			continue
		}
		c.removeLocked(e)
	}
}

// maybeSync merges with the index file when enough has changed. A failure
// is not the fetch's: what is not written yet is written by a later sync,
// and Close reports one that fails still. c.mu is held.
func (c *Cache) maybeSync() {
	if c.changes >= syncEvery || c.changes > 0 && c.now().Sub(c.lastSync) >= syncAfter {
		c.sync()
	}
}

// sync merges this process's view with the index file under the folder's
// flock: entries another process added are adopted, those it evicted are
// dropped, the later of two uses wins. Then it evicts what the limits
// require and writes the index back. c.mu is held.
func (c *Cache) sync() error {
	c.changes = 0
	c.lastSync = c.now()
	if err := flock(c.lock); err != nil {
		return fmt.Errorf("lock %s: %w", c.lock.Name(), err)
	}
	defer funlock(c.lock)
	disk, err := readIndex(c.dir)
	if err != nil {
		return err
	}
	c.merge(disk)
	c.evict(nil)
	if err := c.writeIndex(); err != nil {
		return err
	}
	clear(c.added)
	clear(c.removed)
	return nil
}

func (c *Cache) merge(disk map[key]record) {
	reorder := false
	for k, r := range disk {
		e := c.entries[k]
		switch {
		case e != nil:
			if r.used > e.used {
				e.used, reorder = r.used, true
			}
		case c.removed[k]:
			// Evicted here since the last sync.
		default:
			// Added by another process; trust its file only if it is
			// there. Its record is checked when the entry is used.
			if fi, err := os.Lstat(c.path(k)); err == nil && fi.Mode().IsRegular() && fi.Size() == r.ino.size {
				c.insert(k, r.ino, r.used)
				reorder = true
			}
		}
	}
	for k, e := range c.entries {
		if _, ok := disk[k]; ok || c.added[k] {
			continue
		}
		// Gone from the index: another process evicted it. It may have
		// filled it again since, without syncing yet.
		if _, err := os.Lstat(c.path(k)); errors.Is(err, fs.ErrNotExist) {
			c.drop(e)
		}
	}
	if reorder {
		c.reorder()
	}
}

// reorder sorts the LRU list by last use. c.mu is held.
func (c *Cache) reorder() {
	all := make([]*entry, 0, len(c.entries))
	for _, e := range c.entries {
		all = append(all, e)
	}
	slices.SortFunc(all, func(a, b *entry) int { return cmp.Compare(b.used, a.used) })
	c.lru.Init()
	for _, e := range all {
		e.elem = c.lru.PushBack(e)
		c.lastUse = max(c.lastUse, e.used)
	}
}

// readIndex reads the index file; a missing or damaged one reads as empty,
// and Open rebuilds it from the files.
func readIndex(dir string) (map[key]record, error) {
	data, err := os.ReadFile(filepath.Join(dir, indexName))
	if errors.Is(err, fs.ErrNotExist) {
		return map[key]record{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the cache index: %w", err)
	}
	lines := strings.Split(string(data), "\n")
	if lines[0] != indexHeader || lines[len(lines)-1] != "" {
		return map[key]record{}, nil
	}
	out := make(map[key]record, len(lines))
	for _, line := range lines[1 : len(lines)-1] {
		f := strings.Fields(line)
		if len(f) != 5 {
			return map[key]record{}, nil
		}
		k, ok := parseName(f[0])
		var n [4]int64
		for i := range n {
			var err error
			if n[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
				ok = false
			}
		}
		if !ok || n[0] < 0 {
			return map[key]record{}, nil
		}
		out[k] = record{ino: inode{size: n[0], ctime: n[2], mtime: n[3]}, used: n[1]}
	}
	return out, nil
}

// writeIndex replaces the index file with this process's view, durably.
// The folder's flock is held.
func (c *Cache) writeIndex() (err error) {
	tmp, err := os.CreateTemp(c.dir, indexName+"-*.tmp")
	if err != nil {
		return fmt.Errorf("write the cache index: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	w := bufio.NewWriterSize(tmp, 256<<10)
	w.WriteString(indexHeader + "\n")
	for elem := c.lru.Back(); elem != nil; elem = elem.Prev() {
		e := elem.Value.(*entry)
		w.WriteString(e.key.name())
		for _, n := range []int64{e.ino.size, e.used, e.ino.ctime, e.ino.mtime} {
			w.WriteByte(' ')
			w.WriteString(strconv.FormatInt(n, 10))
		}
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write the cache index: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("write the cache index: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write the cache index: %w", err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(c.dir, indexName)); err != nil {
		return fmt.Errorf("write the cache index: %w", err)
	}
	return nil
}
