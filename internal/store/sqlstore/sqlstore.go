// Package sqlstore implements store.Store on database/sql. SQLite and MySQL
// share it: the SQL is written once in the subset both accept, and a Dialect
// holds the few differences (row locks, upserts, error classes).
//
// The rules of a task's life are not here: each change locks its rows,
// asks package lifecycle what to write, and writes it. What stays in SQL is
// what one statement does without a read before it: the compare-and-set of
// MarkEnqueued and Unenqueue, and the runtime history
// (Dialect.UpsertDuration).
//
// Cost per task: the statements of the hot path are prepared once
// (queries.go); on SQLite, whose writes are serialised anyway, the write
// transactions that queue up are committed together (groupcommit.go).
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
	// Explain prefixes a SELECT to have its plan described.
	Explain string
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
	// GroupCommit runs the write transactions that wait for each other
	// as one (see groupcommit.go): for a database with a single writer.
	GroupCommit bool
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
	q       queries
	newID   func() string
	retries int
	// prepared holds the statements of the hot path, prepared once on each
	// pool: parsing them again on every call was most of the cost of a
	// start and a finish. Read-only after New.
	prepared map[string]preparedStmt
	group    *committer // with Dialect.GroupCommit
}

// preparedStmt is one statement prepared on the write pool (for
// transactions) and on the read pool.
type preparedStmt struct{ w, r *sql.Stmt }

var _ store.Store = (*Store)(nil)

// New returns a Store using w for writes and r for reads, with the
// statements of the hot path prepared.
func New(ctx context.Context, w, r *sql.DB, d Dialect) (*Store, error) {
	s := &Store{w: w, r: r, d: d, q: newQueries(d), newID: model.NewToken, retries: 5,
		prepared: make(map[string]preparedStmt)}
	hot := s.q.hot()
	if d.GroupCommit {
		hot = append(hot, "SAVEPOINT change", "ROLLBACK TO change", "RELEASE change")
	}
	for _, text := range hot {
		if _, ok := s.prepared[text]; ok {
			continue
		}
		var p preparedStmt
		var err error
		if p.w, err = w.PrepareContext(ctx, text); err == nil && r != w {
			p.r, err = r.PrepareContext(ctx, text)
		} else {
			p.r = p.w
		}
		if err != nil {
			s.closeStmts()
			return nil, fmt.Errorf("%s: preparing %q: %w", d.Name, model.Clip(text, 80), err)
		}
		s.prepared[text] = p
	}
	if d.GroupCommit {
		s.startCommitter()
	}
	return s, nil
}

func (s *Store) closeStmts() {
	for _, p := range s.prepared {
		p.w.Close()
		if p.r != nil && p.r != p.w {
			p.r.Close()
		}
	}
}

// stmt returns the statement prepared for text, bound to q (a transaction
// or one of the pools), or nil if text is not among the prepared ones.
func (s *Store) stmt(ctx context.Context, q querier, text string) *sql.Stmt {
	p, ok := s.prepared[text]
	if !ok {
		return nil
	}
	switch q := q.(type) {
	case *sql.Tx:
		// Reuses the statement where it is prepared on the transaction's
		// connection already; prepares it there otherwise.
		return q.StmtContext(ctx, p.w)
	case *sql.DB:
		if q == s.r {
			return p.r
		}
		if q == s.w {
			return p.w
		}
	}
	return nil
}

// exec, query and queryRow run text on q, prepared when it is one of the
// hot statements. Every statement of a write transaction goes through them.
func (s *Store) exec(ctx context.Context, q querier, text string, args ...any) (sql.Result, error) {
	ctx = s.stmtContext(ctx, q)
	if st := s.stmt(ctx, q, text); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return q.ExecContext(ctx, text, args...)
}

func (s *Store) query(ctx context.Context, q querier, text string, args ...any) (*sql.Rows, error) {
	ctx = s.stmtContext(ctx, q)
	if st := s.stmt(ctx, q, text); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return q.QueryContext(ctx, text, args...)
}

func (s *Store) queryRow(ctx context.Context, q querier, text string, args ...any) *sql.Row {
	ctx = s.stmtContext(ctx, q)
	if st := s.stmt(ctx, q, text); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return q.QueryRowContext(ctx, text, args...)
}

// stmtContext is the context of a statement on q. In a group commit the
// transaction is shared: a caller's context that ends must not interrupt a
// statement, which would make SQLite roll back every change of the group.
func (s *Store) stmtContext(ctx context.Context, q querier) context.Context {
	if _, ok := q.(*sql.Tx); ok && s.group != nil {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// Close closes the statements and the pools.
func (s *Store) Close() error {
	s.stopCommitter()
	s.closeStmts()
	err := s.w.Close()
	if s.r != s.w {
		err = errors.Join(err, s.r.Close())
	}
	return err
}

// DB returns the write pool, for tests that inspect rows directly.
func (s *Store) DB() *sql.DB { return s.w }

// Ping checks that the database answers (the master's /readyz).
func (s *Store) Ping(ctx context.Context) error { return s.w.PingContext(ctx) }

// tx runs fn in a write transaction, running it again after a deadlock or a
// busy database. fn must not have effects outside the transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	if s.group != nil {
		return s.groupTx(ctx, fn)
	}
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
