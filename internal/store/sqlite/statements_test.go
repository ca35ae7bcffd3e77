package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"

	sqlite "modernc.org/sqlite"

	"github.com/dist-test/dist_test/internal/store/sqlstore"
	"github.com/dist-test/dist_test/internal/store/storetest"
)

var statements atomic.Int64

func init() { sql.Register("sqlite-counted", storetest.Counting(&sqlite.Driver{}, &statements)) }

func TestStatementsPerChange(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "db") + "?_pragma=journal_mode(WAL)&_txlock=immediate"
	db, err := sql.Open("sqlite-counted", dsn)
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	if err := migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(context.Background(), db, db, Dialect)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Statements(t, s, &statements, map[string]int64{"submit": 5, "feed": 2, "enqueue": 1, "start": 3,
		"heartbeat": 3, "finish": 7, "finish+retry": 8, "requeue": 3, "cancel": 8, "retry": 7})
}
