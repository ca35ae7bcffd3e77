// Package sqlite opens dist_test's embedded store: one SQLite file in WAL
// mode, through the pure-Go driver modernc.org/sqlite, so `dist_test local`
// needs nothing installed.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"

	"github.com/pressly/goose/v3"
	sqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store/sqlstore"
	"github.com/dist-test/dist_test/migrations"
)

// recentKeep is how many commas the runs kept for the p90 may have.
var recentKeep = strconv.Itoa(model.RecentRuns - 1)

// Dialect is SQLite's part of sqlstore.
var Dialect = sqlstore.Dialect{
	Name:        "sqlite",
	ForUpdate:   "",
	Explain:     "EXPLAIN QUERY PLAN",
	GroupCommit: true,
	UpsertDuration: `INSERT INTO durations (desc_hash, description, avg_ms, samples, updated_at, recent)
		VALUES (?, ?, ?, ?, ?, CAST(? AS TEXT))
		ON CONFLICT (desc_hash) DO UPDATE SET
			avg_ms = CAST(durations.avg_ms * 0.7 + excluded.avg_ms * 0.3 AS INTEGER),
			recent = CASE
				WHEN durations.recent = '' THEN excluded.recent
				WHEN LENGTH(durations.recent) - LENGTH(REPLACE(durations.recent, ',', '')) >= ` + recentKeep + `
				THEN SUBSTR(durations.recent, INSTR(durations.recent, ',') + 1) || ',' || excluded.recent
				ELSE durations.recent || ',' || excluded.recent END,
			samples = durations.samples + 1, updated_at = excluded.updated_at`,
	Retryable:   func(err error) bool { c := code(err); return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED },
	Unavailable: func(error) bool { return false },
	Duplicate: func(err error) bool {
		c := code(err)
		return c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY || c == sqlite3.SQLITE_CONSTRAINT_UNIQUE
	},
}

func code(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// Open opens (creating and migrating if needed) the store in the file at
// path. Writes are serialised through one connection, which is how SQLite
// works best; reads use a small pool beside it (WAL lets them run while a
// write is in progress).
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %q: %w", path, err)
	}
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	dsn := "file:" + abs + "?" + q.Encode()
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	r, err := sql.Open("sqlite", dsn)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	r.SetMaxOpenConns(4)
	s, err := sqlstore.New(ctx, w, r, Dialect)
	if err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("sqlite store %s: %w", abs, err)
	}
	return s, nil
}

func migrate(ctx context.Context, db *sql.DB) error {
	p, err := goose.NewProvider(goose.DialectSQLite3, db, migrations.SQLite())
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrations: %w", err)
	}
	return nil
}
