package storetest

import (
	"context"
	"database/sql/driver"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// Counting wraps a database driver so that every statement run through it
// adds one to n: a store opened over it shows how many round trips each
// change costs.
func Counting(d driver.Driver, n *atomic.Int64) driver.Driver { return countingDriver{d, n} }

type countingDriver struct {
	d driver.Driver
	n *atomic.Int64
}

func (c countingDriver) Open(name string) (driver.Conn, error) {
	conn, err := c.d.Open(name)
	if err != nil {
		return nil, err
	}
	full, ok := conn.(fullConn)
	if !ok {
		conn.Close()
		return nil, fmt.Errorf("driver %T lacks the context methods", c.d)
	}
	return countingConn{full, c.n}, nil
}

type fullConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
}

type countingConn struct {
	fullConn
	n *atomic.Int64
}

// PrepareContext counts the runs of a prepared statement, not its
// preparation: that happens once per connection.
func (c countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.fullConn.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	full, ok := st.(fullStmt)
	if !ok {
		st.Close()
		return nil, fmt.Errorf("statement %T lacks the context methods", st)
	}
	return countingStmt{full, c.n}, nil
}

type fullStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

type countingStmt struct {
	fullStmt
	n *atomic.Int64
}

func (s countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.n.Add(1)
	return s.fullStmt.ExecContext(ctx, args)
}

func (s countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.n.Add(1)
	return s.fullStmt.QueryContext(ctx, args)
}

func (c countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.fullConn.ExecContext(ctx, q, args)
}

func (c countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.fullConn.QueryContext(ctx, q, args)
}

// Statements takes a job of three tasks through its life on s (an empty
// store opened over Counting) and fails the test if a step costs more
// statements than most allows: each is a round trip to the database, and
// they are most of the master's work per task.
func Statements(t *testing.T, s store.Store, n *atomic.Int64, most map[string]int64) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	job := model.NewJob{ID: "j", User: "u"}
	for i := range 3 {
		job.Tasks = append(job.Tasks, model.NewTask{TaskID: fmt.Sprintf("t.%d", i), Index: i,
			Spec: model.TaskSpec{IsolateHash: "h", Description: fmt.Sprint("d", i), MaxRetries: 1}, Priority: model.NormalBase - 1})
	}
	if err := s.RegisterSlave(ctx, model.Slave{ID: "s", Hostname: "h", Slots: 3, RegisteredAt: now}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int64{}
	var order []string
	step := func(name string, fn func() error) {
		t.Helper()
		before := n.Load()
		if err := fn(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if _, ok := got[name]; !ok {
			order = append(order, name)
		}
		got[name] = max(got[name], n.Load()-before)
	}
	var todo []model.Attempt
	leases := map[int]string{}
	step("submit", func() error { return s.CreateJob(ctx, job, now) })
	step("feed", func() error {
		backlog, err := s.Backlog(ctx)
		if err != nil || len(backlog) != 1 {
			return fmt.Errorf("backlog %+v, %v", backlog, err)
		}
		todo, err = s.Waiting(ctx, backlog[0].JobID, 10)
		return err
	})
	for i, a := range todo {
		step("enqueue", func() error { return s.MarkEnqueued(ctx, a.ID, a.Token, uint64(10+i)) })
		step("start", func() error {
			r, _, err := s.StartAttempt(ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: uint64(10 + i), SlaveID: "s"}, now)
			leases[i] = r.Lease
			return err
		})
	}
	step("heartbeat", func() error {
		if _, err := s.Heartbeat(ctx, "s", now); err != nil {
			return err
		}
		_, err := s.RunningOn(ctx, "s")
		return err
	})
	step("finish", func() error {
		_, err := s.FinishAttempt(ctx, leases[0], model.Result{Duration: time.Second}, now)
		return err
	})
	step("finish+retry", func() error {
		_, err := s.FinishAttempt(ctx, leases[1], model.Result{ExitCode: 1, Duration: time.Second}, now)
		return err
	})
	step("requeue", func() error { return s.RequeueRun(ctx, leases[2], "lost", false, now) })
	step("cancel", func() error { _, err := s.CancelJob(ctx, "j", now); return err })
	step("retry", func() error { _, err := s.Retry(ctx, "j", nil, lifecycle.RetryFailed, now); return err })
	var report string
	for _, name := range order {
		report += fmt.Sprintf(" %s=%d", name, got[name])
		if got[name] > most[name] {
			t.Errorf("%s took %d statements; at most %d expected", name, got[name], most[name])
		}
	}
	t.Log("statements:" + report)
}
