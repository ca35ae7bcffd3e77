package mysql_test

import (
	"context"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/internal/store/mysql"
	"github.com/dist-test/dist_test/internal/store/storetest"
	"github.com/dist-test/dist_test/internal/testenv"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := mysql.OpenDSN(context.Background(), testenv.MySQL(t), "test database")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// Opening twice applies the migrations once.
func TestReopen(t *testing.T) {
	dsn := testenv.MySQL(t)
	for range 2 {
		s, err := mysql.OpenDSN(context.Background(), dsn, "test database")
		if err != nil {
			t.Fatal(err)
		}
		s.Close()
	}
}

// A wrong address fails at once with a message that names it.
func TestOpenUnreachable(t *testing.T) {
	_, err := mysql.Open(context.Background(), mysql.Config{Host: "127.0.0.1", Port: 1, User: "root", Database: "x"})
	if err == nil || !strings.Contains(err.Error(), "mysql at 127.0.0.1:1") || !strings.Contains(err.Error(), "cannot connect") {
		t.Fatalf("Open of a closed port: %v", err)
	}
}

// The jobs table has a column for each counter, and no other.
func TestCounterColumns(t *testing.T) {
	s, err := mysql.OpenDSN(context.Background(), testenv.MySQL(t), "test database")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.CounterColumns(t, s.DB())
}

// BenchmarkTaskLife: the store's work per task on the master's hot path.
func BenchmarkTaskLife(b *testing.B) {
	s, err := mysql.OpenDSN(context.Background(), testenv.MySQL(b), "bench database")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	storetest.BenchTaskLife(b, s)
}

// A page of 500 attempts of a 10,000-task job is read through the indexes
// (attempts_page), in their order: no table
// scan, no sort.
func TestPageUsesIndexes(t *testing.T) {
	s, err := mysql.OpenDSN(context.Background(), testenv.MySQL(t), "test database")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, plan := range storetest.PagePlans(t, s) {
		all := strings.Join(plan, "\n")
		if strings.Contains(all, "type=ALL") || strings.Contains(all, "filesort") || strings.Contains(all, "temporary") ||
			!strings.Contains(all, "key=attempts_page") {
			t.Errorf("plan of a page (%s):\n%s\nwant both tables read through their indexes, in order", name, all)
		}
	}
}

// A page of the job page's tasks in task order walks the job's tasks in
// their index and finds each one's latest attempt by its key.
func TestTaskPageUsesIndexes(t *testing.T) {
	s, err := mysql.OpenDSN(context.Background(), testenv.MySQL(t), "test database")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for name, plan := range storetest.TaskPagePlans(t, s) {
		all := strings.Join(plan, "\n")
		if strings.Contains(all, "type=ALL") || strings.Contains(all, "filesort") || strings.Contains(all, "temporary") ||
			!strings.Contains(all, "key=tasks_job_idx") {
			t.Errorf("plan of a page of tasks (%s):\n%s\nwant both tables read through their indexes, in order", name, all)
		}
	}
}
