package mysql

import (
	"context"
	"database/sql"
	"sync/atomic"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/dist-test/dist_test/internal/store/sqlstore"
	"github.com/dist-test/dist_test/internal/store/storetest"
	"github.com/dist-test/dist_test/internal/testenv"
)

var statements atomic.Int64

func init() { sql.Register("mysql-counted", storetest.Counting(&mysql.MySQLDriver{}, &statements)) }

func TestStatementsPerChange(t *testing.T) {
	m, err := mysql.ParseDSN(testenv.MySQL(t))
	if err != nil {
		t.Fatal(err)
	}
	tune(m)
	db, err := sql.Open("mysql-counted", m.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	s, err := sqlstore.New(context.Background(), db, db, Dialect)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Statements(t, s, &statements, map[string]int64{"submit": 5, "feed": 2, "enqueue": 1, "start": 5,
		"heartbeat": 3, "finish": 9, "finish+retry": 10, "requeue": 5, "cancel": 8, "retry": 7})
}
