// Package sqlstore implements store.Store on database/sql. SQLite and MySQL
// share it: the SQL is written once in the subset both accept, and a Dialect
// holds the few differences (row locks, upserts, error classes).
//
// The rules of a task's life are not here: each change locks its rows,
// asks package lifecycle what to write, and writes it. What stays in SQL is
// what one statement does without a read before it: the compare-and-set of
// MarkEnqueued and Unenqueue, and the runtime history
// (Dialect.UpsertDuration).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// Dialect is what differs between the databases.
type Dialect struct {
	Name string
	// ForUpdate is appended to a SELECT that reads a row it will change in
	// the same transaction. SQLite needs none: its writers are serialised.
	ForUpdate string
	// UpsertDuration inserts (desc_hash, description, avg_ms, samples,
	// updated_at, recent) or folds avg_ms into the existing weighted
	// average and appends recent (one run, in ms) to the runs kept, dropping
	// the oldest beyond model.RecentRuns.
	UpsertDuration string
	// Retryable reports errors after which the whole transaction may be run
	// again (deadlock, lock wait timeout, busy database).
	Retryable func(error) bool
	// Unavailable reports errors that mean the database cannot be reached.
	Unavailable func(error) bool
	// Duplicate reports a unique key violation.
	Duplicate func(error) bool
	// Invalid reports a value the database refuses to store or compare
	// (too long for its column, not in its character set); nil when the
	// database takes any value. Such an error is the caller's bad input.
	Invalid func(error) bool
}

// Store is a store.Store over one database. Writes go through w; reads
// through r, which may be the same pool.
type Store struct {
	w, r    *sql.DB
	d       Dialect
	newID   func() string
	retries int
}

var _ store.Store = (*Store)(nil)

// New returns a Store using w for writes and r for reads.
func New(w, r *sql.DB, d Dialect) *Store {
	return &Store{w: w, r: r, d: d, newID: model.NewToken, retries: 5}
}

// Close closes the pools.
func (s *Store) Close() error {
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// DB returns the write pool, for tests that inspect rows directly.
func (s *Store) DB() *sql.DB { return s.w }

// tx runs fn in a write transaction, running it again after a deadlock or a
// busy database. fn must not have effects outside the transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	var err error
	for try := 0; ; try++ {
		err = s.tx1(ctx, fn)
		if err == nil || !s.d.Retryable(err) || try >= s.retries || ctx.Err() != nil {
			break
		}
		// Back off a little so that the winner of the lock can finish.
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(try+1) * 20 * time.Millisecond):
		}
	}
	return s.classify(err)
}

func (s *Store) tx1(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// classify turns a database error into the model's kinds.
func (s *Store) classify(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, model.ErrNotFound), errors.Is(err, model.ErrConflict),
		errors.Is(err, model.ErrExists), errors.Is(err, model.ErrInvalid), errors.Is(err, model.ErrForbidden),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case s.d.Unavailable(err):
		return fmt.Errorf("%s: %w: %v", s.d.Name, model.ErrUnavailable, err)
	case s.d.Invalid != nil && s.d.Invalid(err):
		return fmt.Errorf("%w: %s refused a value: %v", model.ErrInvalid, s.d.Name, err)
	}
	return fmt.Errorf("%s: %w", s.d.Name, err)
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

// placeholders returns "?,?,...,?" with n marks.
func placeholders(n int) string {
	if n == 0 {
		return ""
	}
	b := make([]byte, 2*n-1)
	for i := range b {
		if i%2 == 0 {
			b[i] = '?'
		} else {
			b[i] = ','
		}
	}
	return string(b)
}

func conflict(format string, args ...any) error {
	return fmt.Errorf("%w: %s", model.ErrConflict, fmt.Sprintf(format, args...))
}
