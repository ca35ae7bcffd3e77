package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Group commit, for a database with one writer (SQLite): the write
// transactions that wait while one runs are run together, in one
// transaction, each inside a savepoint of its own, and committed once.
// A commit is a third of the cost of a start or a finish; when 32 slots
// finish and start together, most of them share one. Each change still
// succeeds or fails alone (a failure rolls back to its savepoint), and
// its caller hears back only after the commit.

// maxGroup bounds the changes of one commit, so that none waits long.
const maxGroup = 64

type txReq struct {
	ctx  context.Context
	fn   func(*sql.Tx) error
	done chan error
}

// committer runs the write transactions of a Store, grouped.
type committer struct {
	reqs chan *txReq
	stop chan struct{}
	done chan struct{}
}

var errClosed = errors.New("the store is closed")

func (s *Store) startCommitter() {
	s.group = &committer{reqs: make(chan *txReq), stop: make(chan struct{}), done: make(chan struct{})}
	go s.commitLoop()
}

func (s *Store) stopCommitter() {
	if s.group != nil {
		close(s.group.stop)
		<-s.group.done
	}
}

// groupTx hands fn to the committer and waits for its outcome. Once its
// turn has come, fn runs to the end and is committed even if ctx ends
// meanwhile, as a transaction of its own would after its last statement.
func (s *Store) groupTx(ctx context.Context, fn func(*sql.Tx) error) error {
	r := &txReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case s.group.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-s.group.stop:
		return errClosed
	}
	return <-r.done
}

func (s *Store) commitLoop() {
	defer close(s.group.done)
	for {
		var batch []*txReq
		select {
		case r := <-s.group.reqs:
			batch = append(batch, r)
		case <-s.group.stop:
			return
		}
	more:
		for len(batch) < maxGroup {
			select {
			case r := <-s.group.reqs:
				batch = append(batch, r)
			default:
				break more
			}
		}
		s.commitGroup(batch)
	}
}

// commitGroup runs a batch as one transaction, again after a busy
// database, and answers each request.
func (s *Store) commitGroup(batch []*txReq) {
	errs := make([]error, len(batch))
	var err error
	for try := 0; ; try++ {
		err = s.runGroup(batch, errs)
		if err == nil || !s.d.Retryable(err) || try >= s.retries {
			break
		}
		time.Sleep(time.Duration(try+1) * 20 * time.Millisecond)
	}
	for i, r := range batch {
		e := errs[i]
		if err != nil {
			e = err // nothing was committed
		}
		r.done <- s.classify(e)
	}
}

// runGroup runs every request of batch whose context is alive, each
// within a savepoint, and commits; errs receives each one's own error.
// The error returned is the transaction's: then nothing was committed.
func (s *Store) runGroup(batch []*txReq, errs []error) error {
	// The transaction is the group's: no caller's context may end it.
	tx, err := s.w.BeginTx(context.Background(), nil)
	if err != nil {
		return err
	}
	single := len(batch) == 1
	for i, r := range batch {
		if errs[i] = r.ctx.Err(); errs[i] != nil {
			continue
		}
		if single {
			errs[i] = r.fn(tx)
			break
		}
		if _, err := s.exec(context.Background(), tx, "SAVEPOINT change"); err != nil {
			_ = tx.Rollback()
			return err
		}
		errs[i] = r.fn(tx)
		if errs[i] != nil && s.d.Retryable(errs[i]) {
			_ = tx.Rollback()
			return errs[i]
		}
		if errs[i] != nil {
			if _, err := s.exec(context.Background(), tx, "ROLLBACK TO change"); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if _, err := s.exec(context.Background(), tx, "RELEASE change"); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if single && errs[0] != nil {
		_ = tx.Rollback()
		if s.d.Retryable(errs[0]) {
			return errs[0]
		}
		return nil
	}
	return tx.Commit()
}
