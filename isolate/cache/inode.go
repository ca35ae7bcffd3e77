package cache

import (
	"io/fs"
	"os"
)

// inode is what the cache records of an entry's file when it adds it, and
// checks each time it hands the entry out again. Changing the file's bytes
// changes its size or its modification time; and whatever changes the
// inode (a write, a chmod, a utimes that sets the modification time back)
// sets its change time to now, which nobody but the kernel can set. An
// entry whose file no longer matches is hashed again before it is used,
// and removed if its bytes are not its digest's.
//
// The cache's own links and unlinks of an entry (a task's hardlink made,
// then removed with its folder) change its change time too; the cache
// records the new one then, as long as nothing else about the file moved
// (see refresh).
type inode struct {
	size, ctime, mtime int64 // bytes; unix nanoseconds
}

func inodeOf(fi fs.FileInfo) inode {
	ino := inode{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
	ino.ctime, _ = changeTime(fi)
	return ino
}

// stat tells what entry k's file is now; ok is false when it is gone, or
// is not a regular file of k's mode and of the cache's owner.
func (c *Cache) stat(k key) (ino inode, ok bool) {
	fi, err := os.Lstat(c.path(k))
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm() != k.perm {
		return inode{}, false
	}
	if uid, known := ownerOf(fi); known && uid != c.uid {
		return inode{}, false
	}
	return inodeOf(fi), true
}

// unchanged tells whether e's file is as recorded. c.mu is held.
//
// A change of the change time alone is the cache's own doing while links
// it made of the entry are out (a task's folder being removed unlinks
// them): it is recorded. Nothing else changes the change time alone but a
// chmod or chown (which the mode and owner show), a link by another
// user (harmless), or a utimes that sets the modification time back after
// a write: and writing an entry takes its owner or root, which a task that
// got a link never is (a task running as the cache's owner gets copies).
func (c *Cache) unchanged(e *entry) bool {
	ino, ok := c.stat(e.key)
	switch {
	case !ok:
		return false
	case ino == e.ino:
		return true
	case e.links > 0 && ino.size == e.ino.size && ino.mtime == e.ino.mtime:
		e.ino.ctime = ino.ctime
		return true
	}
	return false
}

// refresh records the change time of e's file after the cache linked it
// into a task's folder, or the folder holding that link was removed: the
// change time moved, and nothing else may have. c.mu is held.
func (c *Cache) refresh(e *entry) {
	ino, ok := c.stat(e.key)
	if ok && ino.size == e.ino.size && ino.mtime == e.ino.mtime {
		e.ino.ctime = ino.ctime
	}
}

// linkable tells whether a task running as another user than the cache's
// may use a read-only entry of mode perm through a hardlink: it gets the
// "other" bits of the inode, which must then grant what the owner's do.
// Otherwise (0400, 0500) it needs a copy of its own.
func linkable(perm fs.FileMode) bool {
	owner, other := (perm>>6)&0o5, perm&0o5
	return perm&0o222 == 0 && owner&^other == 0
}
