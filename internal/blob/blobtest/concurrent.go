package blobtest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
)

func testConcurrentKeys(t *testing.T, s blob.Store) {
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("concurrent/%d/blob", i)
			data := randomBytes(byte(i), 64<<10+i)
			if err := s.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
				t.Errorf("Put(%q): %v", key, err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for i := range n {
		wantContent(t, s, fmt.Sprintf("concurrent/%d/blob", i), randomBytes(byte(i), 64<<10+i))
	}
}

// testConcurrentSameKey races writers of one key while readers watch it:
// every read, and the final blob, must be exactly one writer's bytes.
func testConcurrentSameKey(t *testing.T, s blob.Store) {
	const writers, size = 8, 1 << 20
	const key = "contended"
	// Writer i writes size bytes of value i+1, so a mix is easy to spot.
	content := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, size) }
	whose := func(b []byte) (int, bool) {
		if len(b) != size {
			return 0, false
		}
		v := b[0]
		if v < 1 || v > writers || !bytes.Equal(b, bytes.Repeat([]byte{v}, size)) {
			return 0, false
		}
		return int(v) - 1, true
	}

	var writing sync.WaitGroup
	for i := range writers {
		writing.Go(func() {
			if err := s.Put(t.Context(), key, bytes.NewReader(content(i)), size); err != nil {
				t.Errorf("writer %d: %v", i, err)
			}
		})
	}
	var done atomic.Bool
	var reading sync.WaitGroup
	for r := range 4 {
		reading.Go(func() {
			for reads := 0; !done.Load() || reads == 0; reads++ {
				rc, _, err := s.Get(t.Context(), key)
				if errors.Is(err, blob.ErrNotFound) {
					continue // no writer finished yet
				}
				if err != nil {
					t.Errorf("reader %d: Get: %v", r, err)
					return
				}
				b, err := io.ReadAll(rc)
				rc.Close()
				if err != nil {
					t.Errorf("reader %d: %v", r, err)
					return
				}
				if _, ok := whose(b); !ok {
					t.Errorf("reader %d read %d bytes that no single writer wrote", r, len(b))
					return
				}
			}
		})
	}
	writing.Wait()
	done.Store(true)
	reading.Wait()
	if t.Failed() {
		return
	}
	if i, ok := whose(get(t, s, key)); !ok {
		t.Fatal("final blob is not any single writer's bytes")
	} else {
		t.Logf("writer %d won", i)
	}
}

func testPresignedLink(t *testing.T, s blob.Store) {
	p, ok := s.(blob.Presigner)
	if !ok {
		t.Skip("store does not presign links")
	}
	data := randomBytes(5, 100<<10)
	put(t, s, "presigned/blob.bin", data)
	link, err := p.PresignGet(t.Context(), "presigned/blob.bin", time.Minute)
	wantOK(t, "PresignGet", err)

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, link, nil)
	wantOK(t, "request for the link", err)
	resp, err := http.DefaultClient.Do(req)
	wantOK(t, "GET of the presigned link", err)
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	wantOK(t, "reading the presigned link", err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET of the presigned link: %s: %s", resp.Status, clip(got))
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("presigned link gave %d bytes, want the %d bytes put", len(got), len(data))
	}
}
