package model

import (
	"crypto/rand"
	"encoding/hex"
)

// NewToken returns 128 random bits in hex: queue tokens, run leases and
// slave ids, none of which may be guessed.
func NewToken() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}
