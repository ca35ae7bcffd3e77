package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

func chunk(off int64, s string) protocol.TailChunk {
	return protocol.TailChunk{Offset: off, Data: []byte(s)}
}

// TestTailBook follows a run's logs through heartbeats: chunks append,
// a gap replaces, forged leases and other slaves' runs are ignored, a
// finished run's tail goes, and a slave's oversized chunk is cut to the
// last TailBytes.
func TestTailBook(t *testing.T) {
	now := time.Unix(1e9, 0)
	runs := []model.Attempt{{JobID: "j", TaskID: "t", Attempt: 1, Lease: "L1"}}
	k := attemptKey{"j", "t", 1}
	b := newTailBook(1 << 20)
	b.note("s1", runs, []protocol.Tail{{Lease: "L1", Stdout: chunk(0, "one\n")}, {Lease: "forged", Stdout: chunk(0, "x")}}, now)
	b.note("s1", runs, []protocol.Tail{{Lease: "L1", Stdout: chunk(4, "two\n"), Stderr: chunk(0, "<script>")}}, now)
	got, ok := b.get(k)
	if !ok || string(got.Stdout.Data) != "one\ntwo\n" || got.Stdout.Offset != 0 || string(got.Stderr.Data) != "<script>" {
		t.Fatalf("after two beats: %v %+v", ok, got)
	}
	if len(b.byLease) != 1 {
		t.Errorf("a forged lease was kept: %d entries", len(b.byLease))
	}
	// A gap: the slave sent only the end of a burst.
	b.note("s1", runs, []protocol.Tail{{Lease: "L1", Stdout: chunk(100, "late\n")}}, now)
	if got, _ := b.get(k); got.Stdout.Offset != 100 || string(got.Stdout.Data) != "late\n" || got.Stdout.Size() != 105 {
		t.Errorf("after a gap: %+v", got.Stdout)
	}
	// Another slave cannot write to this run, nor drop it.
	b.note("s2", nil, []protocol.Tail{{Lease: "L1", Stdout: chunk(105, "evil")}}, now)
	if got, _ := b.get(k); string(got.Stdout.Data) != "late\n" {
		t.Errorf("another slave changed the tail: %q", got.Stdout.Data)
	}
	// An oversized chunk keeps only its end.
	huge := strings.Repeat("a", 3*protocol.TailBytes) + "END"
	b.note("s1", runs, []protocol.Tail{{Lease: "L1", Stdout: chunk(105, huge)}}, now)
	got, _ = b.get(k)
	if len(got.Stdout.Data) != protocol.TailBytes || !bytes.HasSuffix(got.Stdout.Data, []byte("END")) || got.Stdout.Size() != 105+int64(len(huge)) {
		t.Errorf("oversized: %d bytes from %d", len(got.Stdout.Data), got.Stdout.Offset)
	}
	// Offsets no log reaches are ignored.
	b.note("s1", runs, []protocol.Tail{{Lease: "L1", Stdout: chunk(1<<62, "x"), Stderr: chunk(-1, "y")}}, now)
	if got, _ := b.get(k); got.Stdout.Size() != 105+int64(len(huge)) || string(got.Stderr.Data) != "<script>" {
		t.Errorf("absurd offsets changed the tail: %d, %q", got.Stdout.Size(), got.Stderr.Data)
	}
	// The run ended: the next heartbeat without it drops its tail.
	b.note("s1", nil, nil, now)
	if _, ok := b.get(k); ok || b.bytes != 0 {
		t.Errorf("tail of an ended run kept (%d bytes)", b.bytes)
	}
}

// TestCacheStatsOfSlaves keeps each slave's last word on its cache, and
// forgets it with the slave.
func TestCacheStatsOfSlaves(t *testing.T) {
	b := newTailBook(1 << 20)
	b.noteCache("s1", &protocol.CacheStats{Items: 2, Bytes: 10, HotItems: 1, ColdItems: 1})
	b.noteCache("s1", nil) // a heartbeat that says nothing of it changes nothing
	if c, ok := b.cache("s1"); !ok || c.Items != 2 || c.Bytes != 10 {
		t.Errorf("cache of s1: %+v %v", c, ok)
	}
	if r, ok := (model.CacheStats{HotItems: 3, ColdItems: 1}).HitRate(); !ok || r != 0.75 {
		t.Errorf("hit rate %v %v", r, ok)
	}
	if _, ok := (model.CacheStats{}).HitRate(); ok {
		t.Error("a hit rate without any fetch")
	}
	b.forget("s1")
	if _, ok := b.cache("s1"); ok {
		t.Error("the cache of a slave that left is kept")
	}
}

// TestTailBookBound keeps the bytes of all tails under the bound by
// dropping the tails updated longest ago.
func TestTailBookBound(t *testing.T) {
	b := newTailBook(3 * protocol.TailBytes)
	full := strings.Repeat("x", protocol.TailBytes)
	var runs []model.Attempt
	for i, lease := range []string{"a", "b", "c", "d"} {
		runs = append(runs, model.Attempt{JobID: "j", TaskID: lease, Lease: lease})
		b.note("s", runs, []protocol.Tail{{Lease: lease, Stdout: chunk(0, full)}}, time.Unix(int64(i), 0))
	}
	if b.bytes > b.max || len(b.byLease) != 3 {
		t.Errorf("%d bytes in %d tails, bound %d", b.bytes, len(b.byLease), b.max)
	}
	if _, ok := b.get(attemptKey{"j", "a", 0}); ok {
		t.Error("the oldest tail was kept, not dropped")
	}
	if _, ok := b.get(attemptKey{"j", "d", 0}); !ok {
		t.Error("the newest tail was dropped")
	}
}
