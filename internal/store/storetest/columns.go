package storetest

import (
	"database/sql"
	"slices"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
)

// CounterColumns fails the test unless the jobs table of db has one column
// per counter of model.Counts, named as the counter, and no other column
// named like a counter (…_tasks, …_groups): the migrations are the one
// place that must list the counters again, in SQL.
func CounterColumns(t *testing.T, db *sql.DB) {
	t.Helper()
	rows, err := db.Query(`SELECT * FROM jobs WHERE 1 = 0`)
	if err != nil {
		t.Fatal(err)
	}
	cols, err := rows.Columns()
	rows.Close()
	if err != nil {
		t.Fatal(err)
	}
	var counters []string
	for _, c := range cols {
		if strings.HasSuffix(c, "_tasks") || strings.HasSuffix(c, "_groups") {
			counters = append(counters, c)
		}
	}
	slices.Sort(counters)
	want := slices.Sorted(slices.Values(model.CounterNames()))
	if !slices.Equal(counters, want) {
		t.Errorf("counter columns of jobs:\n%v\nthe counters of model.Counts:\n%v", counters, want)
	}
}
