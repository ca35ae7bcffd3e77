package isolate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
)

func TestAlgoOf(t *testing.T) {
	tests := []struct {
		digest string
		want   Algo
		ok     bool
	}{
		{strings.Repeat("0", 40), SHA1, true},
		{"da39a3ee5e6b4b0d3255bfef95601890afd80709", SHA1, true},
		{strings.Repeat("f", 64), SHA256, true},
		{strings.Repeat("F", 40), "", false}, // uppercase
		{strings.Repeat("0", 39), "", false},
		{strings.Repeat("0", 41), "", false},
		{strings.Repeat("0", 128), "", false}, // sha-512 is not accepted
		{strings.Repeat("g", 40), "", false},
		{"../" + strings.Repeat("0", 37), "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := AlgoOf(tt.digest)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("AlgoOf(%q) = %q, %v; want %q", tt.digest, got, err, tt.want)
		}
		if !tt.ok && !errors.Is(err, model.ErrInvalid) {
			t.Errorf("AlgoOf(%q) = %q, %v; want model.ErrInvalid", tt.digest, got, err)
		}
	}
}

func TestHash(t *testing.T) {
	// Known digests of "abc" (FIPS 180 test vectors).
	if got := HashBytes(SHA1, []byte("abc")); got != "a9993e364706816aba3e25717850c26c9cd0d89d" {
		t.Errorf("sha-1(abc) = %s", got)
	}
	if got := HashBytes(SHA256, []byte("abc")); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Errorf("sha-256(abc) = %s", got)
	}
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("abc"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, n, err := HashFile(SHA1, p)
	if err != nil || n != 3 || d != "a9993e364706816aba3e25717850c26c9cd0d89d" {
		t.Fatalf("HashFile = %s, %d, %v", d, n, err)
	}
	if _, _, err := HashFile(SHA1, p+".absent"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("HashFile(absent) = %v", err)
	}
}
