package model

import "time"

// Workload is the unfinished work of the whole master: its queued and
// running attempts, and the runtime they are still expected to take. An
// autoscaler sizes the fleet from it.
type Workload struct {
	Queued, Running int
	// QueuedUnknown and RunningUnknown count the attempts whose task has
	// no expected runtime (no history): they add nothing to the work.
	QueuedUnknown, RunningUnknown int
	// QueuedWork sums the expected runtimes of the queued attempts;
	// RunningWork what remains of the running ones' (expected minus
	// elapsed, at least 0).
	QueuedWork, RunningWork time.Duration
}
