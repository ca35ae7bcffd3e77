package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
)

// A large job is written in parts so that its first tasks start while the
// rest are still being written: a 10,000-task job's single transaction
// took most of the time from its POST to its first start.
const (
	// firstPart is how many tasks the first transaction holds, with the
	// job's row: the ones that start first, enough to fill a fleet's free
	// slots while the rest are written.
	firstPart = 500
	// laterPart bounds each later transaction: on SQLite, with its one
	// writer, the first starts wait for the part being written, and each
	// part renews the writer's claim.
	laterPart = 1000
	// writeClaim is how long a part may take before the job counts as
	// a submission cut short (its master died): such a job is removed,
	// by the sweep or by a submission of the same id.
	writeClaim = 30 * time.Second
	// unwrittenSweep is how often a master looks for such jobs.
	unwrittenSweep = time.Minute
)

// startOrder sorts a job's tasks into the order in which they are written:
// that of their queue priority (the longest expected first, retries
// before), then as submitted. The first part then holds the tasks that
// the feeder would put in the queue first anyway.
func startOrder(tasks []model.NewTask) {
	slices.SortStableFunc(tasks, func(a, b model.NewTask) int {
		return cmp.Compare(a.Priority, b.Priority)
	})
}

// create writes job in parts: BeginJob with the first, then WriteTasks,
// waking the feeder as soon as the first part is in. A part that fails
// removes what was written, so that a submission lands whole or not at
// all (its first tasks may have run meanwhile: their results go with it).
func (m *Master) create(ctx context.Context, job model.NewJob) error {
	startOrder(job.Tasks)
	first := min(firstPart, len(job.Tasks))
	err := m.store.BeginJob(ctx, job, first, m.now().Add(writeClaim), m.now())
	if errors.Is(err, model.ErrExists) && m.dropUnwritten(ctx, job.ID, m.now()) == nil {
		// The id was held by a submission cut short: this one takes it.
		err = m.store.BeginJob(ctx, job, first, m.now().Add(writeClaim), m.now())
	}
	if err != nil {
		return err
	}
	m.poke()
	for from := first; from < len(job.Tasks); from += laterPart {
		to := min(from+laterPart, len(job.Tasks))
		if err = m.store.WriteTasks(ctx, job, from, to, m.now().Add(writeClaim), m.now()); err != nil {
			break
		}
	}
	if err == nil {
		return nil
	}
	// The writer drops its own job whatever its claim: it is the one
	// that knows the job will not be whole. The request's context may be
	// what ended, so the drop gets its own.
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if derr := m.dropUnwritten(dctx, job.ID, m.now().Add(2*writeClaim)); derr != nil && !errors.Is(derr, model.ErrNotFound) {
		m.log.WarnContext(ctx, "could not remove a job whose submission failed; the sweep will", "job", job.ID, "err", derr)
	}
	return fmt.Errorf("writing its tasks: %w", err)
}

// dropUnwritten removes a job whose writing claim ran out before before,
// with the outputs its first tasks may have uploaded.
func (m *Master) dropUnwritten(ctx context.Context, id string, before time.Time) error {
	if err := m.store.DropUnwritten(ctx, id, before); err != nil {
		return err
	}
	var keys []string
	err := m.blobs.List(ctx, "outputs/"+keySafe(id)+"/", func(key string, _ blob.Info) error {
		keys = append(keys, key)
		return nil
	})
	for _, k := range keys {
		if err == nil {
			err = m.blobs.Delete(ctx, k)
		}
	}
	// Outputs left behind cost space, not correctness: the job's rows,
	// which name them, are gone.
	m.log.InfoContext(ctx, "a job whose submission was cut short was removed", "job", id, "outputs", len(keys), "err", err)
	return nil
}

// sweepUnwritten removes, every unwrittenSweep, the jobs whose submission
// was cut short: their master died between two parts.
func (m *Master) sweepUnwritten(ctx context.Context) error {
	return m.every(ctx, unwrittenSweep, "removing submissions cut short", func(ctx context.Context) error {
		_, err := m.SweepUnwrittenOnce(ctx)
		return err
	})
}

// SweepUnwrittenOnce runs one round of the sweep and returns how many jobs
// it removed.
func (m *Master) SweepUnwrittenOnce(ctx context.Context) (int, error) {
	ids, err := m.store.Unwritten(ctx, m.now(), 100)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, id := range ids {
		switch err := m.dropUnwritten(ctx, id, m.now()); {
		case err == nil:
			n++
		case errors.Is(err, model.ErrConflict), errors.Is(err, model.ErrNotFound):
			// Its writer came back in time, or another master removed it.
		default:
			return n, err
		}
	}
	return n, nil
}
