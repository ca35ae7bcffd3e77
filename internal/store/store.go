// Package store defines the master's state of record: jobs, tasks, attempts,
// runtime history and slaves. Every state change of an attempt happens in one
// transaction together with the counters of its job, so that the counters
// always equal a recount of the rows. What a change does is decided by the
// rules of package lifecycle; a store locks the rows, hands them to the
// rule, and writes what it returns.
//
// Implementations: sqlite (the embedded default) and mysql, both built on
// sqlstore. One conformance suite (storetest) runs against both.
package store

import (
	"context"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
)

// Store is safe for concurrent use. Methods return model.ErrNotFound,
// model.ErrExists or model.ErrConflict (wrapped, with the reason) for the
// cases they document, and model.ErrUnavailable when the database cannot be
// reached.
type Store interface {
	Dashboard
	// CreateJob writes a job, its tasks and their first attempts (queued,
	// not yet enqueued) in one transaction. ErrExists if the id is taken.
	CreateJob(ctx context.Context, job model.NewJob, now time.Time) error
	// BeginJob writes a job in parts, so that its first tasks can start
	// while the rest are written: the job's row, counted for all of
	// job.Tasks, with job.Tasks[:first] and their first attempts, in one
	// transaction. The job is then marked as being written until until;
	// WriteTasks writes the rest. ErrExists if the id is taken.
	BeginJob(ctx context.Context, job model.NewJob, first int, until, now time.Time) error
	// WriteTasks writes job.Tasks[from:to] of a job that BeginJob began,
	// and extends its mark to until; with to = len(job.Tasks) the job is
	// written and the mark goes. Tasks written after the job was canceled
	// are canceled with it. ErrConflict if the job is no longer being
	// written (DropUnwritten took it), ErrNotFound if there is none.
	WriteTasks(ctx context.Context, job model.NewJob, from, to int, until, now time.Time) error
	// Unwritten returns the ids of at most limit jobs whose writing mark
	// ran out before before: submissions cut short.
	Unwritten(ctx context.Context, before time.Time, limit int) ([]string, error)
	// DropUnwritten deletes, as DeleteJob, a job whose writing mark ran
	// out before before. ErrConflict if the job is written or its mark is
	// current, ErrNotFound if there is none.
	DropUnwritten(ctx context.Context, id string, before time.Time) error
	GetJob(ctx context.Context, id string) (model.Job, error)
	// ListJobs returns jobs submitted at or after since, newest first.
	ListJobs(ctx context.Context, since time.Time, limit int) ([]model.Job, error)
	// PageAttempts returns at most p.Limit (all when 0) of a job's
	// attempts after p.After, ordered by task index and attempt; p.States
	// filters them when not empty. ErrNotFound for no job.
	PageAttempts(ctx context.Context, jobID string, p AttemptPage) ([]model.Attempt, error)
	GetAttempt(ctx context.Context, jobID, taskID string, attempt int) (model.Attempt, error)
	// CancelJob ends every unfinished attempt of a job as canceled and its
	// groups as failed (lifecycle.Cancel). It returns the attempts it
	// canceled (as they were). Canceling a finished job changes nothing.
	CancelJob(ctx context.Context, jobID string, now time.Time) ([]model.Attempt, error)
	// Retry queues one more attempt of each named task (of every task of
	// the job when taskIDs is empty) that rule takes (lifecycle.Retry). It
	// returns the task ids it queued. ErrNotFound for no job, or a named
	// task the job does not have.
	Retry(ctx context.Context, jobID string, taskIDs []string, rule lifecycle.RetryRule, now time.Time) ([]string, error)
	// Durations returns the runtime history of each description that has
	// one. FinishAttempt folds each
	// measured run into it.
	Durations(ctx context.Context, descriptions []string) (map[string]model.Runtime, error)

	// Backlog returns, for each job with queued attempts waiting for a
	// queue entry, how many wait and how many are in the queue, in no
	// particular order: what the feeder's policy decides from.
	Backlog(ctx context.Context) ([]JobBacklog, error)
	// UserLoad returns, for each user with attempts running or in the
	// queue, how many: the share of the slots each has now.
	UserLoad(ctx context.Context) (map[string]int, error)
	// Stragglers returns at most limit running attempts, of jobs that
	// hedge and without a hedge yet, that have run longer than
	// lifecycle.HedgeAfter their expected runtime at now; longest first.
	Stragglers(ctx context.Context, now time.Time, limit int) ([]model.Attempt, error)
	// Runs counts the runs going on: running attempts and their hedges.
	Runs(ctx context.Context) (int, error)
	// HedgeAttempt queues a second run of a running attempt
	// (lifecycle.Hedge) and returns it with the hedge's token.
	// ErrConflict if it is not running or is hedged already.
	HedgeAttempt(ctx context.Context, attemptID int64, now time.Time) (model.Attempt, error)
	// Waiting returns at most limit queued attempts of a job that wait for
	// a queue entry, in priority order (so retries first), then by id.
	Waiting(ctx context.Context, jobID string, limit int) ([]model.Attempt, error)
	// Claim marks the waiting attempts given (from Waiting) as having a
	// queue entry on its way, entry id 0 until MarkEnqueued records it, and
	// returns those it marked: an attempt another feeder claimed meanwhile
	// (another master's) is left out, so that it is put once.
	Claim(ctx context.Context, attempts []model.Attempt) ([]model.Attempt, error)
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
	// returns it with a fresh lease, and its spec. lifecycle.Start says
	// which entries may: a queued attempt whose token matches, or a running
	// one started from the same entry id (the entry came back after its
	// lease expired), which is a *lifecycle.HeldError unless req.Takeover.
	// Anything else is ErrConflict: the entry is stale.
	StartAttempt(ctx context.Context, req lifecycle.StartRequest, now time.Time) (model.Attempt, model.Spec, error)
	// RunningByLease returns the running attempt holding lease, or
	// ErrConflict.
	RunningByLease(ctx context.Context, lease string) (model.Attempt, error)
	// FinishAttempt records the result of the run holding lease; on failure
	// with a retry left it queues the next attempt in the same transaction
	// (lifecycle.Finish). Finishing again with the same lease returns the
	// recorded outcome with Duplicate set; any other lease is ErrConflict.
	FinishAttempt(ctx context.Context, lease string, r model.Result, now time.Time) (FinishOutcome, error)
	// RequeueRun puts a running attempt back to queued (lifecycle.Requeue):
	// it is not a new attempt and uses no retry. With keepEntry (the slave
	// gives the run back and releases its queue entry) the token and the
	// entry stay valid; otherwise (the slave was lost and may still hold
	// the entry) the attempt gets a new token and needs a new entry.
	// ErrConflict if lease is not current.
	RequeueRun(ctx context.Context, lease, reason string, keepEntry bool, now time.Time) error

	// RegisterSlave records a new slave registration as alive.
	RegisterSlave(ctx context.Context, s model.Slave) error
	// Heartbeat records a heartbeat and returns the slave as it was before.
	Heartbeat(ctx context.Context, slaveID string, now time.Time) (model.Slave, error)
	// GetSlave returns one registration. ErrNotFound if there is none.
	GetSlave(ctx context.Context, slaveID string) (model.Slave, error)
	// SetSlaveState changes a slave's state (lifecycle.SetSlave).
	SetSlaveState(ctx context.Context, slaveID string, state model.SlaveState, now time.Time) error
	// ListSlaves returns registrations, alive ones first, then draining
	// ones; with alive set, only those two (model.SlaveState.Live).
	ListSlaves(ctx context.Context, aliveOnly bool) ([]model.Slave, error)
	// Workload sums the queued and running attempts and the runtime they
	// are still expected to take at now.
	Workload(ctx context.Context, now time.Time) (model.Workload, error)
	// RunningOn returns the running attempts of a slave: their leases are
	// the slave's current ones.
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

// JobBacklog is a job's share of the queued attempts.
type JobBacklog struct {
	JobID string
	User  string // the job's owner
	// Oldest is the row id of its oldest attempt waiting for a queue
	// entry: the job's place in line.
	Oldest  int64
	Waiting int // queued attempts without a queue entry,
	Retries int // of which in the retry band: retries and runs queued again
	InQueue int // queued attempts with a queue entry
}

// FinishOutcome is what a finish did.
type FinishOutcome struct {
	Attempt   model.Attempt  // the finished attempt
	Next      *model.Attempt // the retry it queued, if any
	Duplicate bool           // the same finish had already been recorded
	// Superseded is the slave of the attempt's other run, which this
	// finish superseded (see lifecycle.Resolve); "" when it had none.
	Superseded string
}
