package server

import (
	"context"
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/store"
)

// retain deletes, every RetentionInterval, the jobs submitted more than
// Retention ago with their logs and artifacts, and the events and slave
// registrations older than that.
func (m *Master) retain(ctx context.Context) error {
	if m.cfg.Retention <= 0 {
		return nil
	}
	return m.every(ctx, m.cfg.RetentionInterval, "retention", func(ctx context.Context) error {
		_, err := m.RetainOnce(ctx)
		return err
	})
}

// RetainOnce runs one round of retention and returns how many jobs it
// deleted. A job's outputs go before its rows: a round cut short leaves
// rows whose links answer 404, which the next round deletes, never blobs
// that nothing points to.
func (m *Master) RetainOnce(ctx context.Context) (int, error) {
	cutoff := m.now().Add(-m.cfg.Retention)
	deleted := 0
	for {
		ids, err := m.store.OldJobs(ctx, cutoff, 100)
		if err != nil || len(ids) == 0 {
			return deleted, err
		}
		for _, id := range ids {
			blobs, err := m.deleteOutputs(ctx, id, cutoff)
			if err != nil {
				return deleted, fmt.Errorf("job %s: %w", id, err)
			}
			if err := m.store.DeleteJob(ctx, id); err != nil {
				return deleted, fmt.Errorf("job %s: %w", id, err)
			}
			deleted++
			m.log.Info("old job deleted", "job", id, "outputs", blobs)
		}
		if n, err := m.store.PruneBefore(ctx, cutoff); err != nil {
			return deleted, err
		} else if n > 0 {
			m.log.Info("old events and slave registrations deleted", "rows", n)
		}
	}
}

// deleteOutputs deletes the outputs of a job: those its attempts name,
// and those under its folder written before cutoff (the uploads of runs
// that were superseded). A blob written after cutoff under the same folder
// belongs to a newer job whose id maps to the same folder name, and stays.
func (m *Master) deleteOutputs(ctx context.Context, jobID string, cutoff time.Time) (int, error) {
	keys := map[string]bool{}
	p := store.AttemptPage{Limit: 1000}
	for {
		page, err := m.store.PageAttempts(ctx, jobID, p)
		if err != nil {
			return 0, err
		}
		for _, a := range page {
			for _, k := range []string{a.Outputs.Stdout, a.Outputs.Stderr, a.Outputs.Artifacts} {
				if k != "" {
					keys[k] = true
				}
			}
		}
		if len(page) < p.Limit {
			break
		}
		c := store.CursorOf(page[len(page)-1])
		p.After = &c
	}
	err := m.blobs.List(ctx, "outputs/"+keySafe(jobID)+"/", func(key string, info blob.Info) error {
		if info.ModTime.Before(cutoff) {
			keys[key] = true
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for k := range keys {
		if err := m.blobs.Delete(ctx, k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
