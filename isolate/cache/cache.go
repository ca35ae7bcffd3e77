// Package cache keeps the blobs of task inputs on a slave's disk, named by
// digest, so that the tasks of a job that share one build tree download it
// once per slave rather than once per task.
//
// One folder holds the cache of a slave host. Every slot of a slave process
// shares one *Cache, and two processes may open the same folder: entries
// are immutable files written to a temporary file, verified against their
// digest and renamed into place, so a reader never sees part of one, and
// the index (sizes and last uses, for LRU eviction) is read and written
// under a flock of the folder.
//
// Entries are not fsync'd one by one, which made a cold fetch of a large
// tree twice as slow. A writer that dies loses nothing it wrote: the page
// cache keeps it. Only a host crash can leave an entry whose bytes did
// not reach the disk, so each open Cache marks the folder dirty: its
// tmp/<id>.lock holds the boot id (durably, before Open returns). Close
// syncs the whole filesystem (syncfs, one flush) and then removes the
// mark. An Open that finds the mark of a dead writer (its lock not held)
// recorded under another boot id verifies every entry before use; under
// the same boot id only the process died, and a syncfs is enough. Marks
// are per writer, not per folder, so that one process closing cleanly
// does not vouch for another that shares the folder and then dies with
// the host; a dead writer's mark is removed only once what it wrote, and
// what the verify removed, is on the disk.
//
// Layout of the folder:
//
//	lock                   flocked while the index is read or written
//	index                  one line per entry: name, size, last use, ctime, mtime
//	ab/<digest>-<perm>     an entry: the bytes of digest, mode perm (octal)
//	tmp/<id>.lock          the mark of an open Cache, flocked: its boot id
//	tmp/<id>/              the temporary files of that Cache
//
// An entry has a read-only mode of its own (0444, 0555, 0440...): it is
// hardlinked into sandboxes whose files are read-only, and one inode cannot
// have two modes, so a blob used with two modes is stored twice (the second
// copy is made from the first, without downloading). Files a task may
// write are always copies, never links.
//
// Tasks are not trusted. The folder is its owner's alone (0700), entries
// are read-only files of the cache's owner, and a link is only handed to a
// task that runs as another, unprivileged user: it can read the entry but
// neither write nor chmod it. A task running as the cache's own user gets
// copies (PlaceOptions.Copy). Copies are hashed as they are made, and an
// entry whose file changed since the cache recorded it (see inode) is
// hashed again before it is handed out: a changed entry is removed, never
// used.
//
// The cache runs on Linux only, as the slave does (sys_linux.go says what
// it leans on); elsewhere Open refuses.
package cache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Limits bound what a cache keeps; the least recently used entries go first
// when either would be exceeded.
type Limits struct {
	MaxBytes int64 // 20 GiB when 0
	MaxItems int   // 100,000 when 0
}

// Stats is what a cache holds, as this process sees it.
type Stats struct {
	Items int
	Bytes int64
}

// Fill writes the bytes of one blob to w. The cache hashes what it gets and
// keeps it only if it matches the digest; a Fill that fails midway may be
// called again by a later Get, with a fresh w.
type Fill func(ctx context.Context, w io.Writer) error

// ErrMismatch is wrapped by the errors of bytes that do not match their
// digest, or their size.
var ErrMismatch = errors.New("bytes do not match")

const (
	// syncEvery and syncAfter say how often an open cache merges its view of
	// the index with the file, which other processes share: after that many
	// changes, or that long after a change.
	syncEvery = 1000
	syncAfter = 30 * time.Second
	// getAttempts bounds the times a blob is filled again because it was
	// evicted, by this process or another, before it could be used.
	getAttempts = 3
)

// Cache is one open cache folder. It is safe for concurrent use.
type Cache struct {
	dir     string
	uid     int // the owner of the entries: this process's
	lim     Limits
	lock    *os.File // dir/lock
	tmpDir  string   // this Cache's temporary files
	tmpLock *os.File // flocked while tmpDir is in use
	link    func(oldname, newname string) error
	now     func() time.Time
	group   singleflight.Group

	mu       sync.Mutex
	entries  map[key]*entry
	perms    map[string][]fs.FileMode // the perms of the entries of a digest
	lru      *list.List               // of *entry, most recently used first
	bytes    int64
	added    map[key]bool // since the last sync
	removed  map[key]bool // since the last sync
	changes  int          // since the last sync
	lastSync time.Time
	lastUse  int64 // the last use recorded, to keep them increasing
	closed   bool

	// What Open did: whether it verified every entry (after a host
	// crash), and how many files it hashed in all.
	verifiedAll  bool
	hashedAtOpen int
	// rechecks counts the entries hashed again on use because their file
	// was not as recorded.
	rechecks int
}

// key names an entry: the bytes of digest with mode perm.
type key struct {
	digest string
	perm   fs.FileMode
}

type entry struct {
	key  key
	ino  inode // its file, as recorded
	used int64 // unix nanoseconds of the last use
	pins int   // Handles not released
	// links counts the Linked handles not released: the hardlinks in
	// tasks' folders that the cache knows of.
	links int
	elem  *list.Element
}

// newKey validates digest (it becomes a file name) and strips the write
// bits of perm: entries are never writable.
func newKey(digest string, perm fs.FileMode) (key, error) {
	if err := checkDigest(digest); err != nil {
		return key{}, err
	}
	return key{digest: digest, perm: perm.Perm() &^ 0o222}, nil
}

func (k key) name() string { return k.digest + "-" + fmt.Sprintf("%03o", uint32(k.perm)) }

// parseName is the inverse of name; ok is false for any other file name.
func parseName(name string) (k key, ok bool) {
	i := len(name) - 4
	if i < 0 || name[i] != '-' {
		return key{}, false
	}
	perm, err := strconv.ParseUint(name[i+1:], 8, 32)
	if err != nil || perm > 0o777 {
		return key{}, false
	}
	k, err = newKey(name[:i], fs.FileMode(perm))
	return k, err == nil && k.perm == fs.FileMode(perm)
}

func (c *Cache) path(k key) string { return filepath.Join(c.dir, k.digest[:2], k.name()) }

// Handle is a pinned entry: it is not evicted until Release.
type Handle struct {
	// Path is the entry's file. Read it, link to it; never write, chmod or
	// rename it: every task that uses the blob sees the same inode.
	Path string
	Size int64
	// Hot is false when this call downloaded the bytes, true when they were
	// in the cache or another caller was downloading them.
	Hot bool

	c      *Cache
	e      *entry
	linked bool // Place linked the entry into a task's folder
	once   sync.Once
}

// Release unpins the entry. It may be called more than once. The Linked
// handle of a Place is released once the link is gone (the task's folder
// removed): the change time that the link and its removal gave the entry
// is then recorded as the cache's own doing.
func (h *Handle) Release() { h.once.Do(func() { h.c.unpin(h.e, h.linked) }) }

// Remove takes the entry out of the cache, for its bytes were found wrong.
// The handle must still be released.
func (h *Handle) Remove() { h.c.remove(h.e.key) }

// filled is what a fill run by the singleflight group tells its callers.
type filled struct {
	by         *byte // the caller whose function ran
	downloaded bool  // false when the bytes were copied from another entry
}

// Get returns the entry of digest with mode perm (write bits stripped),
// pinned, filling it with fill if it is absent. size is the blob's size or
// -1 when unknown. Concurrent Gets of one entry in this process call fill
// once; the others wait for it. With fill nil, an absent entry gives an
// error wrapping fs.ErrNotExist.
func (c *Cache) Get(ctx context.Context, digest string, size int64, perm fs.FileMode, fill Fill) (*Handle, error) {
	k, err := newKey(digest, perm)
	if err != nil {
		return nil, err
	}
	cold := false
	evictions := 0
	for {
		h, suspect, err := c.pin(k, size)
		if err != nil {
			return nil, err
		}
		if h != nil && suspect {
			if err := c.recheck(h); err != nil {
				h.Release()
				if !errors.Is(err, errChanged) {
					return nil, err
				}
				// Removed: fill it again.
				if evictions++; evictions > getAttempts {
					return nil, fmt.Errorf("blob %s: %w", digest, err)
				}
				continue
			}
		}
		if h != nil {
			h.Hot = !cold
			return h, nil
		}
		if fill == nil {
			return nil, fmt.Errorf("blob %s: not in the cache: %w", digest, fs.ErrNotExist)
		}
		// One fill per digest at a time, whatever the mode: a caller
		// wanting another mode waits, then copies the entry just made.
		me := new(byte)
		ch := c.group.DoChan(digest, func() (any, error) {
			downloaded, err := c.fill(ctx, k, size, fill)
			return filled{by: me, downloaded: downloaded}, err
		})
		var r singleflight.Result
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r = <-ch:
		}
		f := r.Val.(filled)
		if f.by != me {
			// Another caller's fill, of this entry or of another mode.
			// If it gave up, it stopped the fill of everyone waiting on
			// it: those still wanting the blob fill it themselves.
			if r.Err != nil && (ctx.Err() != nil || !errors.Is(r.Err, context.Canceled) && !errors.Is(r.Err, context.DeadlineExceeded)) {
				return nil, r.Err
			}
			continue
		}
		if r.Err != nil {
			return nil, r.Err
		}
		cold = cold || f.downloaded
		// The entry is made; unless it was evicted before the pin above
		// gets it, which a cache too small for the fetches running at
		// once makes happen again and again.
		if evictions++; evictions > getAttempts {
			return nil, fmt.Errorf("blob %s: evicted %d times before it could be used: the cache is too small for the tasks running at once", digest, getAttempts)
		}
	}
}

// pin returns a Handle of k if the cache holds it, nil if not. suspect
// is set when the entry's file is not as recorded: hash it before use.
func (c *Cache) pin(k key, size int64) (h *Handle, suspect bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, false, errors.New("cache is closed")
	}
	e := c.entries[k]
	if e == nil {
		return nil, false, nil
	}
	if size >= 0 && e.ino.size != size {
		return nil, false, fmt.Errorf("blob %s: %d bytes, not %d as the manifest says: %w", k.digest, e.ino.size, size, ErrMismatch)
	}
	e.pins++
	c.touch(e)
	return &Handle{Path: c.path(k), Size: e.ino.size, c: c, e: e}, !c.unchanged(e), nil
}

// errChanged is wrapped by the errors of entries whose bytes changed.
var errChanged = errors.New("the cached file was changed: removed from the cache")

// recheck hashes the file of an entry that is not as recorded: it keeps
// the entry, recording its file anew, if its bytes are still its digest's,
// and removes it otherwise.
func (c *Cache) recheck(h *Handle) error {
	for range getAttempts {
		c.mu.Lock()
		c.rechecks++
		before, ok := c.stat(h.e.key)
		c.mu.Unlock()
		good, err := verifyFile(h.Path, h.e.key)
		if errors.Is(err, fs.ErrNotExist) {
			c.forget(h.e.key)
			return fmt.Errorf("%s: %w", h.Path, errChanged)
		}
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		c.mu.Lock()
		after, still := c.stat(h.e.key)
		if !good || !ok || !still {
			if c.entries[h.e.key] == h.e {
				c.removeLocked(h.e)
			}
			c.mu.Unlock()
			return fmt.Errorf("%s: %w", h.Path, errChanged)
		}
		// Changed while it was hashed (a link made meanwhile, say): the
		// hash vouches for nothing, so hash again.
		if before == after {
			if c.entries[h.e.key] == h.e {
				h.e.ino = after
			}
			c.mu.Unlock()
			return nil
		}
		c.mu.Unlock()
	}
	c.remove(h.e.key)
	return fmt.Errorf("%s: changing while it is hashed: %w", h.Path, errChanged)
}

func (c *Cache) unpin(e *entry, linked bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if linked {
		e.links--
		if c.entries[e.key] == e {
			c.refresh(e)
		}
	}
	e.pins--
	if e.pins == 0 {
		c.evict(nil)
	}
	c.maybeSync()
}

// Stats tells what the cache holds, as this process last saw it.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return Stats{Items: len(c.entries), Bytes: c.bytes}
}

// Close makes the entries durable, writes the index and releases the
// folder. Fills still running fail.
func (c *Cache) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	// Gone, the temporary folder lets no fill rename an entry into place
	// after the filesystem is synced.
	err := os.RemoveAll(c.tmpDir)
	if err == nil {
		err = c.syncFS()
	}
	// Unless every entry is durable, the mark stays: the next Open takes
	// it for a dead writer's.
	clean := err == nil
	if serr := c.sync(); err == nil {
		err = serr
	}
	if clean {
		if rerr := c.removeMarks([]string{c.tmpLock.Name()}); err == nil {
			err = rerr
		}
	}
	c.tmpLock.Close()
	c.lock.Close()
	if err != nil {
		return fmt.Errorf("close cache %s: %w", c.dir, err)
	}
	return nil
}
