package blobtest

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/dist-test/dist_test/internal/blob"
)

func testRoundTrip(t *testing.T, s blob.Store) {
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	random := randomBytes(1, 1<<20+7)
	tests := []struct {
		name    string
		data    []byte
		reader  func([]byte) io.Reader
		unknown bool // pass size -1
	}{
		{name: "empty", data: []byte{}},
		{name: "empty size unknown", data: []byte{}, unknown: true},
		{name: "small", data: []byte("hello, dist_test\n")},
		{name: "small size unknown", data: []byte("hello again\n"), unknown: true},
		{name: "every byte value", data: every},
		{name: "1 MiB random", data: random},
		{name: "1 MiB random size unknown", data: random, unknown: true},
		{name: "one byte per read", data: random[:10000], reader: func(b []byte) io.Reader {
			return iotest.OneByteReader(bytes.NewReader(b))
		}},
		{name: "data with EOF", data: random[:10000], unknown: true, reader: func(b []byte) io.Reader {
			return iotest.DataErrReader(bytes.NewReader(b))
		}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key := "roundtrip/" + strings.ReplaceAll(tc.name, " ", "-")
			var r io.Reader = bytes.NewReader(tc.data)
			if tc.reader != nil {
				r = tc.reader(tc.data)
			}
			size := int64(len(tc.data))
			if tc.unknown {
				size = -1
			}
			wantOK(t, "Put", s.Put(t.Context(), key, r, size))
			wantContent(t, s, key, tc.data)
			info, err := s.Stat(t.Context(), key)
			wantOK(t, "Stat", err)
			if info.Size != int64(len(tc.data)) {
				t.Fatalf("case %d: Stat size %d, want %d", i, info.Size, len(tc.data))
			}
		})
	}
}

// testLarge streams 20 MiB in and out, comparing digests rather than holding
// the blob in memory.
func testLarge(t *testing.T, s blob.Store) {
	const size = 20 << 20
	for _, known := range []bool{true, false} {
		name := map[bool]string{true: "size known", false: "size unknown"}[known]
		t.Run(name, func(t *testing.T) {
			key := "large/" + strings.ReplaceAll(name, " ", "-")
			src := sha256.New()
			r := io.TeeReader(io.LimitReader(rand.NewChaCha8([32]byte{2}), size), src)
			n := int64(size)
			if !known {
				n = -1
			}
			wantOK(t, "Put of 20 MiB", s.Put(t.Context(), key, r, n))

			rc, info, err := s.Get(t.Context(), key)
			wantOK(t, "Get", err)
			defer rc.Close()
			dst := sha256.New()
			read, err := io.Copy(dst, rc)
			wantOK(t, "reading the blob", err)
			if read != size || info.Size != size {
				t.Fatalf("read %d bytes, Get reports %d; want %d", read, info.Size, size)
			}
			if !bytes.Equal(dst.Sum(nil), src.Sum(nil)) {
				t.Fatalf("sha256 of the blob read back is %x, of the bytes put %x", dst.Sum(nil), src.Sum(nil))
			}
		})
	}
}

func testOverwrite(t *testing.T, s blob.Store) {
	put(t, s, "k", []byte("first"))
	put(t, s, "k", []byte("second, longer"))
	wantContent(t, s, "k", []byte("second, longer"))
	// A shorter blob must not keep the tail of the longer one.
	put(t, s, "k", []byte("3"))
	wantContent(t, s, "k", []byte("3"))
	put(t, s, "k", nil)
	wantContent(t, s, "k", []byte{})
}

func testStat(t *testing.T, s blob.Store) {
	data := randomBytes(3, 12345)
	put(t, s, "stat/me", data)
	info, err := s.Stat(t.Context(), "stat/me")
	wantOK(t, "Stat", err)
	if info.Size != int64(len(data)) {
		t.Fatalf("Stat size %d, want %d", info.Size, len(data))
	}
	if info.ModTime.IsZero() {
		t.Fatal("Stat has no modification time")
	}
	rc, ginfo, err := s.Get(t.Context(), "stat/me")
	wantOK(t, "Get", err)
	rc.Close()
	if ginfo.Size != info.Size {
		t.Fatalf("Get reports size %d, Stat %d", ginfo.Size, info.Size)
	}
}

func testNestedKeys(t *testing.T, s blob.Store) {
	keys := []string{
		"top",
		"a/b/c/d.txt",
		"a/b/e",
		"a/b/c/f",
		"jobs/job-1_2/task.3/stdout.log",
		"x.y/z-1_2/.hidden",
		"..a/b..",
		"CAS/DE/adeadbeef",
	}
	for i, k := range keys {
		if !blob.ValidKey(k) {
			t.Fatalf("test key %q is not valid", k)
		}
		put(t, s, k, []byte{byte(i), 'v'})
	}
	for i, k := range keys {
		wantContent(t, s, k, []byte{byte(i), 'v'})
	}
	// Removing one leaves its neighbours alone.
	wantOK(t, "Delete", s.Delete(t.Context(), "a/b/c/d.txt"))
	wantMissing(t, s, "a/b/c/d.txt")
	wantContent(t, s, "a/b/c/f", []byte{3, 'v'})
	wantContent(t, s, "a/b/e", []byte{2, 'v'})
}
