// Package blobtest is the conformance suite every blob.Store of dist_test
// must pass: the local folder and S3 alike. It uses only the blob interfaces
// (and plain HTTP for presigned links), so it can run against a real S3
// endpoint.
package blobtest

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/dist-test/dist_test/internal/blob"
)

// Run runs the suite. newStore must return an empty store for each subtest.
func Run(t *testing.T, newStore func(t *testing.T) blob.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s blob.Store)
	}{
		{"RoundTrip", testRoundTrip},
		{"Large", testLarge},
		{"Overwrite", testOverwrite},
		{"Stat", testStat},
		{"NestedKeys", testNestedKeys},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"KeyFreedByDelete", testKeyFreedByDelete},
		{"InvalidKeys", testInvalidKeys},
		{"SizeMismatch", testSizeMismatch},
		{"FailingReader", testFailingReader},
		{"CanceledContext", testCanceledContext},
		{"ConcurrentKeys", testConcurrentKeys},
		{"ConcurrentSameKey", testConcurrentSameKey},
		{"PresignedLink", testPresignedLink},
		{"List", testList},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// put stores data under key, giving its size.
func put(t *testing.T, s blob.Store, key string, data []byte) {
	t.Helper()
	if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(data), err)
	}
}

// get reads a whole blob and checks that Get's Info agrees with its length.
func get(t *testing.T, s blob.Store, key string) []byte {
	t.Helper()
	rc, info, err := s.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("reading %q: %v", key, err)
	}
	if info.Size != int64(len(data)) {
		t.Fatalf("Get(%q) reports size %d, read %d bytes", key, info.Size, len(data))
	}
	return data
}

func wantContent(t *testing.T, s blob.Store, key string, want []byte) {
	t.Helper()
	if got := get(t, s, key); !bytes.Equal(got, want) {
		t.Fatalf("%q holds %d bytes %q, want %d bytes %q", key, len(got), clip(got), len(want), clip(want))
	}
}

// wantMissing checks that both Get and Stat report key as not found.
func wantMissing(t *testing.T, s blob.Store, key string) {
	t.Helper()
	rc, _, err := s.Get(t.Context(), key)
	if err == nil {
		rc.Close()
	}
	if !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Get(%q) = %v, want ErrNotFound", key, err)
	}
	if _, err := s.Stat(t.Context(), key); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("Stat(%q) = %v, want ErrNotFound", key, err)
	}
}

func wantOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// clip shortens data for a failure message.
func clip(b []byte) []byte {
	if len(b) > 32 {
		return b[:32]
	}
	return b
}

// randomBytes returns n reproducible pseudo-random bytes.
func randomBytes(seed byte, n int) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}
