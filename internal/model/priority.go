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
// it. Tasks with a history keep theirs. Tasks without one get the mean of the
// known ones in the same job: they run after tasks known to be long and
// before tasks known to be short (a step of priority ahead of a known task of
// exactly that mean), since an unknown task may well be long and starting it
// late makes it a straggler. known maps description → duration.
func ExpectedRuntimes(descriptions []string, known map[string]time.Duration) []time.Duration {
	var sum time.Duration
	var n int
	for _, d := range descriptions {
		if v, ok := known[d]; ok {
			sum += v
			n++
		}
	}
	var unknown time.Duration
	if n > 0 {
		unknown = sum/time.Duration(n) + 100*time.Millisecond
	}
	out := make([]time.Duration, len(descriptions))
	for i, d := range descriptions {
		if v, ok := known[d]; ok {
			out[i] = v
		} else {
			out[i] = unknown
		}
	}
	return out
}
