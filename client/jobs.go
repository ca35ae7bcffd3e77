package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// CreateJob submits a job. With j.ID set it is retried like an idempotent
// call: should a try that got no answer have reached the master, the next
// one is told the job exists, which then counts as success (the job is read
// back and must have as many tasks). Without an id nothing is retried.
func (c *Client) CreateJob(ctx context.Context, j protocol.CreateJob) (protocol.Job, error) {
	mode := never
	if j.ID != "" {
		mode = idempotent
	}
	var out protocol.Job
	err := c.retry(ctx, mode, func(ctx context.Context, n int) error {
		err := c.call(ctx, request{method: http.MethodPost, path: protocol.PathJobs, in: j, out: &out})
		if n == 1 || !errors.Is(err, model.ErrExists) {
			return err
		}
		got, gerr := c.GetJob(ctx, j.ID)
		if gerr != nil {
			return fmt.Errorf("%w (and reading it back: %v)", err, gerr)
		}
		if got.TotalGroups != len(j.Tasks) {
			return err // another job took this id
		}
		out = got
		return nil
	})
	if err != nil {
		return protocol.Job{}, fmt.Errorf("submit job %s: %w", j.ID, err)
	}
	return out, nil
}

// GetJob returns a job and its counters.
func (c *Client) GetJob(ctx context.Context, id string) (protocol.Job, error) {
	var out protocol.Job
	if err := c.call(ctx, request{method: http.MethodGet, path: jobPath(id, ""), out: &out, mode: reading}); err != nil {
		return protocol.Job{}, fmt.Errorf("get job %s: %w", id, err)
	}
	return out, nil
}

// ListJobs returns the newest jobs, at most limit of them (0: the master's
// default).
func (c *Client) ListJobs(ctx context.Context, limit int) ([]protocol.Job, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out protocol.JobList
	if err := c.call(ctx, request{method: http.MethodGet, path: protocol.PathJobs, query: q, out: &out, mode: reading}); err != nil {
		return nil, fmt.Errorf("list jobs: %w", err)
	}
	return out.Jobs, nil
}

// Tasks returns the attempts of a job's tasks; status ("" for all) is one
// of failed, succeeded, finished, queued, running, passed, timed_out or
// canceled. The master answers a page at a time; Tasks reads them all.
func (c *Client) Tasks(ctx context.Context, jobID, status string) ([]protocol.Attempt, error) {
	var all []protocol.Attempt
	after := ""
	for {
		q := url.Values{}
		if status != "" {
			q.Set("status", status)
		}
		if after != "" {
			q.Set("after", after)
		}
		var out protocol.AttemptList
		if err := c.call(ctx, request{method: http.MethodGet, path: jobPath(jobID, "/tasks"), query: q, out: &out, mode: reading}); err != nil {
			return nil, fmt.Errorf("list tasks of job %s: %w", jobID, err)
		}
		all = append(all, out.Tasks...)
		if out.Next == "" || out.Next == after {
			return all, nil
		}
		after = out.Next
	}
}

// Cancel cancels a job and returns it as it is after.
func (c *Client) Cancel(ctx context.Context, id string) (protocol.Job, error) {
	var out protocol.Job
	if err := c.call(ctx, request{method: http.MethodPost, path: jobPath(id, "/cancel"), out: &out, mode: idempotent}); err != nil {
		return protocol.Job{}, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return out, nil
}

// Retry runs tasks of a job once more: those named in r, or every failed
// one. It is not retried, as a repeat could queue the tasks twice.
func (c *Client) Retry(ctx context.Context, jobID string, r protocol.Retry) (protocol.RetryResult, error) {
	var out protocol.RetryResult
	if err := c.call(ctx, request{method: http.MethodPost, path: jobPath(jobID, "/retry"), in: r, out: &out}); err != nil {
		return protocol.RetryResult{}, fmt.Errorf("retry tasks of job %s: %w", jobID, err)
	}
	return out, nil
}
