package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
)

// testSecret: the first value stored under a name is the one every caller
// gets, concurrent callers included, and names are independent.
func testSecret(t *testing.T, h *harness) {
	first := bytes.Repeat([]byte{0x00, 0xff, 'k'}, 11) // binary, with a NUL
	got, err := h.s.Secret(h.ctx, "link_key", first)
	if err != nil || !bytes.Equal(got, first) {
		t.Fatalf("first Secret = %x, %v; want %x", got, err, first)
	}
	got, err = h.s.Secret(h.ctx, "link_key", []byte("another value"))
	if err != nil || !bytes.Equal(got, first) {
		t.Errorf("second Secret = %x, %v; want the first value %x", got, err, first)
	}

	const n = 8
	var wg sync.WaitGroup
	vals := make([][]byte, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals[i], errs[i] = h.s.Secret(h.ctx, "raced", []byte(fmt.Sprintf("value-%d", i)))
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || !bytes.Equal(vals[i], vals[0]) {
			t.Errorf("racing caller %d got %q, %v; caller 0 got %q", i, vals[i], errs[i], vals[0])
		}
	}
	if again, err := h.s.Secret(h.ctx, "raced", []byte("late")); err != nil || !bytes.Equal(again, vals[0]) {
		t.Errorf("after the race: %q, %v; want %q", again, err, vals[0])
	}

	for _, bad := range []struct {
		name  string
		value []byte
	}{{"", []byte("x")}, {"empty", nil}, {string(bytes.Repeat([]byte("n"), 65)), []byte("x")}, {"big", make([]byte, 1025)}} {
		if _, err := h.s.Secret(h.ctx, bad.name, bad.value); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("Secret(%.10q, %d bytes) = %v; want ErrInvalid", bad.name, len(bad.value), err)
		}
	}
}
