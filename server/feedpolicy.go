package server

import (
	"cmp"
	"slices"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// The feeding policy: which queued attempts enter the queue, and in which
// order they are put. It is all here, in two pure functions, for the
// scheduling to come (fair share by user, runtime estimates) to change.
//
// Retries and runs queued again after a lost slave come first and ignore
// the window: they are late already, and a full window must not hold them
// back. Then jobs are served oldest first, each with at most window
// entries in the queue at once, which is what shares the slaves between
// jobs: a new job's tasks enter the queue beside an older job's instead of
// behind all of it. Within a job, attempts go in priority order (longest
// expected runtime first), which the queue keeps; puts alternate between
// jobs, so that equal priorities alternate in the queue too.

// feedTake is how many of a job's waiting attempts one round puts, the
// first in the job's priority order.
type feedTake struct {
	JobID string
	N     int
}

// planFeed decides one round of the feeder from the backlog of every job
// with attempts waiting for a queue entry: at most limit attempts in all,
// and, retries aside, at most window of each job in the queue.
func planFeed(backlog []store.JobBacklog, window, limit int) []feedTake {
	jobs := slices.Clone(backlog)
	slices.SortStableFunc(jobs, func(a, b store.JobBacklog) int { return cmp.Compare(a.Oldest, b.Oldest) })
	take := make([]int, len(jobs))
	left := limit
	for i, j := range jobs {
		n := min(j.Retries, left)
		take[i] += n
		left -= n
	}
	for i, j := range jobs {
		n := min(window-j.InQueue, j.Waiting-j.Retries, left)
		if n > 0 {
			take[i] += n
			left -= n
		}
	}
	var plan []feedTake
	for i, j := range jobs {
		if take[i] > 0 {
			plan = append(plan, feedTake{JobID: j.JobID, N: take[i]})
		}
	}
	return plan
}

// orderFeed orders the attempts of one round for putting: round-robin
// over the jobs, in the order of perJob, each job's in its own order.
func orderFeed(perJob [][]model.Attempt) []model.Attempt {
	var out []model.Attempt
	for more := true; more; {
		more = false
		for i, q := range perJob {
			if len(q) > 0 {
				out = append(out, q[0])
				perJob[i] = q[1:]
				more = true
			}
		}
	}
	return out
}
