// Package store defines the master's state of record: jobs, tasks, attempts,
// runtime history and slaves. Every state change of an attempt happens in one
// transaction together with the counters of its job, so that the counters
// always equal a recount of the rows.
//
// Implementations: sqlite (the embedded default) and mysql, both built on
// sqlstore. One conformance suite (storetest) runs against both.
package store

import (
	"context"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Store is safe for concurrent use. Methods return model.ErrNotFound,
// model.ErrExists or model.ErrConflict (wrapped, with the reason) for the
// cases they document, and model.ErrUnavailable when the database cannot be
// reached.
type Store interface {
	// CreateJob writes a job, its tasks and their first attempts (queued,
	// not yet enqueued) in one transaction. ErrExists if the id is taken.
	CreateJob(ctx context.Context, job model.NewJob, now time.Time) error
	GetJob(ctx context.Context, id string) (model.Job, error)
	// ListJobs returns jobs submitted at or after since, newest first.
	ListJobs(ctx context.Context, since time.Time, limit int) ([]model.Job, error)
	// ListAttempts returns a job's attempts ordered by task index and
	// attempt; states filters them when not empty. ErrNotFound for no job.
	// It reads them all: requests from the network use PageAttempts.
	ListAttempts(ctx context.Context, jobID string, states ...model.State) ([]model.Attempt, error)
	// PageAttempts returns at most p.Limit of a job's attempts after
	// p.After, in the order of ListAttempts. ErrNotFound for no job.
	PageAttempts(ctx context.Context, jobID string, p AttemptPage) ([]model.Attempt, error)
	GetAttempt(ctx context.Context, jobID, taskID string, attempt int) (model.Attempt, error)
	// CancelJob ends every unfinished attempt of a job as canceled and its
	// groups as failed. It returns the attempts it canceled (as they were).
	// Canceling a finished job changes nothing.
	CancelJob(ctx context.Context, jobID string, now time.Time) ([]model.Attempt, error)
	// Retry queues one more attempt of each named task (every failed group
	// when taskIDs is empty) whose group is finished without success. It
	// returns the task ids it queued.
	Retry(ctx context.Context, jobID string, taskIDs []string, now time.Time) ([]string, error)
	// RetryAttempt is the legacy /retry_task: queue attempt n+1 of a task if
	// attempt n is its latest, ended without success and has a retry left.
	// It reports whether it queued one; asking again is harmless.
	RetryAttempt(ctx context.Context, jobID, taskID string, n int, now time.Time) (bool, error)
	// Durations returns the running average runtime of each description
	// that has a history.
	Durations(ctx context.Context, descriptions []string) (map[string]time.Duration, error)

	// ToEnqueue returns queued attempts not yet in the queue: first every
	// retry or re-queued run (priorities in the retry band), then first
	// attempts by job, in priority order, so that no job has more than
	// window attempts queued and enqueued at once. At most limit in all.
	ToEnqueue(ctx context.Context, window, limit int) ([]model.Attempt, error)
	// MarkEnqueued records the queue entry put for an attempt. ErrConflict
	// if the attempt is no longer queued under that token (the entry is
	// then stale and should be deleted).
	MarkEnqueued(ctx context.Context, attemptID int64, token string, entryID uint64) error
	// Enqueued returns queued, enqueued attempts with id > after, by id.
	Enqueued(ctx context.Context, after int64, limit int) ([]model.Attempt, error)
	// Unenqueue marks an attempt as needing a new queue entry, if entryID is
	// still the one recorded for it.
	Unenqueue(ctx context.Context, attemptID int64, entryID uint64) error

	// StartAttempt hands the attempt of a queue entry to a slave slot and
	// returns it with a fresh lease, and its spec. It accepts a queued
	// attempt whose token matches, or a running one started from the same
	// entry id (the entry came back after its lease expired: the old run is
	// superseded). Anything else is ErrConflict: the entry is stale.
	StartAttempt(ctx context.Context, req StartRequest, now time.Time) (model.Attempt, model.Spec, error)
	// RunningByLease returns the running attempt holding lease, or
	// ErrConflict.
	RunningByLease(ctx context.Context, lease string) (model.Attempt, error)
	// FinishAttempt records the result of the run holding lease; on failure
	// with a retry left it queues the next attempt in the same transaction.
	// Finishing again with the same lease returns the recorded outcome with
	// Duplicate set; any other lease is ErrConflict.
	FinishAttempt(ctx context.Context, lease string, r model.Result, now time.Time) (FinishOutcome, error)
	// RequeueRun puts a running attempt back to queued: it is not a new
	// attempt and uses no retry. With keepEntry (the slave gives the run
	// back and releases its queue entry) the token and the entry stay
	// valid; otherwise (the slave was lost and may still hold the entry) the
	// attempt gets a new token and needs a new entry. ErrConflict if lease
	// is not current.
	RequeueRun(ctx context.Context, lease, reason string, keepEntry bool, now time.Time) error
	// CurrentLeases returns those of leases that belong to running attempts.
	CurrentLeases(ctx context.Context, leases []string) (map[string]bool, error)

	// RegisterSlave records a new slave registration as alive.
	RegisterSlave(ctx context.Context, s model.Slave) error
	// Heartbeat records a heartbeat and returns the slave as it was before.
	Heartbeat(ctx context.Context, slaveID string, now time.Time) (model.Slave, error)
	// GetSlave returns one registration. ErrNotFound if there is none.
	GetSlave(ctx context.Context, slaveID string) (model.Slave, error)
	// SetSlaveState changes a slave's state.
	SetSlaveState(ctx context.Context, slaveID string, state model.SlaveState, now time.Time) error
	// ListSlaves returns registrations, alive ones first; with alive set,
	// only those.
	ListSlaves(ctx context.Context, aliveOnly bool) ([]model.Slave, error)
	// RunningOn returns the running attempts of a slave.
	RunningOn(ctx context.Context, slaveID string) ([]model.Attempt, error)

	// AddEvent records an event that is not part of a state change above.
	AddEvent(ctx context.Context, e model.Event) error
	// Events returns events with id > f.After, oldest first.
	Events(ctx context.Context, f EventFilter) ([]model.Event, error)

	// OldJobs returns the ids of at most limit jobs submitted before
	// before, oldest first: those that retention deletes.
	OldJobs(ctx context.Context, before time.Time, limit int) ([]string, error)
	// DeleteJob deletes a job with its tasks, attempts and events, in one
	// transaction. ErrNotFound if there is no such job.
	DeleteJob(ctx context.Context, id string) error
	// PruneBefore deletes the events recorded before before, and the
	// registrations of slaves that ended before it; it returns how many
	// rows went.
	PruneBefore(ctx context.Context, before time.Time) (int64, error)
	// Secret returns the secret stored under name; when there is none yet
	// it stores fresh and returns it. Callers racing (masters starting at
	// once) all get the one value stored first.
	Secret(ctx context.Context, name string, fresh []byte) ([]byte, error)

	Close() error
}

// AttemptPage and Cursor select a page of a job's attempts (see model).
type (
	AttemptPage = model.AttemptPage
	Cursor      = model.Cursor
)

// CursorOf is the cursor just after a.
func CursorOf(a model.Attempt) Cursor { return model.CursorOf(a) }

// EventFilter selects events: of one slave, one job, or all.
type EventFilter struct {
	SlaveID string
	JobID   string
	After   int64
	Limit   int // 1000 when 0
}

// StartRequest identifies a queue entry and the slot that reserved it.
type StartRequest struct {
	AttemptID int64
	Token     string
	EntryID   uint64
	SlaveID   string
	Slot      int
	Hostname  string
	// Takeover allows starting an attempt that runs already from the same
	// entry (its lease ran out in the queue). Without it such a start is a
	// *HeldError, so that the caller can first check the holder is gone.
	Takeover bool
}

// HeldError says an attempt runs already, on SlaveID, from the same queue
// entry. It is a model.ErrConflict.
type HeldError struct{ SlaveID string }

func (e *HeldError) Error() string { return "conflict: the attempt runs already on slave " + e.SlaveID }

// Unwrap makes a HeldError a conflict.
func (e *HeldError) Unwrap() error { return model.ErrConflict }

// FinishOutcome is what a finish did.
type FinishOutcome struct {
	Attempt   model.Attempt  // the finished attempt
	Next      *model.Attempt // the retry it queued, if any
	Duplicate bool           // the same finish had already been recorded
}
