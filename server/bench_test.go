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

// BenchmarkSubmit10k measures the submission of a 10,000-task job (checks,
// runtime history lookup, one transaction) on each store.
func BenchmarkSubmit10k(b *testing.B) {
	stores := map[string]func(b *testing.B) store.Store{
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
	for _, name := range []string{"sqlite", "mysql"} {
		b.Run(name, func(b *testing.B) {
			st := stores[name](b)
			defer st.Close()
			blobs, _ := local.New(b.TempDir())
			q := mem.New()
			defer q.Close()
			m, err := server.New(st, q, blobs, allInputs{}, server.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
			if err != nil {
				b.Fatal(err)
			}
			tasks := make([]model.TaskSpec, 10000)
			for i := range tasks {
				tasks[i] = model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("org.example.Test%05d", i), MaxRetries: 1}
			}
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if _, err := m.Submit(context.Background(), server.Submission{ID: fmt.Sprintf("bench.%d", i), Tasks: tasks}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
