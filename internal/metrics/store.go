package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// WrapStore returns st with its failed calls counted by m, by method.
func (m *Master) WrapStore(st store.Store) store.Store {
	if m == nil {
		return st
	}
	return &countedStore{Store: st, m: m}
}

// countedStore counts the failures of the database, not the answers that
// say no: an unknown job, a stale lease, a conflict are the protocol
// working.
type countedStore struct {
	store.Store
	m *Master
}

// answers are the error kinds that are answers, not failures.
var answers = []error{model.ErrNotFound, model.ErrExists, model.ErrConflict, model.ErrInvalid, model.ErrTooLarge,
	model.ErrUnsupported, model.ErrUnauthenticated, model.ErrForbidden, model.ErrPoison, context.Canceled}

func (s *countedStore) fail(op string, err error) error {
	if err == nil {
		return nil
	}
	for _, a := range answers {
		if errors.Is(err, a) {
			return err
		}
	}
	var avoid *lifecycle.AvoidError
	var held *lifecycle.HeldError
	if errors.As(err, &avoid) || errors.As(err, &held) {
		return err
	}
	s.m.StoreError(op)
	return err
}

// The methods below are store.Store's, each counting its failures.

func (s *countedStore) CreateJob(ctx context.Context, a1 model.NewJob, a2 time.Time) error {
	return s.fail("CreateJob", s.Store.CreateJob(ctx, a1, a2))
}

func (s *countedStore) BeginJob(ctx context.Context, a1 model.NewJob, a2 int, a3 time.Time, a4 time.Time) error {
	return s.fail("BeginJob", s.Store.BeginJob(ctx, a1, a2, a3, a4))
}

func (s *countedStore) WriteTasks(ctx context.Context, a1 model.NewJob, a2 int, a3 int, a4 time.Time, a5 time.Time) error {
	return s.fail("WriteTasks", s.Store.WriteTasks(ctx, a1, a2, a3, a4, a5))
}

func (s *countedStore) Unwritten(ctx context.Context, a1 time.Time, a2 int) ([]string, error) {
	r0, err := s.Store.Unwritten(ctx, a1, a2)
	return r0, s.fail("Unwritten", err)
}

func (s *countedStore) DropUnwritten(ctx context.Context, a1 string, a2 time.Time) error {
	return s.fail("DropUnwritten", s.Store.DropUnwritten(ctx, a1, a2))
}

func (s *countedStore) GetJob(ctx context.Context, a1 string) (model.Job, error) {
	r0, err := s.Store.GetJob(ctx, a1)
	return r0, s.fail("GetJob", err)
}

func (s *countedStore) ListJobs(ctx context.Context, a1 time.Time, a2 int) ([]model.Job, error) {
	r0, err := s.Store.ListJobs(ctx, a1, a2)
	return r0, s.fail("ListJobs", err)
}

func (s *countedStore) PageAttempts(ctx context.Context, a1 string, a2 store.AttemptPage) ([]model.Attempt, error) {
	r0, err := s.Store.PageAttempts(ctx, a1, a2)
	return r0, s.fail("PageAttempts", err)
}

func (s *countedStore) GetAttempt(ctx context.Context, a1 string, a2 string, a3 int) (model.Attempt, error) {
	r0, err := s.Store.GetAttempt(ctx, a1, a2, a3)
	return r0, s.fail("GetAttempt", err)
}

func (s *countedStore) CancelJob(ctx context.Context, a1 string, a2 time.Time) ([]model.Attempt, error) {
	r0, err := s.Store.CancelJob(ctx, a1, a2)
	return r0, s.fail("CancelJob", err)
}

func (s *countedStore) Retry(ctx context.Context, a1 string, a2 []string, a3 lifecycle.RetryRule, a4 time.Time) ([]string, error) {
	r0, err := s.Store.Retry(ctx, a1, a2, a3, a4)
	return r0, s.fail("Retry", err)
}

func (s *countedStore) Durations(ctx context.Context, a1 []string) (map[string]model.Runtime, error) {
	r0, err := s.Store.Durations(ctx, a1)
	return r0, s.fail("Durations", err)
}

func (s *countedStore) Backlog(ctx context.Context) ([]store.JobBacklog, error) {
	r0, err := s.Store.Backlog(ctx)
	return r0, s.fail("Backlog", err)
}

func (s *countedStore) UserLoad(ctx context.Context) (map[string]int, error) {
	r0, err := s.Store.UserLoad(ctx)
	return r0, s.fail("UserLoad", err)
}

func (s *countedStore) Stragglers(ctx context.Context, a1 time.Time, a2 int) ([]model.Attempt, error) {
	r0, err := s.Store.Stragglers(ctx, a1, a2)
	return r0, s.fail("Stragglers", err)
}

func (s *countedStore) Runs(ctx context.Context) (int, error) {
	r0, err := s.Store.Runs(ctx)
	return r0, s.fail("Runs", err)
}

func (s *countedStore) HedgeAttempt(ctx context.Context, a1 int64, a2 time.Time) (model.Attempt, error) {
	r0, err := s.Store.HedgeAttempt(ctx, a1, a2)
	return r0, s.fail("HedgeAttempt", err)
}

func (s *countedStore) Waiting(ctx context.Context, a1 string, a2 int) ([]model.Attempt, error) {
	r0, err := s.Store.Waiting(ctx, a1, a2)
	return r0, s.fail("Waiting", err)
}

func (s *countedStore) MarkEnqueued(ctx context.Context, a1 int64, a2 string, a3 uint64) error {
	return s.fail("MarkEnqueued", s.Store.MarkEnqueued(ctx, a1, a2, a3))
}

func (s *countedStore) Enqueued(ctx context.Context, a1 int64, a2 int) ([]model.Attempt, error) {
	r0, err := s.Store.Enqueued(ctx, a1, a2)
	return r0, s.fail("Enqueued", err)
}

func (s *countedStore) Unenqueue(ctx context.Context, a1 int64, a2 uint64) error {
	return s.fail("Unenqueue", s.Store.Unenqueue(ctx, a1, a2))
}

func (s *countedStore) StartAttempt(ctx context.Context, a1 lifecycle.StartRequest, a2 time.Time) (model.Attempt, model.Spec, error) {
	r0, r1, err := s.Store.StartAttempt(ctx, a1, a2)
	return r0, r1, s.fail("StartAttempt", err)
}

func (s *countedStore) RunningByLease(ctx context.Context, a1 string) (model.Attempt, error) {
	r0, err := s.Store.RunningByLease(ctx, a1)
	return r0, s.fail("RunningByLease", err)
}

func (s *countedStore) FinishAttempt(ctx context.Context, a1 string, a2 model.Result, a3 time.Time) (store.FinishOutcome, error) {
	r0, err := s.Store.FinishAttempt(ctx, a1, a2, a3)
	return r0, s.fail("FinishAttempt", err)
}

func (s *countedStore) RequeueRun(ctx context.Context, a1 string, a2 string, a3 bool, a4 time.Time) error {
	return s.fail("RequeueRun", s.Store.RequeueRun(ctx, a1, a2, a3, a4))
}

func (s *countedStore) RegisterSlave(ctx context.Context, a1 model.Slave) error {
	return s.fail("RegisterSlave", s.Store.RegisterSlave(ctx, a1))
}

func (s *countedStore) Heartbeat(ctx context.Context, a1 string, a2 time.Time) (model.Slave, error) {
	r0, err := s.Store.Heartbeat(ctx, a1, a2)
	return r0, s.fail("Heartbeat", err)
}

func (s *countedStore) GetSlave(ctx context.Context, a1 string) (model.Slave, error) {
	r0, err := s.Store.GetSlave(ctx, a1)
	return r0, s.fail("GetSlave", err)
}

func (s *countedStore) SetSlaveState(ctx context.Context, a1 string, a2 model.SlaveState, a3 time.Time) error {
	return s.fail("SetSlaveState", s.Store.SetSlaveState(ctx, a1, a2, a3))
}

func (s *countedStore) ListSlaves(ctx context.Context, a1 bool) ([]model.Slave, error) {
	r0, err := s.Store.ListSlaves(ctx, a1)
	return r0, s.fail("ListSlaves", err)
}

func (s *countedStore) RunningOn(ctx context.Context, a1 string) ([]model.Attempt, error) {
	r0, err := s.Store.RunningOn(ctx, a1)
	return r0, s.fail("RunningOn", err)
}

func (s *countedStore) AddEvent(ctx context.Context, a1 model.Event) error {
	return s.fail("AddEvent", s.Store.AddEvent(ctx, a1))
}

func (s *countedStore) Events(ctx context.Context, a1 store.EventFilter) ([]model.Event, error) {
	r0, err := s.Store.Events(ctx, a1)
	return r0, s.fail("Events", err)
}

func (s *countedStore) OldJobs(ctx context.Context, a1 time.Time, a2 int) ([]string, error) {
	r0, err := s.Store.OldJobs(ctx, a1, a2)
	return r0, s.fail("OldJobs", err)
}

func (s *countedStore) DeleteJob(ctx context.Context, a1 string) error {
	return s.fail("DeleteJob", s.Store.DeleteJob(ctx, a1))
}

func (s *countedStore) PruneBefore(ctx context.Context, a1 time.Time) (int64, error) {
	r0, err := s.Store.PruneBefore(ctx, a1)
	return r0, s.fail("PruneBefore", err)
}

func (s *countedStore) Secret(ctx context.Context, a1 string, a2 []byte) ([]byte, error) {
	r0, err := s.Store.Secret(ctx, a1, a2)
	return r0, s.fail("Secret", err)
}

func (s *countedStore) Close() error {
	return s.fail("Close", s.Store.Close())
}
