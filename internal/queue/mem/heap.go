package mem

import (
	"container/heap"
	"time"
)

type state int

const (
	ready state = iota
	delayed
	reserved
	buried
)

// entry is one queue entry. It sits in at most one heap at a time (ready,
// delayed or reserved); a buried entry sits in none.
type entry struct {
	id       uint64
	body     []byte
	priority uint32
	ttr      time.Duration
	state    state
	at       time.Time // delayed: when it becomes ready; reserved: when its TTR runs out
	owner    *Consumer // reserved: who holds it
	index    int       // position in its heap, kept by entryHeap for heap.Remove and heap.Fix
}

// entryHeap is a container/heap of entries; less decides the order so that
// one type serves the ready heap (by priority) and the timed heaps (by time).
type entryHeap struct {
	items []*entry
	less  func(a, b *entry) bool
}

var _ heap.Interface = (*entryHeap)(nil)

func byPriority(a, b *entry) bool {
	if a.priority != b.priority {
		return a.priority < b.priority
	}
	return a.id < b.id
}

func byTime(a, b *entry) bool {
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	return a.id < b.id
}

func (h *entryHeap) Len() int           { return len(h.items) }
func (h *entryHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }

func (h *entryHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index = i
	h.items[j].index = j
}

func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.index = len(h.items)
	h.items = append(h.items, e)
}

func (h *entryHeap) Pop() any {
	n := len(h.items) - 1
	e := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	e.index = -1
	return e
}

// peek returns the first entry, or nil.
func (h *entryHeap) peek() *entry {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}
