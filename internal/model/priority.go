package model

import "time"

// Queue priorities: lower runs first (beanstalkd's convention). First
// attempts sit in the band below NormalBase, ordered longest expected
// runtime first; retries and re-queued runs sit in a band of their own ahead
// of every first attempt, so they never straggle behind a later job.
const (
	NormalBase uint32 = 1 << 31
	RetryBase  uint32 = 1 << 30
	// maxBoost bounds how far the expected runtime moves a priority, so the
	// two bands never overlap (2^29 deciseconds is over 600 days).
	maxBoost = 1 << 29
)

// Priority returns the queue priority of a run expected to take expected;
// retry is true for any run but a task's first.
func Priority(expected time.Duration, retry bool) uint32 {
	base := NormalBase
	if retry {
		base = RetryBase
	}
	boost := expected / (100 * time.Millisecond)
	if boost < 0 {
		boost = 0
	}
	if boost > maxBoost {
		boost = maxBoost
	}
	return base - uint32(boost)
}

// ExpectedRuntimes gives each task of a submission the runtime that orders
// it: the p90 of its history (known maps description → runtime). A task
// without a history takes the median p90 of the job's known tasks with the
// same isolate hash, else of those with the same command (TaskKey.Command):
// most likely the same test binary, run on another shard or case. A task
// related to none gets the mean of the job's known ones plus a step: it runs
// after tasks known to be long and before tasks known to be short, since an
// unknown task may well be long and starting it late makes it a straggler.
func ExpectedRuntimes(tasks []TaskKey, known map[string]Runtime) []time.Duration {
	byHash := make(map[string][]time.Duration)
	byCommand := make(map[string][]time.Duration)
	var sum time.Duration
	var n int
	for _, t := range tasks {
		if r, ok := known[t.Description]; ok {
			byHash[t.IsolateHash] = append(byHash[t.IsolateHash], r.P90)
			byCommand[t.Command()] = append(byCommand[t.Command()], r.P90)
			sum += r.P90
			n++
		}
	}
	var unknown time.Duration
	if n > 0 {
		unknown = sum/time.Duration(n) + 100*time.Millisecond
	}
	out := make([]time.Duration, len(tasks))
	for i, t := range tasks {
		if r, ok := known[t.Description]; ok {
			out[i] = r.P90
		} else if ds := byHash[t.IsolateHash]; len(ds) > 0 {
			out[i] = percentile(ds, 0.5)
		} else if ds := byCommand[t.Command()]; len(ds) > 0 && t.Command() != "" {
			out[i] = percentile(ds, 0.5)
		} else {
			out[i] = unknown
		}
	}
	return out
}
