package server_test

import (
	"context"
	"encoding/json"
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
	"github.com/dist-test/dist_test/internal/store/mysql"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/internal/testenv"
	"github.com/dist-test/dist_test/server"
)

// benchStores opens an empty store of each kind.
var benchStores = map[string]func(b *testing.B) store.Store{
	"sqlite": func(b *testing.B) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "db"))
		if err != nil {
			b.Fatal(err)
		}
		return s
	},
	"mysql": func(b *testing.B) store.Store {
		s, err := mysql.OpenDSN(context.Background(), testenv.MySQL(b), "bench database")
		if err != nil {
			b.Fatal(err)
		}
		return s
	},
}

// benchMaster is a master over st with an in-process queue.
func benchMaster(b *testing.B, st store.Store) (*server.Master, queue.Queue) {
	blobs, _ := local.New(b.TempDir())
	q := mem.New()
	b.Cleanup(func() { q.Close() })
	m, err := server.New(st, q, blobs, allInputs{}, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return m, q
}

func benchTasks(n int) []model.TaskSpec {
	tasks := make([]model.TaskSpec, n)
	for i := range tasks {
		tasks[i] = model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("org.example.Test%05d", i), MaxRetries: 1}
	}
	return tasks
}

// BenchmarkTasksPage measures one page of 500 attempts of a 10,000-task
// job (what GET /api/v1/jobs/{id}/tasks serves), from the middle of the
// job, next to another job of the same size.
func BenchmarkTasksPage(b *testing.B) {
	for _, name := range []string{"sqlite", "mysql"} {
		b.Run(name, func(b *testing.B) {
			st := benchStores[name](b)
			defer st.Close()
			m, _ := benchMaster(b, st)
			tasks := benchTasks(10_000)
			for _, id := range []string{"big", "other"} {
				if _, err := m.Submit(context.Background(), server.Submission{ID: id, Tasks: tasks}); err != nil {
					b.Fatal(err)
				}
			}
			p := store.AttemptPage{Limit: 500, After: &store.Cursor{Index: 5000}}
			var cpu testenv.CPUMeter
			cpu.Start()
			defer func() { cpu.Stop(); cpu.Report(b) }()
			for b.Loop() {
				page, err := m.Attempts(context.Background(), "big", p)
				if err != nil || len(page) != 500 || page[0].Index != 5001 {
					b.Fatalf("page: %d attempts, %v", len(page), err)
				}
			}
		})
	}
}

// BenchmarkSubmit10k measures the submission of a 10,000-task job (checks,
// runtime history lookup, one transaction) on each store.
func BenchmarkSubmit10k(b *testing.B) {
	for _, name := range []string{"sqlite", "mysql"} {
		b.Run(name, func(b *testing.B) {
			st := benchStores[name](b)
			defer st.Close()
			m, _ := benchMaster(b, st)
			tasks := benchTasks(10_000)
			var cpu testenv.CPUMeter
			cpu.Start()
			defer func() { cpu.Stop(); cpu.Report(b) }()
			for i := 0; b.Loop(); i++ {
				if _, err := m.Submit(context.Background(), server.Submission{ID: fmt.Sprintf("bench.%d", i), Tasks: tasks}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFirstStart10k measures the time from the submission of a
// 10,000-task job to the start of its first task: the submit, the
// feeder's first round up to its first put, a slot's reserve and start.
// Each round has a master of its own over an empty store.
func BenchmarkFirstStart10k(b *testing.B) {
	for _, name := range []string{"sqlite", "mysql"} {
		b.Run(name, func(b *testing.B) {
			tasks := benchTasks(10_000)
			var submit time.Duration
			var cpu testenv.CPUMeter
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				st := benchStores[name](b)
				m, q := benchMaster(b, st)
				slave, err := m.Register(context.Background(), protocol.Register{Hostname: "h", Slots: 1})
				if err != nil {
					b.Fatal(err)
				}
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() { done <- m.Run(ctx) }()
				c, err := q.NewConsumer(ctx)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				cpu.Start()
				t0 := time.Now()
				// The job is written in parts: its first tasks start
				// while Submit writes the rest.
				submitted := make(chan error, 1)
				go func() {
					_, err := m.Submit(ctx, server.Submission{ID: fmt.Sprintf("first.%d", i), Tasks: tasks})
					submit += time.Since(t0)
					submitted <- err
				}()
				res, err := c.Reserve(ctx, time.Minute)
				if err != nil {
					b.Fatal(err)
				}
				var e protocol.Entry
				if err := json.Unmarshal(res.Body, &e); err != nil {
					b.Fatal(err)
				}
				if _, _, err := m.Start(ctx, protocol.Start{SlaveID: slave.ID, EntryID: res.ID, Entry: e}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				if err := <-submitted; err != nil {
					b.Fatal(err)
				}
				cpu.Stop()
				cancel()
				<-done
				c.Close()
				st.Close()
			}
			// Submit's whole time, for comparison: the first start
			// comes before it ends.
			b.ReportMetric(float64(submit.Milliseconds())/float64(b.N), "submit-ms/op")
			cpu.Report(b)
		})
	}
}
