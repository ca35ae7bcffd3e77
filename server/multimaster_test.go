package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/server"
)

// masters returns n masters over one store and one queue, as several
// master processes share a database and a beanstalkd tube.
func masters(tb testing.TB, st store.Store, q queue.Queue, n int) []*server.Master {
	tb.Helper()
	blobs, err := local.New(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	var ms []*server.Master
	for range n {
		m, err := server.New(st, q, blobs, allInputs{}, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			tb.Fatal(err)
		}
		ms = append(ms, m)
	}
	return ms
}

// run runs m's background loops until the test ends.
func run(tb testing.TB, m *server.Master) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
}

func sharedStore(t *testing.T) store.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// A job submitted to a master whose loops do not run (they are busy, or
// it is about to die) is fed by another master's feeder, which looks at
// the store every second.
func TestSubmitFedByAnotherMaster(t *testing.T) {
	q := mem.New()
	defer q.Close()
	ms := masters(t, sharedStore(t), q, 2)
	run(t, ms[1])
	tasks := benchTasks(3)
	if _, err := ms[0].Submit(context.Background(), server.Submission{ID: "on-a", Tasks: tasks}); err != nil {
		t.Fatal(err)
	}
	if started, _ := startAll(t, ms[0], q, 5*time.Second); started != len(tasks) {
		t.Errorf("%d attempts started, want %d", started, len(tasks))
	}
}

// Three masters feed at once, each woken by the submissions it takes. Two
// feeders may put the same attempt: the loser takes its entry back, and an
// entry a slave reserved before that is refused at its start. Every
// attempt starts once.
func TestFeedersOfSeveralMasters(t *testing.T) {
	q := mem.New()
	defer q.Close()
	ms := masters(t, sharedStore(t), q, 3)
	for _, m := range ms {
		run(t, m)
	}
	want := 0
	for i, m := range ms {
		tasks := benchTasks(100)
		want += len(tasks)
		if _, err := m.Submit(context.Background(), server.Submission{ID: fmt.Sprint("job-", i), Tasks: tasks}); err != nil {
			t.Fatal(err)
		}
	}
	started, refused := startAll(t, ms[1], q, 5*time.Second)
	if started != want {
		t.Errorf("%d attempts started, want %d", started, want)
	}
	t.Logf("%d attempts started, %d duplicate entries refused", started, refused)
}

// startAll reserves entries until none comes for a second (or within first
// for the first) and starts each on m for one slave; it returns how many
// attempts started, failing on one started twice, and how many entries
// were refused as stale.
func startAll(t *testing.T, m *server.Master, q queue.Queue, first time.Duration) (started, refused int) {
	t.Helper()
	ctx := context.Background()
	slave, err := m.Register(ctx, protocol.Register{Hostname: "h", Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := q.NewConsumer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[int64]bool{}
	for wait := first; ; wait = time.Second {
		res, err := c.Reserve(ctx, wait)
		if errors.Is(err, queue.ErrTimeout) {
			return len(seen), refused
		} else if err != nil {
			t.Fatal(err)
		}
		var e protocol.Entry
		if err := json.Unmarshal(res.Body, &e); err != nil {
			t.Fatal(err)
		}
		_, _, err = m.Start(ctx, protocol.Start{SlaveID: slave.ID, EntryID: res.ID, Entry: e})
		switch {
		case errors.Is(err, model.ErrConflict):
			refused++
		case err != nil:
			t.Fatal(err)
		case seen[e.AttemptID]:
			t.Errorf("attempt %d started twice", e.AttemptID)
		}
		seen[e.AttemptID] = true
		_ = c.Delete(ctx, res.ID)
	}
}

// BenchmarkSubmitToQueued measures the time from a submission to its first
// queue entry when the master that took it runs the feeder (own: its
// submit wakes it) and when only another master does (other: it finds the
// job on its next round, as a leader would without a wake-up across
// masters).
func BenchmarkSubmitToQueued(b *testing.B) {
	for _, name := range []string{"sqlite", "mysql"} {
		for _, feeder := range []string{"own", "other"} {
			b.Run(name+"/"+feeder, func(b *testing.B) {
				st := benchStores[name](b)
				defer st.Close()
				q := mem.New()
				defer q.Close()
				ms := masters(b, st, q, 2)
				if feeder == "own" {
					run(b, ms[0])
				} else {
					run(b, ms[1])
				}
				c, err := q.NewConsumer(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				for i := 0; b.Loop(); i++ {
					if _, err := ms[0].Submit(context.Background(), server.Submission{ID: fmt.Sprint("j", i), Tasks: benchTasks(1)}); err != nil {
						b.Fatal(err)
					}
					res, err := c.Reserve(context.Background(), 10*time.Second)
					if err != nil {
						b.Fatal(err)
					}
					_ = c.Delete(context.Background(), res.ID)
				}
			})
		}
	}
}

// A feeder that claimed attempts and died before putting them (its master
// was killed) leaves them claimed without an entry: the reconciler frees
// them on its second round that finds them so, and they are fed again.
func TestReconcilerFreesClaimsOfADeadFeeder(t *testing.T) {
	f := newFixture(t, server.Config{})
	f.submit("j", "a", "b")
	waiting, err := f.st.Waiting(f.ctx, "j", 10)
	if err != nil {
		t.Fatal(err)
	}
	if claimed, err := f.st.Claim(f.ctx, waiting); err != nil || len(claimed) != 2 {
		t.Fatalf("claimed %d, %v; want 2", len(claimed), err)
	}
	if again, err := f.st.Claim(f.ctx, waiting); err != nil || len(again) != 0 {
		t.Fatalf("claimed %d again, %v; want none", len(again), err)
	}
	if n, err := f.m.FeedOnce(f.ctx); err != nil || n != 0 {
		t.Fatalf("fed %d, %v while claimed; want none", n, err)
	}
	// The reconciler leaves claims alone; reclaim frees them on its
	// second round.
	if lost, err := f.m.ReconcileOnce(f.ctx); err != nil || lost != 0 {
		t.Fatalf("reconciler freed %d claims, %v; want none", lost, err)
	}
	for round, want := range []int{0, 2} {
		if freed, err := f.m.ReclaimOnce(f.ctx); err != nil || freed != want {
			t.Fatalf("round %d: reclaim freed %d, %v; want %d", round, freed, err, want)
		}
	}
	if n, err := f.m.FeedOnce(f.ctx); err != nil || n != 2 {
		t.Fatalf("fed %d, %v; want 2", n, err)
	}
}
