// Package local keeps blobs as files under one folder: the embedded default
// blob store of dist_test.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/dist-test/dist_test/internal/blob"
)

// Store keeps each blob at <root>/blobs/<key>. Writes go to a temporary
// file in <root>/tmp and are renamed into place, so a reader never sees part
// of a blob and a crash leaves at most a stray temporary file. The two
// folders are siblings so that no key can name a temporary file.
type Store struct {
	root string // <dir>/blobs
	tmp  string // <dir>/tmp
}

var _ blob.Store = (*Store)(nil)

// New opens (creating if needed) a store rooted at dir.
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("blob folder %q: %w", dir, err)
	}
	s := &Store{root: filepath.Join(abs, "blobs"), tmp: filepath.Join(abs, "tmp")}
	for _, d := range []string{s.root, s.tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("blob folder: %w", err)
		}
	}
	return s, nil
}

func (s *Store) path(key string) (string, error) {
	if !blob.ValidKey(key) {
		return "", fmt.Errorf("blob: invalid key %q", key)
	}
	return filepath.Join(s.root, filepath.FromSlash(key)), nil
}

// Put implements blob.Store.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(s.tmp, "put-*")
	if err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	n, err := io.Copy(tmp, ctxReader{ctx, r})
	if err == nil && size >= 0 && n != size {
		err = fmt.Errorf("got %d bytes, expected %d", n, size)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return fmt.Errorf("blob put %s: %w", key, err)
	}
	return nil
}

// Get implements blob.Store.
func (s *Store) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return nil, blob.Info{}, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, blob.Info{}, mapErr(key, err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, blob.Info{}, mapErr(key, err)
	}
	if st.IsDir() {
		f.Close()
		return nil, blob.Info{}, fmt.Errorf("blob %s: %w", key, blob.ErrNotFound)
	}
	return f, blob.Info{Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Stat implements blob.Store.
func (s *Store) Stat(ctx context.Context, key string) (blob.Info, error) {
	p, err := s.path(key)
	if err != nil {
		return blob.Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return blob.Info{}, mapErr(key, err)
	}
	if st.IsDir() {
		return blob.Info{}, fmt.Errorf("blob %s: %w", key, blob.ErrNotFound)
	}
	return blob.Info{Size: st.Size(), ModTime: st.ModTime()}, nil
}

// Delete implements blob.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	p, err := s.path(key)
	if err != nil {
		return err
	}
	st, err := os.Lstat(p)
	if err != nil || st.IsDir() {
		// Missing, or a folder of other keys: no blob of that key.
		if err == nil || isMissing(err) {
			return nil
		}
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	if err := os.Remove(p); err != nil && !isMissing(err) {
		return fmt.Errorf("blob delete %s: %w", key, err)
	}
	// Remove folders left empty, so that their names are free as keys.
	for d := filepath.Dir(p); d != s.root && strings.HasPrefix(d, s.root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break
		}
	}
	return nil
}

// List implements blob.Store.
func (s *Store) List(ctx context.Context, prefix string, fn func(key string, info blob.Info) error) error {
	// Walk the deepest folder the prefix names whole; filter the rest.
	dir := s.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		d := prefix[:i]
		if !blob.ValidKey(d) {
			return nil // no key can start so
		}
		dir = filepath.Join(s.root, filepath.FromSlash(d))
	}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if isMissing(err) {
				return nil // gone meanwhile, or never there
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		rel, err := filepath.Rel(s.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		st, err := d.Info()
		if isMissing(err) {
			return nil
		} else if err != nil {
			return err
		}
		return fn(key, blob.Info{Size: st.Size(), ModTime: st.ModTime()})
	})
	if err != nil {
		return fmt.Errorf("blob list %s: %w", prefix, err)
	}
	return nil
}

// isMissing: the path does not exist, or a part of it is a file.
func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Path returns the file holding a blob, for callers on the same host that
// can use the file directly (a hardlink into a sandbox, a rename).
func (s *Store) Path(key string) (string, error) { return s.path(key) }

func mapErr(key string, err error) error {
	if isMissing(err) || errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("blob %s: %w", key, blob.ErrNotFound)
	}
	return fmt.Errorf("blob %s: %w", key, err)
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
