package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
)

// Submission is a job as a user submits it.
type Submission struct {
	ID    string
	User  string
	Name  string
	Tasks []model.TaskSpec
	// FailMissingInputs accepts a job naming inputs that the isolate server
	// lacks, and fails those tasks at once with the reason in their stderr,
	// rather than refusing the job. It is for the legacy /submit_job: the
	// original client hides an error answer and retries it for 50 s, but
	// shows the logs of failed tasks.
	FailMissingInputs bool
	// IsolateServer is the isolate server's URL as the user reaches it,
	// which those logs name.
	IsolateServer string
	// MaxFailures is the job's failure cap; nil takes the master's
	// (Config.MaxFailures), 0 is none.
	MaxFailures *int
	// Hedge: the job's stragglers get a second run; nil takes the
	// master's (Config.Hedge).
	Hedge *bool
}

// Submit checks a submission and writes it (in parts, see create); the
// feeder puts its attempts into the queue as soon as the first part is in.
// Bad input is model.ErrInvalid with a message that says what to fix, and
// writes nothing; a write that fails midway leaves nothing either.
func (m *Master) Submit(ctx context.Context, sub Submission) (model.Job, error) {
	if !protocol.ValidJobID(sub.ID) {
		return model.Job{}, fmt.Errorf("%w: job id %q: use 1 to 200 letters, digits and \"._-:@+\", not starting with a dot", model.ErrInvalid, sub.ID)
	}
	if len(sub.Tasks) == 0 {
		return model.Job{}, fmt.Errorf("%w: job %s has no tasks", model.ErrInvalid, sub.ID)
	}
	if err := checkText("user", sub.User, protocol.MaxUser); err != nil {
		return model.Job{}, err
	}
	if err := checkText("name", sub.Name, protocol.MaxName); err != nil {
		return model.Job{}, err
	}
	if len(sub.Tasks) > m.cfg.MaxTasksPerJob {
		return model.Job{}, fmt.Errorf("%w: job %s has %d tasks; this master accepts at most %d per job",
			model.ErrTooLarge, sub.ID, len(sub.Tasks), m.cfg.MaxTasksPerJob)
	}
	maxFailures := m.cfg.MaxFailures
	if sub.MaxFailures != nil {
		maxFailures = *sub.MaxFailures
	}
	if maxFailures < 0 || maxFailures > protocol.MaxFailures {
		return model.Job{}, fmt.Errorf("%w: max_failures %d: use 0 (no cap) to %d", model.ErrInvalid, maxFailures, protocol.MaxFailures)
	}
	missing, err := m.missingInputs(ctx, sub.Tasks)
	if err != nil {
		return model.Job{}, err
	}
	var refused map[string]*model.Refusal
	if len(missing) > 0 {
		if !sub.FailMissingInputs {
			return model.Job{}, missingError(missing)
		}
		if refused, err = m.refuse(ctx, sub, missing); err != nil {
			return model.Job{}, err
		}
	}
	descs := make([]string, len(sub.Tasks))
	keys := make([]model.TaskKey, len(sub.Tasks))
	for i, t := range sub.Tasks {
		descs[i] = t.Description
		keys[i] = model.TaskKey{Description: t.Description, IsolateHash: t.IsolateHash}
	}
	known, err := m.store.Durations(ctx, descs)
	if err != nil {
		return model.Job{}, fmt.Errorf("runtime history: %w", err)
	}
	expected := model.ExpectedRuntimes(keys, known)
	job := model.NewJob{ID: sub.ID, User: sub.User, Name: sub.Name, Tasks: make([]model.NewTask, len(sub.Tasks)),
		MaxFailures: maxFailures, Hedge: m.cfg.Hedge}
	if sub.Hedge != nil {
		job.Hedge = *sub.Hedge
	}
	for i, t := range sub.Tasks {
		job.Tasks[i] = model.NewTask{
			TaskID:   fmt.Sprintf("%s.%d", t.IsolateHash, i),
			Index:    i,
			Spec:     t,
			Expected: expected[i],
			Priority: model.Priority(expected[i], t.Attempt > 0),
		}
		if r := refused[t.IsolateHash]; r != nil {
			// Running it again cannot help until someone archives the
			// inputs, and then `dist_test retry` can.
			job.Tasks[i].Spec.MaxRetries = min(t.MaxRetries, t.Attempt)
			job.Tasks[i].Refused = r
		}
	}
	if err := m.create(ctx, job); err != nil {
		m.dropRefusals(refused)
		return model.Job{}, fmt.Errorf("submit %s: %w", sub.ID, err)
	}
	if len(refused) > 0 {
		m.log.InfoContext(ctx, "tasks failed at submission: inputs not on the isolate server", "job", sub.ID,
			"inputs", len(refused), "isolate_server", sub.IsolateServer)
	}
	m.log.InfoContext(ctx, "job submitted", "job", sub.ID, "tasks", len(sub.Tasks), "user", sub.User)
	m.metrics.JobSubmitted(len(sub.Tasks))
	m.poke()
	return m.store.GetJob(ctx, sub.ID)
}

// checkText refuses a field that does not fit its column: too long, or
// not UTF-8 (which MySQL refuses to store).
func checkText(field, v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("%w: %s is %d bytes long; at most %d are allowed", model.ErrInvalid, field, len(v), max)
	}
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return fmt.Errorf("%w: %s must be UTF-8 text without NUL", model.ErrInvalid, field)
	}
	return nil
}

// knownJob is ErrNotFound for an id that no job can have, so that such ids
// never reach the database (where MySQL would refuse to compare them).
func knownJob(id string) error {
	if !protocol.ValidJobID(id) {
		return fmt.Errorf("job %q: %w", clipID(id), model.ErrNotFound)
	}
	return nil
}

// validTaskID: task ids are "<isolate hash>.<index>", ASCII and short.
func validTaskID(id string) bool {
	if id == "" || len(id) > 100 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

func clipID(id string) string { return model.Clip(id, 60) }

// missingInputs returns the isolate hashes of tasks whose inputs are not
// all on the isolate server: such a task could only fail, on a slave,
// minutes later.
func (m *Master) missingInputs(ctx context.Context, tasks []model.TaskSpec) ([]string, error) {
	if m.inputs == nil {
		return nil, nil
	}
	seen := make(map[string]bool)
	var digests []string
	for _, t := range tasks {
		if !seen[t.IsolateHash] {
			seen[t.IsolateHash] = true
			digests = append(digests, t.IsolateHash)
		}
	}
	missing, err := m.inputs.UseManifests(ctx, digests)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot ask the isolate server about the inputs: %v", model.ErrUnavailable, err)
	}
	// Only hashes the job named count: the answer of a remote server is
	// not trusted to name blob keys.
	known := missing[:0]
	for _, d := range missing {
		if seen[d] {
			known = append(known, d)
		}
	}
	sort.Strings(known)
	return known, nil
}

// missingError refuses a job for its missing inputs.
func missingError(missing []string) error {
	more := ""
	if len(missing) > 5 {
		more = fmt.Sprintf(" and %d more", len(missing)-5)
		missing = missing[:5]
	}
	return fmt.Errorf("%w: isolate_hash %s%s not on the isolate server; archive the inputs first (dist_test isolate archive)",
		model.ErrInvalid, strings.Join(missing, ", "), more)
}

// refusalWrites bounds the stderr logs refuse writes at once.
const refusalWrites = 8

// refuse stores, for each missing input, the stderr log its tasks are
// failed with. The keys are under the job's outputs, so retention deletes
// them with it, and unique to this submission, so that dropRefusals never
// deletes the logs of a job that had the same id.
func (m *Master) refuse(ctx context.Context, sub Submission, missing []string) (map[string]*model.Refusal, error) {
	nonce := make([]byte, 6)
	rand.Read(nonce)
	where := "the isolate server"
	if sub.IsolateServer != "" {
		where += " " + sub.IsolateServer
	}
	refused := make(map[string]*model.Refusal, len(missing))
	for _, d := range missing {
		refused[d] = &model.Refusal{
			Error:  fmt.Sprintf("inputs %s are not on %s: archive them first", d, where),
			Stderr: fmt.Sprintf("outputs/%s/missing-inputs.%s.%x.stderr", keySafe(sub.ID), d, nonce),
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(refusalWrites)
	for _, r := range refused {
		g.Go(func() error {
			text := r.Error + "\n"
			return m.blobs.Put(gctx, r.Stderr, strings.NewReader(text), int64(len(text)))
		})
	}
	if err := g.Wait(); err != nil {
		m.dropRefusals(refused)
		return nil, fmt.Errorf("%w: storing the logs of tasks whose inputs are missing: %v", model.ErrUnavailable, err)
	}
	return refused, nil
}

// dropRefusals deletes the logs of a submission that was not written.
// Best effort: a log left behind is a few bytes under outputs/.
func (m *Master) dropRefusals(refused map[string]*model.Refusal) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, r := range refused {
		if err := m.blobs.Delete(ctx, r.Stderr); err != nil {
			m.log.Warn("deleting the log of a refused task", "key", r.Stderr, "err", err)
		}
	}
}

// Job returns a job with its counters.
func (m *Master) Job(ctx context.Context, id string) (model.Job, error) {
	if err := knownJob(id); err != nil {
		return model.Job{}, err
	}
	return m.store.GetJob(ctx, id)
}

// Jobs returns jobs submitted since, newest first.
func (m *Master) Jobs(ctx context.Context, since time.Time, limit int) ([]model.Job, error) {
	return m.store.ListJobs(ctx, since, limit)
}

// Attempts returns a page of a job's attempts.
func (m *Master) Attempts(ctx context.Context, jobID string, p store.AttemptPage) ([]model.Attempt, error) {
	if err := knownJob(jobID); err != nil {
		return nil, err
	}
	return m.store.PageAttempts(ctx, jobID, p)
}

// Attempt returns one attempt.
func (m *Master) Attempt(ctx context.Context, jobID, taskID string, n int) (model.Attempt, error) {
	if err := knownJob(jobID); err != nil {
		return model.Attempt{}, err
	}
	if !validTaskID(taskID) {
		return model.Attempt{}, fmt.Errorf("task %q of job %s: %w", clipID(taskID), jobID, model.ErrNotFound)
	}
	return m.store.GetAttempt(ctx, jobID, taskID, n)
}

// Cancel ends a job: every unfinished attempt is canceled. Running ones are
// killed by their slaves at their next heartbeat, when the master tells them
// their lease is gone; queued entries are deleted from the queue where it
// still holds them.
func (m *Master) Cancel(ctx context.Context, jobID string) (model.Job, error) {
	if err := knownJob(jobID); err != nil {
		return model.Job{}, fmt.Errorf("cancel: %w", err)
	}
	return m.cancel(ctx, jobID)
}

// capFailures cancels the rest of a job that has reached its failure cap:
// called after each final failure.
func (m *Master) capFailures(ctx context.Context, jobID string) {
	j, err := m.store.GetJob(ctx, jobID)
	if err != nil || !j.OverFailureCap() || !j.FinishedAt.IsZero() {
		// An error leaves the job running, as without a cap: the next
		// failure looks again.
		return
	}
	detail := fmt.Sprintf("%d tasks failed, max_failures is %d: the rest of the job is canceled",
		j.Counts.FailedGroups-j.Counts.CanceledGroups, j.MaxFailures)
	_ = m.store.AddEvent(ctx, model.Event{At: m.now(), Kind: model.EventJobFailureCap, JobID: jobID, Attempt: -1, Detail: detail})
	m.log.InfoContext(ctx, "job reached its failure cap", "job", jobID, "failed", j.Counts.FailedGroups, "max_failures", j.MaxFailures)
	if _, err := m.cancel(ctx, jobID); err != nil {
		m.log.WarnContext(ctx, "could not cancel a job over its failure cap", "job", jobID, "err", err)
	}
}

func (m *Master) cancel(ctx context.Context, jobID string) (model.Job, error) {
	canceled, err := m.store.CancelJob(ctx, jobID, m.now())
	if err != nil {
		return model.Job{}, fmt.Errorf("cancel %s: %w", jobID, err)
	}
	for _, a := range canceled {
		if a.State == model.Queued && a.Enqueued {
			// Best effort: a stale entry left behind is refused at start.
			_ = m.queue.Delete(ctx, a.EntryID)
		}
	}
	m.metrics.Canceled(len(canceled))
	if len(canceled) > 0 {
		m.log.InfoContext(ctx, "job canceled", "job", jobID, "attempts", len(canceled))
	}
	return m.store.GetJob(ctx, jobID)
}

// Retry runs the named failed tasks (all failed tasks when none is named)
// once more.
func (m *Master) Retry(ctx context.Context, jobID string, taskIDs []string) ([]string, error) {
	if err := knownJob(jobID); err != nil {
		return nil, fmt.Errorf("retry: %w", err)
	}
	if len(taskIDs) > protocol.MaxRetryTaskIDs {
		return nil, fmt.Errorf("%w: %d task ids in one retry; at most %d, or none to retry every failed task",
			model.ErrInvalid, len(taskIDs), protocol.MaxRetryTaskIDs)
	}
	for _, id := range taskIDs {
		if !validTaskID(id) {
			return nil, fmt.Errorf("retry in %s: no task %q: %w", jobID, clipID(id), model.ErrNotFound)
		}
	}
	got, err := m.store.Retry(ctx, jobID, taskIDs, lifecycle.RetryFailed, m.now())
	if err != nil {
		return nil, fmt.Errorf("retry in %s: %w", jobID, err)
	}
	if len(got) > 0 {
		m.poke()
	}
	return got, nil
}

// RetryAttempt is the legacy /retry_task.
func (m *Master) RetryAttempt(ctx context.Context, jobID, taskID string, n int) error {
	if err := knownJob(jobID); err != nil {
		return err
	}
	if !validTaskID(taskID) {
		return fmt.Errorf("task %q of job %s: %w", clipID(taskID), jobID, model.ErrNotFound)
	}
	queued, err := m.store.Retry(ctx, jobID, []string{taskID}, lifecycle.RetryAfter(n), m.now())
	if len(queued) > 0 {
		m.poke()
	}
	return err
}
