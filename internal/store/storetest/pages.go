package storetest

import (
	"slices"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// testPages: pages of any size, walked with their cursors, give the list
// whole, in order, each attempt once, with or without a state filter; a
// second job's attempts never leak in.
func testPages(t *testing.T, h *harness) {
	h.job("pg", 7, 1)
	h.job("other", 3, 0)
	for _, i := range []int{1, 4, 6} { // three failures: their second attempts are queued
		h.finish(h.start("pg", taskID(i), uint64(i+1)).Lease, 1, false)
	}
	key := func(a model.Attempt) string { return a.TaskID + "/" + string(rune('0'+a.Attempt)) }
	for _, states := range [][]model.State{nil, {model.Queued}, {model.Failed}} {
		want, err := h.list("pg", states...)
		if err != nil {
			t.Fatal(err)
		}
		for _, size := range []int{1, 2, 3, 100} {
			var got []model.Attempt
			p := store.AttemptPage{States: states, Limit: size}
			for {
				page, err := h.s.PageAttempts(h.ctx, "pg", p)
				if err != nil {
					t.Fatalf("PageAttempts(%+v): %v", p, err)
				}
				if len(page) > size {
					t.Fatalf("a page of %d attempts for a limit of %d", len(page), size)
				}
				got = append(got, page...)
				if len(page) < size {
					break
				}
				c := store.CursorOf(page[len(page)-1])
				p.After = &c
			}
			if !slices.EqualFunc(got, want, func(a, b model.Attempt) bool { return key(a) == key(b) }) {
				t.Errorf("states %v, pages of %d: %d attempts %v; want %d", states, size, len(got), got, len(want))
			}
		}
	}
	all, _ := h.list("pg")
	if len(all) != 10 || all[2].TaskID != taskID(1) || all[2].Attempt != 1 || all[2].Index != 1 {
		t.Fatalf("attempts: %d, third %+v", len(all), all[2])
	}
	rest, err := h.s.PageAttempts(h.ctx, "pg", store.AttemptPage{After: &store.Cursor{Index: 6, Attempt: 0}})
	if err != nil || len(rest) != 1 || rest[0].Index != 6 || rest[0].Attempt != 1 {
		t.Fatalf("the page after the last first attempt: %+v, %v", rest, err)
	}
	end, err := h.s.PageAttempts(h.ctx, "pg", store.AttemptPage{After: &store.Cursor{Index: 6, Attempt: 1}, Limit: 5})
	if err != nil || len(end) != 0 {
		t.Fatalf("the page past the end: %+v, %v", end, err)
	}
	_, err = h.s.PageAttempts(h.ctx, "nope", store.AttemptPage{Limit: 5})
	wantErr(t, err, model.ErrNotFound, "PageAttempts of an unknown job")
}
