package store

import (
	"context"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// Dashboard is what the HTML pages read beyond what the API does: jobs by
// filter, a job's tasks by tab and order, and the history of one test.
// Each is one query over the indexes, bounded by its limit.
type Dashboard interface {
	// FindJobs returns the jobs f selects, newest first.
	FindJobs(ctx context.Context, f model.JobFilter) ([]model.Job, error)
	// ActiveTasks returns how many tasks of each named job are running and
	// queued; jobs with none are left out.
	ActiveTasks(ctx context.Context, jobIDs []string) (map[string]model.Active, error)
	// TaskTabs counts a job's tasks on each tab. ErrNotFound for no job.
	TaskTabs(ctx context.Context, jobID string) (model.TabCounts, error)
	// TaskPage returns a page of a job's tasks, each as its latest attempt.
	TaskPage(ctx context.Context, jobID string, q model.TaskQuery) ([]model.Attempt, error)
	// TaskAttempts returns every attempt of the tasks of the given rows, by
	// task row and attempt.
	TaskAttempts(ctx context.Context, taskRows []int64) ([]model.Attempt, error)
	// TestRuns returns the latest limit attempts of the tasks that have
	// this description, in any job, newest first.
	TestRuns(ctx context.Context, description string, limit int) ([]model.Attempt, error)
	// FlakyTests returns at most limit descriptions whose tasks failed and
	// then passed in jobs submitted at or after since, most often first.
	FlakyTests(ctx context.Context, since time.Time, limit int) ([]model.FlakyTest, error)
}
