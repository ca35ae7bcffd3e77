package isolate

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	"github.com/dist-test/dist_test/internal/model"
)

// Algo names a digest algorithm as .isolated manifests spell it.
type Algo string

// The algorithms luci's isolate format knows and dist_test accepts.
const (
	SHA1   Algo = "sha-1"
	SHA256 Algo = "sha-256"
)

// AlgoOf tells the algorithm of a digest from its length: 40 lowercase hex
// digits for sha-1, 64 for sha-256. Anything else wraps model.ErrInvalid.
func AlgoOf(digest string) (Algo, error) {
	var a Algo
	switch len(digest) {
	case 2 * sha1.Size:
		a = SHA1
	case 2 * sha256.Size:
		a = SHA256
	default:
		return "", fmt.Errorf("digest %q: want 40 (sha-1) or 64 (sha-256) lowercase hex digits: %w",
			clip(digest), model.ErrInvalid)
	}
	for i := 0; i < len(digest); i++ {
		c := digest[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", fmt.Errorf("digest %q: want lowercase hex digits only: %w", clip(digest), model.ErrInvalid)
		}
	}
	return a, nil
}

// Valid reports whether a is an algorithm dist_test knows.
func (a Algo) Valid() bool { return a == SHA1 || a == SHA256 }

// New returns a fresh hash of the algorithm. It panics for an unknown
// algorithm: callers validate algorithms where they enter (ParseIsolated,
// archive.Options), so reaching it is a programming error.
func (a Algo) New() hash.Hash {
	switch a {
	case SHA1:
		return sha1.New()
	case SHA256:
		return sha256.New()
	}
	panic(fmt.Sprintf("isolate: unknown digest algorithm %q", string(a)))
}

// check returns an error unless digest is a well-formed digest of a.
func (a Algo) check(digest string) error {
	got, err := AlgoOf(digest)
	if err != nil {
		return err
	}
	if got != a {
		return fmt.Errorf("digest %s is not a %s digest: %w", digest, a, model.ErrInvalid)
	}
	return nil
}

// HashBytes returns the hex digest of b.
func HashBytes(a Algo, b []byte) string {
	h := a.New()
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// HashFile returns the hex digest and the size of the file at path.
func HashFile(a Algo, path string) (digest string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	defer f.Close()
	h := a.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("hash %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// clip shortens hostile input before it goes into an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
