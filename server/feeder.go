package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/store"
)

// feedBatch bounds one round of puts.
const feedBatch = 1000

// feed puts queued attempts into the queue: at once when poked (a submit, a
// retry, a lost run), and every second in case a poke was missed or a put
// failed.
func (m *Master) feed(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		for {
			n, err := m.FeedOnce(ctx)
			if err != nil {
				if ctx.Err() == nil {
					m.log.Warn("feeder failed; will try again", "err", err)
				}
				break
			}
			if n < feedBatch {
				break
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-m.wake:
		case <-t.C:
		}
	}
}

// FeedOnce puts one batch, as planFeed and orderFeed decide, and returns
// how many attempts it put.
func (m *Master) FeedOnce(ctx context.Context) (int, error) {
	backlog, err := m.store.Backlog(ctx)
	if err != nil {
		return 0, err
	}
	room, err := m.userRoom(ctx, backlog)
	if err != nil {
		return 0, err
	}
	var perJob [][]model.Attempt
	for _, t := range planFeed(backlog, m.cfg.QueueWindow, feedBatch, room) {
		as, err := m.store.Waiting(ctx, t.JobID, t.N)
		if err != nil {
			return 0, err
		}
		// The feeders of other masters may have read the same rows: each
		// attempt goes to the one that claims it.
		if as, err = m.store.Claim(ctx, as); err != nil {
			return 0, err
		}
		perJob = append(perJob, as)
	}
	put := 0
	ordered := orderFeed(perJob)
	for i, a := range ordered {
		if err := m.enqueue(ctx, a); err != nil {
			// The claims not put wait for the next round (the reconciler
			// frees those this cannot).
			for _, b := range ordered[i:] {
				_ = m.store.Unenqueue(ctx, b.ID, 0)
			}
			return put, err
		}
		put++
	}
	if len(backlog) == 0 {
		return m.hedge(ctx)
	}
	return put, nil
}

// hedge gives stragglers a second run while the queue is empty and slots
// idle (see lifecycle.Hedge): at most one per idle slot. It returns how
// many it put.
func (m *Master) hedge(ctx context.Context) (int, error) {
	stragglers, err := m.store.Stragglers(ctx, m.now(), feedBatch)
	if err != nil || len(stragglers) == 0 {
		return 0, err
	}
	st, err := m.queue.Stats(ctx)
	if err != nil || st.Ready > 0 {
		return 0, err
	}
	slaves, err := m.store.ListSlaves(ctx, true)
	if err != nil {
		return 0, err
	}
	idle := 0
	for _, s := range slaves {
		idle += s.Slots
	}
	runs, err := m.store.Runs(ctx)
	if err != nil {
		return 0, err
	}
	idle -= runs
	put := 0
	for _, a := range stragglers[:max(0, min(idle, len(stragglers)))] {
		h, err := m.store.HedgeAttempt(ctx, a.ID, m.now())
		if errors.Is(err, model.ErrConflict) {
			continue // it ended meanwhile
		} else if err != nil {
			return put, err
		}
		body, err := json.Marshal(protocol.Entry{AttemptID: h.ID, JobID: h.JobID, TaskID: h.TaskID, Attempt: h.Attempt,
			Token: h.Hedge.Token, Priority: model.RetryBase})
		if err != nil {
			return put, err
		}
		// Not recorded as the attempt's entry: a lost one leaves the
		// attempt with its first run, as before the hedge.
		if _, err := m.queue.Put(ctx, queue.Entry{Body: body, Priority: model.RetryBase, TTR: m.cfg.TTR}); err != nil {
			return put, fmt.Errorf("queue put: %w", err)
		}
		m.log.InfoContext(ctx, "straggler hedged", "job", h.JobID, "task", h.TaskID, "attempt", h.Attempt, "slave", h.SlaveID)
		put++
	}
	return put, nil
}

// userRoom is the room of each user (see userRoom in feedpolicy.go) when
// the backlog is of several users, nil otherwise. While users share the
// slots this way, each finish wakes the feeder: it frees room.
func (m *Master) userRoom(ctx context.Context, backlog []store.JobBacklog) (map[string]int, error) {
	demand := make(map[string]int)
	for _, b := range backlog {
		demand[b.User] += b.Waiting
	}
	if len(demand) < 2 {
		m.sharing.Store(false)
		return nil, nil
	}
	slaves, err := m.store.ListSlaves(ctx, true)
	if err != nil {
		return nil, err
	}
	slots := 0
	for _, s := range slaves {
		slots += s.Slots
	}
	if slots == 0 {
		// Nothing runs: the windows alone keep the queue short.
		m.sharing.Store(false)
		return nil, nil
	}
	load, err := m.store.UserLoad(ctx)
	if err != nil {
		return nil, err
	}
	for u, n := range load {
		demand[u] += n
	}
	m.sharing.Store(true)
	return userRoom(fairShares(demand, slots), load), nil
}

// enqueue puts one attempt and records its entry. If the attempt changed
// meanwhile (canceled, say), the entry is taken back.
func (m *Master) enqueue(ctx context.Context, a model.Attempt) error {
	body, err := json.Marshal(protocol.Entry{AttemptID: a.ID, JobID: a.JobID, TaskID: a.TaskID, Attempt: a.Attempt, Token: a.Token, Priority: a.Priority,
		EnqueuedMS: m.now().UnixMilli()})
	if err != nil {
		return err
	}
	id, err := m.queue.Put(ctx, queue.Entry{Body: body, Priority: a.Priority, TTR: m.cfg.TTR})
	if err != nil {
		return fmt.Errorf("queue put: %w", err)
	}
	err = m.store.MarkEnqueued(ctx, a.ID, a.Token, id)
	if errors.Is(err, model.ErrConflict) {
		_ = m.queue.Delete(ctx, id)
		return nil
	}
	return err
}

// reconcile finds queued attempts whose queue entry vanished (the queue
// restarted without its log, or lost it) and has the feeder put them again.
func (m *Master) reconcile(ctx context.Context) error {
	return m.every(ctx, m.cfg.ReconcileInterval, "reconciler", func(ctx context.Context) error {
		_, err := m.ReconcileOnce(ctx)
		return err
	})
}

// ReconcileOnce checks every enqueued attempt once and returns how many had
// lost their entry.
func (m *Master) ReconcileOnce(ctx context.Context) (int, error) {
	lost := 0
	var after int64
	for {
		page, err := m.store.Enqueued(ctx, after, 500)
		if err != nil {
			return lost, err
		}
		for _, a := range page {
			if a.EntryID == 0 {
				// Claimed by a feeder and not put yet: ReclaimOnce's.
				continue
			}
			ok, err := m.queue.Exists(ctx, a.EntryID)
			if err != nil {
				return lost, fmt.Errorf("queue: %w", err)
			}
			if !ok {
				if err := m.store.Unenqueue(ctx, a.ID, a.EntryID); err != nil {
					return lost, err
				}
				lost++
			}
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].ID
	}
	if lost > 0 {
		m.log.Warn("queue lost entries; putting them again", "attempts", lost)
		_ = m.store.AddEvent(ctx, model.Event{At: m.now(), Kind: model.EventQueueEntriesLost, Attempt: -1,
			Detail: fmt.Sprintf("%d queued attempts had no entry in the queue; put again", lost)})
		m.poke()
	}
	return lost, nil
}

// reclaim frees, every third of the heartbeat timeout, the attempts that a
// feeder claimed and did not put: its master died between the two. Two
// rounds tell a dead feeder from a busy one, so they are put again within
// the heartbeat timeout, as the runs of a lost slave are. It reads the
// store alone, unlike the reconciler, which asks the queue about each
// entry and runs less often.
func (m *Master) reclaim(ctx context.Context) error {
	return m.every(ctx, max(m.cfg.HeartbeatTimeout/3, 100*time.Millisecond), "freeing claims", func(ctx context.Context) error {
		_, err := m.ReclaimOnce(ctx)
		return err
	})
}

// ReclaimOnce runs one round of reclaim and returns how many attempts it
// freed: those claimed without an entry on this round and the last.
func (m *Master) ReclaimOnce(ctx context.Context) (int, error) {
	freed := 0
	var after int64
	for {
		page, err := m.store.Enqueued(ctx, after, 500)
		if err != nil {
			return freed, err
		}
		for _, a := range page {
			if a.EntryID != 0 || !m.claims.stale(a.ID) {
				continue
			}
			if err := m.store.Unenqueue(ctx, a.ID, 0); err != nil {
				return freed, err
			}
			freed++
		}
		if len(page) < 500 {
			break
		}
		after = page[len(page)-1].ID
	}
	m.claims.round()
	if freed > 0 {
		m.log.Warn("attempts claimed by a feeder that did not put them (its master died?); putting them again", "attempts", freed)
		m.poke()
	}
	return freed, nil
}

// claimSeen remembers the attempts that reclaim found claimed but not yet
// put (entry id 0), for one round: a feeder puts its claims within
// seconds, so one still without an entry a round later lost its feeder.
type claimSeen struct {
	mu         sync.Mutex
	last, this map[int64]bool
}

// stale notes that attempt id is claimed without an entry, and reports
// whether it was so on the previous round too.
func (c *claimSeen) stale(id int64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.this == nil {
		c.this = map[int64]bool{}
	}
	c.this[id] = true
	return c.last[id]
}

// round ends a round of reclaim.
func (c *claimSeen) round() {
	c.mu.Lock()
	c.last, c.this = c.this, nil
	c.mu.Unlock()
}
