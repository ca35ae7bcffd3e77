package sqlite_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dist_test.db"))
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestReopenKeepsState(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dist_test.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RegisterSlave(ctx, testSlave()); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path) // migrations run again: must be a no-op
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.ListSlaves(ctx, false)
	if err != nil || len(got) != 1 || got[0].ID != "s1" {
		t.Fatalf("after reopening: %+v, %v", got, err)
	}
}

// The jobs table has a column for each counter, and no other.
func TestCounterColumns(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dist_test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CounterColumns(t, s.DB())
}

// BenchmarkTaskLife: the store's work per task on the master's hot path.
func BenchmarkTaskLife(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "dist_test.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchTaskLife(b, s)
}

// A page of 500 attempts of a 10,000-task job is read through the indexes
// (attempts_page), in their
// order: no table scan, no sort.
func TestPageUsesIndexes(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dist_test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, plan := range storetest.PagePlans(t, s) {
		all := strings.Join(plan, "\n")
		if strings.Contains(all, "SCAN") || strings.Contains(all, "TEMP B-TREE") ||
			!strings.Contains(all, "SEARCH a USING INDEX attempts_page") {
			t.Errorf("plan of a page (%s):\n%s\nwant both tables searched through their indexes, in order", name, all)
		}
	}
}

// A page of the job page's tasks in task order walks the job's tasks in
// their index and finds each one's latest attempt by its key: no table
// scan, no sort, whatever the job's size.
func TestTaskPageUsesIndexes(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "dist_test.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, plan := range storetest.TaskPagePlans(t, s) {
		all := strings.Join(plan, "\n")
		if strings.Contains(all, "SCAN") || strings.Contains(all, "TEMP B-TREE") ||
			!strings.Contains(all, "SEARCH t USING INDEX tasks_job_idx") {
			t.Errorf("plan of a page of tasks (%s):\n%s\nwant both tables searched through their indexes, in order", name, all)
		}
	}
}

// BenchmarkTaskLifeParallel: the same with 32 slots at once.
func BenchmarkTaskLifeParallel(b *testing.B) {
	s, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "dist_test.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchTaskLifeParallel(b, s)
}
