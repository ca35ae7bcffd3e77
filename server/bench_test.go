package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/model"
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
func benchMaster(b *testing.B, st store.Store) *server.Master {
	blobs, _ := local.New(b.TempDir())
	q := mem.New()
	b.Cleanup(func() { q.Close() })
	m, err := server.New(st, q, blobs, allInputs{}, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	return m
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
			m := benchMaster(b, st)
			tasks := benchTasks(10_000)
			for _, id := range []string{"big", "other"} {
				if _, err := m.Submit(context.Background(), server.Submission{ID: id, Tasks: tasks}); err != nil {
					b.Fatal(err)
				}
			}
			p := store.AttemptPage{Limit: 500, After: &store.Cursor{Index: 5000}}
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
			m := benchMaster(b, st)
			tasks := benchTasks(10_000)
			for i := 0; b.Loop(); i++ {
				if _, err := m.Submit(context.Background(), server.Submission{ID: fmt.Sprintf("bench.%d", i), Tasks: tasks}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
