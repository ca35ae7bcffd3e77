// Package blob defines where dist_test keeps bytes: task logs, artifact
// archives and the content-addressed inputs of the isolate server.
//
// Implementations: local (a folder, the embedded default) and s3.
package blob

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned for a key that does not exist.
var ErrNotFound = errors.New("blob: not found")

// Info describes a stored blob.
type Info struct {
	Size    int64
	ModTime time.Time
}

// Store keeps blobs under keys: slash-separated relative paths made of
// letters, digits and "._-" (see ValidKey). Safe for concurrent use. A Put
// is atomic: readers see the whole new blob or none of it, never a part.
type Store interface {
	// Put stores the bytes of r under key, replacing any blob there. size is
	// the length of r if known, or -1.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens a blob for reading. The caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, Info, error)
	Stat(ctx context.Context, key string) (Info, error)
	// Delete removes a blob; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List calls fn with each blob whose key starts with prefix, in no
	// particular order, until fn returns an error, which List returns.
	// Blobs put or deleted meanwhile may or may not be listed.
	List(ctx context.Context, prefix string, fn func(key string, info Info) error) error
}

// Presigner is implemented by stores whose blobs can be fetched by anyone
// holding a link, without credentials (S3's presigned URLs). Without it the
// master serves the blob itself.
type Presigner interface {
	PresignGet(ctx context.Context, key string, ttl time.Duration) (string, error)
}

// ValidKey reports whether key is usable with every Store: non-empty, at
// most 1024 bytes, relative, without empty, "." or ".." segments, made of
// ASCII letters, digits and "._-/".
func ValidKey(key string) bool {
	if key == "" || len(key) > 1024 || key[0] == '/' || key[len(key)-1] == '/' {
		return false
	}
	seg := 0
	for i := 0; i <= len(key); i++ {
		if i == len(key) || key[i] == '/' {
			s := key[seg:i]
			if s == "" || s == "." || s == ".." {
				return false
			}
			seg = i + 1
			continue
		}
		c := key[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
