package storetest

import (
	"sync"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
)

// testClaim: two feeders (of two masters) claim the same waiting attempts
// at once; each attempt goes to one of them. A claim counts as in the
// queue, with entry 0, until MarkEnqueued records its entry; Unenqueue
// with entry 0 gives an unrecorded claim back to the feed.
func testClaim(t *testing.T, h *harness) {
	h.job("c", 20, 0)
	waiting, err := h.s.Waiting(h.ctx, "c", 100)
	if err != nil || len(waiting) != 20 {
		t.Fatalf("Waiting: %d attempts, %v", len(waiting), err)
	}
	var wg sync.WaitGroup
	claimed := make([][]model.Attempt, 2)
	errs := make([]error, 2)
	for i := range claimed {
		wg.Add(1)
		go func() {
			defer wg.Done()
			claimed[i], errs[i] = h.s.Claim(h.ctx, waiting)
		}()
	}
	wg.Wait()
	seen := map[int64]bool{}
	for i, as := range claimed {
		if errs[i] != nil {
			t.Fatalf("Claim %d: %v", i, errs[i])
		}
		for _, a := range as {
			if seen[a.ID] {
				t.Errorf("attempt %d claimed by both", a.ID)
			}
			seen[a.ID] = true
		}
	}
	if len(seen) != len(waiting) {
		t.Errorf("%d attempts claimed, want %d", len(seen), len(waiting))
	}
	if rest, err := h.s.Waiting(h.ctx, "c", 100); err != nil || len(rest) != 0 {
		t.Errorf("Waiting after the claims: %d attempts, %v; want none", len(rest), err)
	}
	enq, err := h.s.Enqueued(h.ctx, 0, 100)
	if err != nil || len(enq) != len(waiting) {
		t.Fatalf("Enqueued: %d attempts, %v; want %d", len(enq), err, len(waiting))
	}
	for _, a := range enq {
		if a.EntryID != 0 {
			t.Errorf("claimed attempt %d has entry %d, want 0", a.ID, a.EntryID)
		}
	}
	if err := h.s.MarkEnqueued(h.ctx, enq[0].ID, enq[0].Token, 77); err != nil {
		t.Fatal(err)
	}
	for _, a := range enq {
		if err := h.s.Unenqueue(h.ctx, a.ID, 0); err != nil {
			t.Fatal(err)
		}
	}
	back, err := h.s.Waiting(h.ctx, "c", 100)
	if err != nil || len(back) != len(waiting)-1 {
		t.Errorf("Waiting after Unenqueue of the claims: %d attempts, %v; want %d (the one recorded stays)", len(back), err, len(waiting)-1)
	}
}
