package server

import (
	"context"
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// The dashboard's reads (store.Dashboard), for package web.

// FindJobs returns the jobs f selects, newest first.
func (m *Master) FindJobs(ctx context.Context, f model.JobFilter) ([]model.Job, error) {
	return m.store.FindJobs(ctx, f)
}

// ActiveTasks returns how many tasks of each named job run and wait.
func (m *Master) ActiveTasks(ctx context.Context, jobIDs []string) (map[string]model.Active, error) {
	return m.store.ActiveTasks(ctx, jobIDs)
}

// TaskTabs counts a job's tasks on each tab of its page.
func (m *Master) TaskTabs(ctx context.Context, jobID string) (model.TabCounts, error) {
	if err := knownJob(jobID); err != nil {
		return nil, err
	}
	return m.store.TaskTabs(ctx, jobID)
}

// TaskPage returns a page of a job's tasks, each as its latest attempt.
func (m *Master) TaskPage(ctx context.Context, jobID string, q model.TaskQuery) ([]model.Attempt, error) {
	if err := knownJob(jobID); err != nil {
		return nil, err
	}
	return m.store.TaskPage(ctx, jobID, q)
}

// TaskAttempts returns every attempt of the given tasks.
func (m *Master) TaskAttempts(ctx context.Context, taskRows []int64) ([]model.Attempt, error) {
	return m.store.TaskAttempts(ctx, taskRows)
}

// maxDescription bounds a description looked up: none stored is longer
// (the MySQL column holds 1000 characters).
const maxDescription = 4000

// TestRuns returns the latest runs of a test across jobs, newest first.
func (m *Master) TestRuns(ctx context.Context, description string, limit int) ([]model.Attempt, error) {
	if description == "" || len(description) > maxDescription {
		return nil, fmt.Errorf("%w: a description of 1 to %d bytes is needed", model.ErrInvalid, maxDescription)
	}
	return m.store.TestRuns(ctx, description, limit)
}

// FlakyTests returns the tests that failed and then passed most often in
// jobs submitted since.
func (m *Master) FlakyTests(ctx context.Context, since time.Time, limit int) ([]model.FlakyTest, error) {
	return m.store.FlakyTests(ctx, since, limit)
}
