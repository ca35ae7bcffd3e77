// Package model holds dist_test's domain types: jobs, tasks (groups of
// attempts), attempts and their states, and the per-job counters that the
// legacy /job_status endpoint reports. It has no dependencies beyond the
// standard library so that every other package may import it.
package model

import (
	"errors"
	"time"
)

// State is the state of one attempt of a task.
type State string

// The attempt states. An attempt moves queued → running → one final state,
// or from any non-final state to canceled. A running attempt whose slave is
// lost goes back to queued under a new token; that is not a new attempt.
const (
	Queued   State = "queued"
	Running  State = "running"
	Passed   State = "passed"
	Failed   State = "failed"
	TimedOut State = "timed_out"
	Canceled State = "canceled"
	// InfraFailed: the task could not be run at all (its inputs could not
	// be fetched, its sandbox not made) on several slaves in a row. Not a
	// test failure, though it counts as a failed attempt in the legacy
	// counters.
	InfraFailed State = "infra_failed"
)

// Final reports whether s is a final state.
func (s State) Final() bool {
	switch s {
	case Passed, Failed, TimedOut, Canceled, InfraFailed:
		return true
	}
	return false
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	switch s {
	case Queued, Running, Passed, Failed, TimedOut, Canceled, InfraFailed:
		return true
	}
	return false
}

// Errors shared by the store, the master, the API and its clients. One
// table maps each to its HTTP status and back (internal/protocol/errors.go).
var (
	ErrNotFound    = errors.New("not found")
	ErrExists      = errors.New("already exists")
	ErrConflict    = errors.New("conflict")
	ErrInvalid     = errors.New("invalid input")
	ErrUnavailable = errors.New("service unavailable")
	ErrTooLarge    = errors.New("too large")
	// ErrUnsupported: a request in a form this server does not speak (an
	// upload's Content-Encoding other than gzip).
	ErrUnsupported = errors.New("unsupported")
	// ErrUnauthenticated: the request carries no credentials, or wrong
	// ones, and needs some. ErrForbidden: the caller is known but its role
	// may not do this.
	ErrUnauthenticated = errors.New("authentication required")
	ErrForbidden       = errors.New("forbidden")
	// ErrPoison: a queue entry whose task was started many times without
	// ever reporting, most likely because it crashes its slaves. The slave
	// buries the entry rather than run it again.
	ErrPoison = errors.New("entry keeps crashing slaves")
)

// TaskSpec is one task as a user submits it (legacy job_json task).
type TaskSpec struct {
	IsolateHash   string
	Description   string
	Timeout       time.Duration // 0 = none
	MaxRetries    int
	Attempt       int // first attempt number, normally 0
	ArtifactGlobs []string
	DockerImage   string
}

// NewTask is a task ready to be written at submission: its spec, its id
// within the job and the priority of its first attempt.
type NewTask struct {
	TaskID   string // "<isolate_hash>.<index>"
	Index    int
	Spec     TaskSpec
	Expected time.Duration // expected runtime used for priority; 0 = none known
	Priority uint32
	// Refused, when set, ends the task at submission without running it:
	// its first attempt is written failed, with no retry left.
	Refused *Refusal
}

// Refusal is why a task is failed at submission: its Error, and the blob
// key of the stderr log that tells the user (the original client shows
// users logs, not errors).
type Refusal struct {
	Error  string
	Stderr string
}

// NewJob is a whole submission, written in one transaction.
type NewJob struct {
	ID    string
	User  string
	Name  string
	Tasks []NewTask
	// Hedge: a straggling attempt gets a second run (see HedgeRun).
	Hedge bool
	// MaxFailures: once this many of its tasks failed for good, the job is
	// canceled (0: never).
	MaxFailures int
}

// Job is a job with its counters.
type Job struct {
	ID          string
	User        string
	Name        string
	SubmittedAt time.Time
	FinishedAt  time.Time // zero while running
	Canceled    bool
	MaxFailures int  // see NewJob
	Hedge       bool // see NewJob
	Counts      Counts
	Inputs      Inputs
}

// OverFailureCap reports whether j has as many tasks failed for good as its
// failure cap allows, and so is to start nothing more.
func (j Job) OverFailureCap() bool {
	return j.MaxFailures > 0 && j.Counts.FailedGroups-j.Counts.CanceledGroups >= j.MaxFailures
}

// Attempt is one attempt of a task with what is known about its run.
type Attempt struct {
	ID          int64 // row id of the attempt
	TaskRow     int64 // row id of the task (group)
	JobID       string
	TaskID      string
	Index       int // the task's place in its job, from 0
	Attempt     int
	Description string
	IsolateHash string
	DockerImage string // of its task: the run's container image, if any
	MaxRetries  int
	// Expected is the runtime its task was expected to take when the job
	// was submitted (model.ExpectedRuntimes), which set its priority.
	Expected time.Duration
	// Timeout is its task's (0: none), which a timed-out run reached.
	Timeout     time.Duration
	State       State
	Token       string // queue token: proves a queue entry is current
	Lease       string // run lease: proves a slave runs the current run
	Priority    uint32
	Enqueued    bool
	EntryID     uint64 // queue entry id last put for this attempt
	SlaveID     string
	Slot        int
	Hostname    string
	Runs        int // times this attempt was started (more than 1 after a lost run)
	SubmittedAt time.Time
	StartedAt   time.Time
	FinishedAt  time.Time
	ExitCode    *int
	Outputs     Outputs
	Inputs      Inputs
	Usage       Usage
	Error       string // why the run failed to produce a result, if it did
	// AvoidSlave is the slave on which the task's previous run failed: a
	// queued attempt starts there only when no other slave is alive.
	AvoidSlave string
	// Hedge is the second run of a running attempt that straggles, if one
	// was queued (Hedge.Token) or started (Hedge.Lease).
	Hedge HedgeRun
}

// HedgeRun is the duplicate run of a straggling attempt: whichever of the
// two runs finishes first gives the attempt its result, and the other is
// killed as superseded.
type HedgeRun struct {
	Token     string // its queue entry's token
	Lease     string // once started
	SlaveID   string
	Slot      int
	StartedAt time.Time
}

// AsHedge returns a as its hedge run sees it: with the hedge's lease,
// slave, slot and start.
func (a Attempt) AsHedge() Attempt {
	h := a.Hedge
	a.Lease, a.SlaveID, a.Slot, a.StartedAt, a.Hostname = h.Lease, h.SlaveID, h.Slot, h.StartedAt, ""
	return a
}

// Duration is how long the attempt ran, or has run so far at now.
func (a Attempt) Duration(now time.Time) time.Duration {
	if a.StartedAt.IsZero() {
		return 0
	}
	if a.FinishedAt.IsZero() {
		return now.Sub(a.StartedAt)
	}
	return a.FinishedAt.Sub(a.StartedAt)
}

// Outputs are the blob keys of an attempt's uploaded outputs; empty when
// there is none. Missing lists outputs the slave produced but could not upload.
type Outputs struct {
	Stdout    string
	Stderr    string
	Artifacts string
	Missing   []string
}

// Inputs are the figures of fetching a run's inputs: items and bytes found
// in the slave's cache (hot) or downloaded (cold), and the time it took.
// For a job they are the sums over its attempts.
type Inputs struct {
	HotItems, ColdItems int64
	HotBytes, ColdBytes int64
	FetchTime           time.Duration
}

// Usage is what a run's processes used, as its slave measured it in the
// run's own cgroup: CPU time (user and system) and peak memory in bytes.
// Zero is unknown (no cgroup v2 on that slave, or no memory controller).
type Usage struct {
	CPUTime    time.Duration
	PeakMemory int64
	// ImagePull is the time the slave took to make the task's container
	// image present (a pull, or finding it there) before the run; 0 for a
	// task that runs on the host.
	ImagePull time.Duration
}

// Add returns i + o.
func (i Inputs) Add(o Inputs) Inputs {
	return Inputs{i.HotItems + o.HotItems, i.ColdItems + o.ColdItems, i.HotBytes + o.HotBytes,
		i.ColdBytes + o.ColdBytes, i.FetchTime + o.FetchTime}
}

// Spec is what a slave needs to run an attempt.
type Spec struct {
	JobID         string
	TaskID        string
	Attempt       int
	Description   string
	IsolateHash   string
	Timeout       time.Duration
	ArtifactGlobs []string
	DockerImage   string
}

// Result is what a slave reports when an attempt ends.
type Result struct {
	ExitCode int  // negative: killed by that signal
	TimedOut bool // the slave killed it for exceeding its timeout
	Infra    bool // the task could not be run at all; Error says why
	Duration time.Duration
	Outputs  Outputs
	Inputs   Inputs
	Usage    Usage
	Error    string
}

// State returns the final state this result puts its attempt in.
func (r Result) State() State {
	switch {
	case r.Infra:
		return InfraFailed
	case r.TimedOut:
		return TimedOut
	case r.ExitCode == 0:
		return Passed
	default:
		return Failed
	}
}

// SlaveState is the state of a slave registration.
type SlaveState string

// A slave is alive while it heartbeats; draining once told to take no new
// task (it finishes what it runs, then leaves); lost once it has not
// heartbeated for the heartbeat timeout; terminated when it left on its own.
const (
	SlaveAlive      SlaveState = "alive"
	SlaveDraining   SlaveState = "draining"
	SlaveLost       SlaveState = "lost"
	SlaveTerminated SlaveState = "terminated"
)

// Live: the registration heartbeats and may hold runs (alive or draining).
func (s SlaveState) Live() bool { return s == SlaveAlive || s == SlaveDraining }

// Slave is one registration of a slave process.
type Slave struct {
	ID            string
	Hostname      string
	Slots         int
	Version       string
	State         SlaveState
	CPUs          int
	MemoryBytes   int64
	DiskFreeBytes int64
	RegisteredAt  time.Time
	LastHeartbeat time.Time
	Running       int // attempts it runs now (filled by listings)
}

// kinded gives an error one of the kinds above without changing its text.
type kinded struct{ kind, err error }

func (e kinded) Error() string   { return e.err.Error() }
func (e kinded) Unwrap() []error { return []error{e.kind, e.err} }

// WithKind returns err as an error of kind (errors.Is(err, kind) holds),
// with err's message unchanged: for messages that already say what is
// wrong, such as a parse error naming the field.
func WithKind(kind, err error) error {
	if err == nil {
		return nil
	}
	return kinded{kind, err}
}
