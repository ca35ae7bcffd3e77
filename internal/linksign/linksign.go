// Package linksign makes and checks the expiring links to stored outputs
// that a master serves itself (when its blob store cannot presign): the
// link carries its expiry and an HMAC of the output's key and expiry, so
// that whoever was handed the link may follow it without logging in, and a
// guessed or altered link is refused. Every master of a deployment signs
// with the same key, kept in the database.
package linksign

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// KeySize is the size of a signing key.
const KeySize = 32

// Errors of Verify.
var (
	ErrUnsigned = errors.New("link is not signed")
	ErrBadSig   = errors.New("link signature does not match")
	ErrExpired  = errors.New("link has expired")
)

// Signer signs and verifies links with one key.
type Signer struct{ key []byte }

// New returns a signer with key, which must be KeySize bytes or more.
func New(key []byte) (*Signer, error) {
	if len(key) < KeySize {
		return nil, fmt.Errorf("link signing key of %d bytes; want at least %d", len(key), KeySize)
	}
	return &Signer{key: append([]byte(nil), key...)}, nil
}

func (s *Signer) mac(key string, expires int64) []byte {
	m := hmac.New(sha256.New, s.key)
	// The purpose first, so that a signature made here means nothing
	// anywhere else the key might be used.
	fmt.Fprintf(m, "dist_test output link\n%s\n%d", key, expires)
	return m.Sum(nil)
}

// Query returns the query string ("expires=...&sig=...") that makes a link
// to the output key valid until expires.
func (s *Signer) Query(key string, expires time.Time) string {
	e := expires.Unix()
	return url.Values{
		"expires": {strconv.FormatInt(e, 10)},
		"sig":     {base64.RawURLEncoding.EncodeToString(s.mac(key, e))},
	}.Encode()
}

// Verify checks the expires and sig parameters of a link to key at now.
func (s *Signer) Verify(key string, q url.Values, now time.Time) error {
	es, sig := q.Get("expires"), q.Get("sig")
	if es == "" && sig == "" {
		return ErrUnsigned
	}
	e, err := strconv.ParseInt(es, 10, 64)
	if err != nil {
		return ErrBadSig
	}
	got, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil || !hmac.Equal(got, s.mac(key, e)) {
		return ErrBadSig
	}
	if now.Unix() > e {
		return ErrExpired
	}
	return nil
}
