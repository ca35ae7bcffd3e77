package server

import (
	"context"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// maxLogOffset is past any log a task writes (1 PiB): a chunk said to
// start further is a slave's error, and would overflow the sizes.
const maxLogOffset = 1 << 50

// maxTailBytes bounds the log bytes the master holds for all running
// attempts together: past it, the tails updated longest ago are dropped.
const maxTailBytes = 64 << 20

type attemptKey struct {
	job, task string
	attempt   int
}

type tailEntry struct {
	key   attemptKey
	slave string
	log   model.LiveLog
}

// tailBook keeps the ends of the running attempts' logs that the slaves
// send with their heartbeats, in memory only: they serve the log page of a
// run in progress, and the stored log takes over when the run ends. It
// keeps what the heartbeats say of the slaves' input caches too.
type tailBook struct {
	mu      sync.Mutex
	byLease map[string]*tailEntry
	byKey   map[attemptKey]*tailEntry
	bytes   int
	max     int
	// caches are the slaves' input caches as their last heartbeats
	// described them, by slave id.
	caches map[string]model.CacheStats
}

func newTailBook(max int) *tailBook {
	return &tailBook{byLease: make(map[string]*tailEntry), byKey: make(map[attemptKey]*tailEntry), max: max,
		caches: make(map[string]model.CacheStats)}
}

// note takes a heartbeat's tails. runs are the slave's current runs, as
// the store has them: tails of other leases (a run canceled meanwhile, or
// a lease the slave made up) are ignored, and the tails of runs the slave
// no longer has are dropped.
func (b *tailBook) note(slaveID string, runs []model.Attempt, tails []protocol.Tail, now time.Time) {
	current := make(map[string]model.Attempt, len(runs))
	for _, a := range runs {
		current[a.Lease] = a
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for lease, e := range b.byLease {
		if _, ok := current[lease]; !ok && e.slave == slaveID {
			b.remove(lease)
		}
	}
	for _, t := range tails {
		a, ok := current[t.Lease]
		if !ok {
			continue
		}
		e := b.byLease[t.Lease]
		if e == nil {
			e = &tailEntry{key: attemptKey{a.JobID, a.TaskID, a.Attempt}, slave: slaveID}
			b.byLease[t.Lease] = e
			b.byKey[e.key] = e
		}
		b.bytes -= len(e.log.Stdout.Data) + len(e.log.Stderr.Data)
		e.log.Stdout = appendTail(e.log.Stdout, t.Stdout)
		e.log.Stderr = appendTail(e.log.Stderr, t.Stderr)
		e.log.At = now
		b.bytes += len(e.log.Stdout.Data) + len(e.log.Stderr.Data)
	}
	for b.bytes > b.max {
		b.evictOldest()
	}
}

// appendTail adds a chunk to a log's end and keeps the last
// protocol.TailBytes. A chunk that does not follow on (a gap, or a log the
// slave cut) replaces what was kept.
func appendTail(t model.LogTail, c protocol.TailChunk) model.LogTail {
	if len(c.Data) == 0 || c.Offset < 0 || c.Offset > maxLogOffset {
		return t
	}
	if c.Offset != t.Size() {
		t = model.LogTail{Offset: c.Offset}
	}
	// A fresh slice: the page may be reading the old one.
	data := make([]byte, 0, min(len(t.Data)+len(c.Data), protocol.TailBytes))
	all := len(t.Data) + len(c.Data)
	drop := max(0, all-protocol.TailBytes)
	if drop < len(t.Data) {
		data = append(data, t.Data[drop:]...)
		data = append(data, c.Data...)
	} else {
		data = append(data, c.Data[drop-len(t.Data):]...)
	}
	return model.LogTail{Offset: t.Offset + int64(drop), Data: data}
}

func (b *tailBook) remove(lease string) {
	if e := b.byLease[lease]; e != nil {
		b.bytes -= len(e.log.Stdout.Data) + len(e.log.Stderr.Data)
		delete(b.byLease, lease)
		if b.byKey[e.key] == e {
			delete(b.byKey, e.key)
		}
	}
}

func (b *tailBook) evictOldest() {
	var oldest string
	var at time.Time
	for lease, e := range b.byLease {
		if oldest == "" || e.log.At.Before(at) {
			oldest, at = lease, e.log.At
		}
	}
	b.remove(oldest)
}

// noteCache keeps what a heartbeat says of the slave's input cache.
func (b *tailBook) noteCache(slaveID string, c *protocol.CacheStats) {
	if c == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.caches[slaveID] = model.CacheStats{Items: c.Items, Bytes: c.Bytes, HotItems: c.HotItems, ColdItems: c.ColdItems,
		HotBytes: c.HotBytes, ColdBytes: c.ColdBytes}
}

func (b *tailBook) cache(slaveID string) (model.CacheStats, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c, ok := b.caches[slaveID]
	return c, ok
}

// forget drops the tails of a slave's runs and what it said of its cache
// (it was lost or left).
func (b *tailBook) forget(slaveID string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.caches, slaveID)
	for lease, e := range b.byLease {
		if e.slave == slaveID {
			b.remove(lease)
		}
	}
}

func (b *tailBook) get(k attemptKey) (model.LiveLog, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.byKey[k]; e != nil {
		return e.log, true
	}
	return model.LiveLog{}, false
}

// LiveLog returns the end of a running attempt's logs, as its slave last
// sent them; false when the master has none (the attempt is not running,
// or has written nothing yet, or its slave has not sent it yet).
func (m *Master) LiveLog(jobID, taskID string, attempt int) (model.LiveLog, bool) {
	return m.tails.get(attemptKey{jobID, taskID, attempt})
}

// SlaveCache is a slave's input cache as its last heartbeat described it;
// false when it said nothing of one.
func (m *Master) SlaveCache(slaveID string) (model.CacheStats, bool) {
	return m.tails.cache(slaveID)
}

// RunningOn lists the attempts a slave runs now, as the store has them.
func (m *Master) RunningOn(ctx context.Context, slaveID string) ([]model.Attempt, error) {
	return m.store.RunningOn(ctx, slaveID)
}

// OldestQueued returns the queued attempt that has waited longest in the
// queue (the lowest id among those with a queue entry); false when none
// waits there.
func (m *Master) OldestQueued(ctx context.Context) (model.Attempt, bool, error) {
	as, err := m.store.Enqueued(ctx, 0, 1)
	if err != nil || len(as) == 0 {
		return model.Attempt{}, false, err
	}
	return as[0], true, nil
}
