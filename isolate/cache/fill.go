package cache

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// checkDigest accepts the digests isolate knows: 40 lowercase hex digits
// for sha-1, 64 for sha-256. A digest becomes a file name: nothing else may.
func checkDigest(digest string) error {
	if len(digest) != 2*sha1.Size && len(digest) != 2*sha256.Size {
		return fmt.Errorf("digest %.80q: want 40 (sha-1) or 64 (sha-256) hex digits", digest)
	}
	for i := 0; i < len(digest); i++ {
		if c := digest[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return fmt.Errorf("digest %.80q: want lowercase hex digits", digest)
		}
	}
	return nil
}

// hashFor returns a hash of the algorithm of a checked digest, told by its
// length as isolate does.
func hashFor(digest string) hash.Hash {
	if len(digest) == 2*sha1.Size {
		return sha1.New()
	}
	return sha256.New()
}

// fill makes entry k, unless another caller has made it meanwhile: from an
// entry of the same digest with another mode when there is one, from fill
// otherwise. downloaded tells which.
func (c *Cache) fill(ctx context.Context, k key, size int64, fill Fill) (downloaded bool, err error) {
	c.mu.Lock()
	if _, done := c.entries[k]; done {
		c.mu.Unlock()
		return false, nil
	}
	var sibling *Handle
	if perms := c.perms[k.digest]; len(perms) > 0 {
		e := c.entries[key{k.digest, perms[0]}]
		e.pins++
		sibling = &Handle{Path: c.path(e.key), Size: e.ino.size, c: c, e: e}
	}
	c.mu.Unlock()
	if sibling != nil {
		// The size is the sibling's: a manifest that says otherwise is
		// refused when the entry is pinned, and the sibling is not to blame.
		err := c.store(ctx, k, -1, copyFrom(sibling.Path))
		sibling.Release()
		if err == nil {
			return false, nil
		}
		if errors.Is(err, ErrMismatch) {
			c.remove(sibling.e.key)
		}
	}
	return true, c.store(ctx, k, size, fill)
}

// copyFrom fills from a file.
func copyFrom(path string) Fill {
	return func(ctx context.Context, w io.Writer) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(w, f)
		return err
	}
}

// store writes what fill gives to a temporary file, verifies it against
// k.digest (and size, unless -1) and renames it to its entry: a crash of
// the process at any point leaves either the whole entry or a temporary
// file that the next Open removes. It does not fsync: Close syncs the
// filesystem, and after a host crash Open verifies (see the package doc).
func (c *Cache) store(ctx context.Context, k key, size int64, fill Fill) (err error) {
	tmp, err := os.CreateTemp(c.tmpDir, "fill-*")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := hashFor(k.digest)
	cw := &countingWriter{w: io.MultiWriter(tmp, h)}
	if err := fill(ctx, cw); err != nil {
		return err
	}
	if size >= 0 && cw.n != size {
		return fmt.Errorf("blob %s: got %d bytes, the manifest says %d: %w", k.digest, cw.n, size, ErrMismatch)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != k.digest {
		return fmt.Errorf("blob %s: downloaded bytes hash to %s: %w", k.digest, got, ErrMismatch)
	}
	if err := tmp.Chmod(k.perm); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	// Another process may have renamed the same bytes there meanwhile:
	// replacing them is harmless, the content is the same.
	if err := os.Rename(tmp.Name(), c.path(k)); err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	fi, err := os.Lstat(c.path(k))
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	c.add(k, inodeOf(fi))
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (cw *countingWriter) Write(p []byte) (int, error) {
	n, err := cw.w.Write(p)
	cw.n += int64(n)
	return n, err
}

// PlaceOptions say how Place lays out a file for a task.
type PlaceOptions struct {
	// Copy forbids hardlinks: the task runs as the cache's own user, who
	// could make a linked entry writable again and change it.
	Copy bool
	// Owner, when set, owns the copies (the caller must be root), so that
	// a task running as that user may write its writable files.
	Owner *Owner
}

// Owner is a uid and gid.
type Owner struct{ UID, GID int }

// Placed tells what Place did.
type Placed struct {
	Hot  bool  // the bytes were in the cache already
	Size int64 // bytes
	// Linked, when the file is a hardlink to an entry, is that entry,
	// pinned: Release it once the link is gone.
	Linked *Handle
}

// Place lays out the blob digest at dst, a new file, with mode perm,
// filling the cache with fill if the blob is absent. A read-only perm (no
// write bit) gets a hardlink to the entry, so a tree shared by many tasks
// costs its bytes once, unless o.Copy forbids links or the task, running
// as another user than the entry's owner, could not read the entry through
// one (0400, 0500); a writable one gets a copy, so that the task cannot
// change the cache by writing its file. Where a link is impossible
// (another filesystem, too many links) it copies. A copy is hashed as it is
// made: an entry whose bytes changed is removed and filled again.
func (c *Cache) Place(ctx context.Context, digest string, size int64, dst string, perm fs.FileMode, fill Fill, o PlaceOptions) (Placed, error) {
	link := !o.Copy && linkable(perm)
	for attempt := 0; ; attempt++ {
		h, err := c.Get(ctx, digest, size, perm, fill)
		if err != nil {
			return Placed{}, err
		}
		linked, err := c.placeFrom(h, dst, perm, link, o.Owner)
		if err == nil {
			p := Placed{Hot: h.Hot, Size: h.Size}
			if !linked {
				h.Release()
				return p, nil
			}
			c.mu.Lock()
			h.e.links++
			c.refresh(h.e) // the link changed the entry's change time
			c.mu.Unlock()
			h.linked = true
			p.Linked = h
			return p, nil
		}
		h.Release()
		if attempt < getAttempts {
			// The entry's bytes changed under the copy: it is gone from
			// the cache, fill it again.
			if errors.Is(err, errChanged) {
				c.remove(h.e.key)
				continue
			}
			// Another process may have evicted the entry after this one
			// last merged the index: fill it again.
			_, serr := os.Lstat(h.Path)
			if errors.Is(serr, fs.ErrNotExist) {
				c.forget(h.e.key)
				continue
			}
			// Or renamed its own copy of the same bytes over it, between
			// the lookup of the link and the link, which then finds the
			// replaced inode gone: link the new one.
			var le *os.LinkError
			if serr == nil && errors.As(err, &le) && errors.Is(le.Err, fs.ErrNotExist) {
				continue
			}
		}
		return Placed{}, fmt.Errorf("place %s: %w", digest, err)
	}
}

// placeFrom links or copies the entry of h to dst; linked tells which.
func (c *Cache) placeFrom(h *Handle, dst string, perm fs.FileMode, link bool, owner *Owner) (linked bool, err error) {
	if link {
		err := c.link(h.Path, dst)
		if err == nil || !linkFallsBack(err) {
			return err == nil, err
		}
	}
	return false, copyFile(h.Path, dst, perm, h.e.key, h.Size, owner)
}

// linkFallsBack tells the link errors that a copy gets around.
func linkFallsBack(err error) bool {
	for _, errno := range []syscall.Errno{syscall.EXDEV, syscall.EMLINK, syscall.EPERM, syscall.ENOTSUP} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// copyFile copies the entry k at src, of size bytes, to the new file dst,
// hashing what it copies: bytes that are not k's fail with errChanged and
// leave no dst.
func copyFile(src, dst string, perm fs.FileMode, k key, size int64, owner *Owner) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(dst)
		}
	}()
	h := hashFor(k.digest)
	n, err := io.Copy(io.MultiWriter(out, h), io.LimitReader(in, size+1))
	if err != nil {
		return err
	}
	if n != size || hex.EncodeToString(h.Sum(nil)) != k.digest {
		return fmt.Errorf("copy of %s: %w", src, errChanged)
	}
	if owner != nil {
		if err := out.Chown(owner.UID, owner.GID); err != nil {
			return err
		}
	}
	return out.Chmod(perm)
}
