// Package protocol holds the JSON messages of dist_test's HTTP API under
// /api/v1 and of the slave protocol, and the body of a queue entry. The
// master, the slave and the client all speak through these types; none of
// them imports another to do so.
package protocol

import (
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Paths of the JSON API.
const (
	PathJobs     = "/api/v1/jobs"     // GET list, POST create
	PathSlaves   = "/api/v1/slaves"   // GET list, POST register
	PathAttempts = "/api/v1/attempts" // slave protocol
	PathCAS      = "/api/v1/cas"      // isolate server
	PathOutputs  = "/outputs/"        // blobs served by the master when the store cannot presign
	// PathWhoAmI names the caller's role; without credentials it answers
	// 401 with a Digest challenge when the server has accounts, which is
	// how a client that holds credentials gets one before its first call.
	PathWhoAmI = "/api/v1/whoami"
)

// WhoAmI is the answer of GET PathWhoAmI.
type WhoAmI struct {
	User string `json:"user,omitempty"` // the account; "" for an address or a slave token
	Role string `json:"role"`           // anonymous, user, admin or slave
	// Address: a user by its address in allowed_ip_ranges, not by an account.
	Address bool `json:"address,omitempty"`
}

// Error is the body of every non-2xx answer of the JSON API and of the
// isolate server (WriteError writes it).
type Error struct {
	Error string `json:"error"`
	// Code names the error kind: not_found, exists, conflict, invalid,
	// too_large, unsupported, poison, unavailable, unauthenticated,
	// forbidden, internal.
	Code string `json:"code"`
	// RequestID is the id the server's log gives the request (also in the
	// X-Request-Id header).
	RequestID string `json:"request_id,omitempty"`
}

// Entry is the body of a queue entry: a reference to one queued attempt.
// The master refuses a start whose token is not the attempt's current one.
type Entry struct {
	AttemptID int64  `json:"attempt_id"`
	JobID     string `json:"job_id"`
	TaskID    string `json:"task_id"`
	Attempt   int    `json:"attempt"`
	Token     string `json:"token"`
	// Priority is the entry's priority, so that a slave that gives the
	// entry back can release it as it was.
	Priority uint32 `json:"priority"`
	// EnqueuedMS is when the master put the entry (Unix milliseconds), for
	// the dispatch latency it measures at start; 0 from older masters.
	EnqueuedMS int64 `json:"enqueued_ms,omitempty"`
}

// ---- client API ----

// CreateJob is the body of POST /api/v1/jobs. Tasks use the legacy job_json
// task fields (see ParseTasks).
type CreateJob struct {
	ID    string `json:"id,omitempty"` // generated when empty
	Name  string `json:"name,omitempty"`
	User  string `json:"user,omitempty"`
	Tasks []Task `json:"tasks"`
	JobOptions
}

// Task is one task of a submission, in the legacy job_json form.
type Task struct {
	IsolateHash   string   `json:"isolate_hash"`
	Description   string   `json:"description"`
	Timeout       float64  `json:"timeout,omitempty"`
	MaxRetries    int      `json:"max_retries,omitempty"`
	Attempt       int      `json:"attempt,omitempty"`
	ArtifactGlobs []string `json:"artifact_archive_globs,omitempty"`
	DockerImage   string   `json:"docker_image,omitempty"`
}

// Job is a job as the API returns it: its identity, legacy status and
// counters (the /job_status fields, inline).
type Job struct {
	ID       string `json:"id"`
	User     string `json:"user,omitempty"`
	Name     string `json:"name,omitempty"`
	Status   string `json:"status"` // running or finished
	Canceled bool   `json:"canceled"`
	// MaxFailures is the job's failure cap (0: none).
	MaxFailures int `json:"max_failures,omitempty"`
	// Hedge: the job's stragglers get a second run.
	Hedge       bool       `json:"hedge,omitempty"`
	SubmittedAt time.Time  `json:"submitted_at"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
	model.Counts
	// Inputs sums the input figures of the job's finished attempts.
	Inputs Inputs `json:"inputs"`
}

// Inputs are the figures of fetching inputs: items and bytes found in a
// slave's cache (hot) or downloaded (cold), and the seconds spent.
type Inputs struct {
	HotItems     int64   `json:"hot_items"`
	HotBytes     int64   `json:"hot_bytes"`
	ColdItems    int64   `json:"cold_items"`
	ColdBytes    int64   `json:"cold_bytes"`
	FetchSeconds float64 `json:"fetch_s"`
}

// InputsFrom converts model figures to their wire form.
func InputsFrom(i model.Inputs) Inputs {
	return Inputs{HotItems: i.HotItems, HotBytes: i.HotBytes, ColdItems: i.ColdItems, ColdBytes: i.ColdBytes,
		FetchSeconds: i.FetchTime.Seconds()}
}

// Model converts wire figures to the model's form.
func (i Inputs) Model() model.Inputs {
	return model.Inputs{HotItems: i.HotItems, HotBytes: i.HotBytes, ColdItems: i.ColdItems, ColdBytes: i.ColdBytes,
		FetchTime: time.Duration(i.FetchSeconds * float64(time.Second))}
}

// JobList is the answer of GET /api/v1/jobs.
type JobList struct {
	Jobs []Job `json:"jobs"`
}

// Attempt is one attempt of a task as the API returns it. The first fields
// are those of the legacy /tasks records.
type Attempt struct {
	TaskID              string     `json:"task_id"`
	Attempt             int        `json:"attempt"`
	Description         string     `json:"description"`
	StdoutLink          string     `json:"stdout_link,omitempty"`
	StderrLink          string     `json:"stderr_link,omitempty"`
	ArtifactArchiveLink string     `json:"artifact_archive_link,omitempty"`
	State               string     `json:"state"`
	IsolateHash         string     `json:"isolate_hash"`
	ExitCode            *int       `json:"exit_code,omitempty"`
	Slave               string     `json:"slave,omitempty"`
	Hostname            string     `json:"hostname,omitempty"`
	SubmittedAt         time.Time  `json:"submitted_at"`
	StartedAt           *time.Time `json:"started_at,omitempty"`
	FinishedAt          *time.Time `json:"finished_at,omitempty"`
	DurationSeconds     float64    `json:"duration_s"`
	// ExpectedSeconds is the runtime expected of a queued or running
	// attempt, from its description's history (0: none known).
	ExpectedSeconds float64  `json:"expected_s,omitempty"`
	Runs            int      `json:"runs"`
	MissingOutputs  []string `json:"missing_outputs,omitempty"`
	Error           string   `json:"error,omitempty"`
	Inputs          Inputs   `json:"inputs"`
	// CPUSeconds (user and system) and PeakMemoryBytes of the run's
	// processes, as its slave measured them in the run's cgroup; absent
	// when unknown.
	CPUSeconds      float64 `json:"cpu_s,omitempty"`
	PeakMemoryBytes int64   `json:"peak_memory_bytes,omitempty"`
	// DockerImage is the container image the task runs in, if any, and
	// ImagePullSeconds the time its slave took to make it present (a
	// pull), apart from the run's duration.
	DockerImage      string  `json:"docker_image,omitempty"`
	ImagePullSeconds float64 `json:"image_pull_s,omitempty"`
}

// AttemptList is the answer of GET /api/v1/jobs/{id}/tasks?status=&limit=&after=:
// one page of the job's attempts in task order. Next, when set, is the
// after= of the next page; the last page has none.
type AttemptList struct {
	Tasks []Attempt `json:"tasks"`
	Next  string    `json:"next,omitempty"`
}

// Pages of attempts: how many a request gets when it does not say, and at most.
const (
	DefaultPage = 1000
	MaxPage     = 10000
)

// Retry is the body of POST /api/v1/jobs/{id}/retry: run the named tasks
// (all failed ones when empty) once more.
type Retry struct {
	TaskIDs []string `json:"task_ids,omitempty"`
}

// RetryResult answers a Retry.
type RetryResult struct {
	Retried []string `json:"retried"`
}

// ---- slave protocol ----

// Resources describe a slave host.
type Resources struct {
	CPUs          int   `json:"cpus"`
	MemoryBytes   int64 `json:"memory_bytes"`
	DiskFreeBytes int64 `json:"disk_free_bytes"`
}

// Register is the body of POST /api/v1/slaves.
type Register struct {
	Hostname  string    `json:"hostname"`
	Slots     int       `json:"slots"`
	Version   string    `json:"version"`
	Resources Resources `json:"resources"`
}

// Registered answers Register.
type Registered struct {
	SlaveID             string `json:"slave_id"`
	HeartbeatIntervalMS int64  `json:"heartbeat_interval_ms"`
	// TouchIntervalMS is how often a slot must touch the queue entry of the
	// task it runs: well within the entry's time-to-run.
	TouchIntervalMS int64 `json:"touch_interval_ms"`
}

// Heartbeat is the body of POST /api/v1/slaves/{id}/heartbeat: the leases of
// the attempts the slave is running now, and of those it finished and has
// not yet reported (their results wait in its spool).
type Heartbeat struct {
	Running []string `json:"running"`
	Pending []string `json:"pending,omitempty"`
	// Tails carry what the running tasks wrote to their logs since the
	// last heartbeat the master answered, so that users can follow a run
	// before it ends.
	Tails []Tail `json:"tails,omitempty"`
	// Cache describes the slave's input cache, when it has one.
	Cache *CacheStats `json:"cache,omitempty"`
}

// CacheStats are what a slave's input cache holds now, and how the inputs
// of the tasks it ran since it started were found: in the cache (hot) or
// downloaded (cold).
type CacheStats struct {
	Items     int64 `json:"items"`
	Bytes     int64 `json:"bytes"`
	HotItems  int64 `json:"hot_items"`
	ColdItems int64 `json:"cold_items"`
	HotBytes  int64 `json:"hot_bytes"`
	ColdBytes int64 `json:"cold_bytes"`
}

// TailBytes bounds the log bytes one heartbeat carries per log of a run,
// and what the master keeps of each: a run that writes faster is followed
// by its latest TailBytes.
const TailBytes = 64 << 10

// Tail is the new part of a running task's logs.
type Tail struct {
	Lease  string    `json:"lease"`
	Stdout TailChunk `json:"stdout"`
	Stderr TailChunk `json:"stderr"`
}

// TailChunk is a log's bytes from Offset (the count of bytes the task had
// written before them); a chunk whose Offset is past what was sent before
// follows a gap, when the task wrote more than TailBytes between beats.
type TailChunk struct {
	Offset int64  `json:"offset"`
	Data   []byte `json:"data,omitempty"`
}

// HeartbeatReply tells a slave what to stop. Reset: the master had declared
// the slave lost; it must kill every task it runs and report none of them.
// Kill: leases of runs that were canceled or handed to another slave.
type HeartbeatReply struct {
	Reset bool     `json:"reset,omitempty"`
	Kill  []string `json:"kill,omitempty"`
	// Drain: take no new task; finish and report the runs, deregister and
	// exit (POST /api/v1/slaves/{id}/drain).
	Drain bool `json:"drain,omitempty"`
}

// Slave is a slave as GET /api/v1/slaves returns it.
type Slave struct {
	ID            string    `json:"id"`
	Hostname      string    `json:"hostname"`
	Slots         int       `json:"slots"`
	Version       string    `json:"version"`
	State         string    `json:"state"` // alive, draining, lost, terminated
	Resources     Resources `json:"resources"`
	RegisteredAt  time.Time `json:"registered_at"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	Running       int       `json:"running"`
}

// Event is one record of GET /api/v1/events.
type Event struct {
	ID      int64     `json:"id"`
	At      time.Time `json:"at"`
	Kind    string    `json:"kind"`
	SlaveID string    `json:"slave_id,omitempty"`
	JobID   string    `json:"job_id,omitempty"`
	TaskID  string    `json:"task_id,omitempty"`
	Attempt *int      `json:"attempt,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Drain is the body of POST /api/v1/slaves/{id}/drain, which may be
// empty: nothing to say yet, and unknown fields are refused so that a
// client expecting an option learns this master lacks it. The answer is
// the Slave, draining.
type Drain struct{}

// PathCapacity is GET: the master's work and slots (Capacity).
const PathCapacity = "/api/v1/capacity"

// Capacity answers GET PathCapacity: the unfinished attempts, the runtime
// they are still expected to take (a running one's expected runtime less
// its elapsed time, at least 0), and the slaves that run them. Attempts
// whose task has no runtime history count in *_unknown and add no work.
type Capacity struct {
	Queued         int   `json:"queued"`
	Running        int   `json:"running"`
	QueuedUnknown  int   `json:"queued_unknown"`
	RunningUnknown int   `json:"running_unknown"`
	QueuedWorkMS   int64 `json:"queued_work_ms"`
	RunningWorkMS  int64 `json:"running_work_ms"`
	// SlavesAlive and SlotsAlive count the slaves taking tasks;
	// SlavesDraining those finishing their last ones.
	SlavesAlive    int `json:"slaves_alive"`
	SlotsAlive     int `json:"slots_alive"`
	SlavesDraining int `json:"slaves_draining"`
	// SlotsPerSlave is the mean slots of the alive slaves (0: none alive).
	SlotsPerSlave int `json:"slots_per_slave"`
}

// EventList answers GET /api/v1/events?slave=&job=&after=&limit=.
type EventList struct {
	Events []Event `json:"events"`
}

// SlaveList answers GET /api/v1/slaves.
type SlaveList struct {
	Slaves []Slave `json:"slaves"`
}

// Start is the body of POST /api/v1/attempts/start: a slave slot asks to run
// the attempt of a queue entry it reserved.
type Start struct {
	SlaveID string `json:"slave_id"`
	Slot    int    `json:"slot"`
	EntryID uint64 `json:"entry_id"`
	Entry   Entry  `json:"entry"`
}

// Started answers Start. Lease authorises the uploads and the finish of
// this run and nothing else.
type Started struct {
	Lease string `json:"lease"`
	Spec  Spec   `json:"spec"`
}

// Spec is what a slave needs to run an attempt.
type Spec struct {
	JobID         string   `json:"job_id"`
	TaskID        string   `json:"task_id"`
	Attempt       int      `json:"attempt"`
	Description   string   `json:"description"`
	IsolateHash   string   `json:"isolate_hash"`
	TimeoutMS     int64    `json:"timeout_ms"`
	ArtifactGlobs []string `json:"artifact_archive_globs,omitempty"`
	DockerImage   string   `json:"docker_image,omitempty"`
}

// Output names accepted by PUT /api/v1/attempts/{lease}/outputs/{name}.
const (
	OutputStdout    = "stdout"
	OutputStderr    = "stderr"
	OutputArtifacts = "artifacts"
)

// Finish is the body of POST /api/v1/attempts/{lease}/finish. It is
// idempotent: the same finish sent again is acknowledged again.
type Finish struct {
	ExitCode   int   `json:"exit_code"` // negative: killed by that signal
	TimedOut   bool  `json:"timed_out"`
	DurationMS int64 `json:"duration_ms"`
	// Outputs names the outputs uploaded for this lease; Missing those the
	// slave produced but could not upload.
	Outputs []string `json:"outputs,omitempty"`
	Missing []string `json:"missing,omitempty"`
	Error   string   `json:"error,omitempty"`
	// Inputs are the figures of fetching this run's inputs.
	Inputs Inputs `json:"inputs"`
	// Infra: the task could not be run at all (its inputs could not be
	// fetched, say); Error says why. The master queues the attempt again
	// for another slave, or ends it as infra_failed after several such runs.
	Infra bool `json:"infra,omitempty"`
	// CPUMS and PeakMemoryBytes are what the run's processes used, when
	// the slave ran it in a cgroup of its own; 0 is unknown.
	CPUMS           int64 `json:"cpu_ms,omitempty"`
	PeakMemoryBytes int64 `json:"peak_memory_bytes,omitempty"`
	// PullMS is the time spent making the task's container image present
	// on the slave (pulling it, or finding it there), before the run.
	PullMS int64 `json:"pull_ms,omitempty"`
}

// Abort is the body of POST /api/v1/attempts/{lease}/abort: the slave
// gives the run back unfinished (it is shutting down) and releases its queue
// entry; the attempt is queued again without using a retry.
type Abort struct {
	Reason string `json:"reason,omitempty"`
}

// Finished answers Finish.
type Finished struct {
	State string `json:"state"`
	// Retried is set when the failure queued another attempt.
	Retried bool `json:"retried"`
	// Requeued answers an infrastructure failure that will be tried again:
	// the slave releases its queue entry, to be run elsewhere.
	Requeued bool `json:"requeued,omitempty"`
}

// ---- conversions ----

// SpecFrom converts a model spec to its wire form.
func SpecFrom(s model.Spec) Spec {
	return Spec{
		JobID: s.JobID, TaskID: s.TaskID, Attempt: s.Attempt, Description: s.Description,
		IsolateHash: s.IsolateHash, TimeoutMS: s.Timeout.Milliseconds(),
		ArtifactGlobs: s.ArtifactGlobs, DockerImage: s.DockerImage,
	}
}

// Model converts a wire spec to the model's form.
func (s Spec) Model() model.Spec {
	return model.Spec{
		JobID: s.JobID, TaskID: s.TaskID, Attempt: s.Attempt, Description: s.Description,
		IsolateHash: s.IsolateHash, Timeout: time.Duration(s.TimeoutMS) * time.Millisecond,
		ArtifactGlobs: s.ArtifactGlobs, DockerImage: s.DockerImage,
	}
}
