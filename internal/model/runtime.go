package model

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Runtime is what the master knows of how long the runs of one task
// description take: an exponentially weighted average (weight 0.3 on the
// newest run), which follows a test that got slower within a few runs, and
// the 90th percentile of its latest runs, which orders the queue, so that a test that is sometimes slow starts
// early rather than straggling at the end of its job.
type Runtime struct {
	EWMA time.Duration
	P90  time.Duration // 0 when no run is kept (a history older than p90s)
	// Recent are the latest runs, oldest first, at most RecentRuns.
	Recent []time.Duration
}

// RecentRuns is how many runs of a description the p90 is taken over:
// enough for one slow run in ten to show, few enough that a test that
// changed is judged by what it does now.
const RecentRuns = 20

// RuntimeOf is the runtime of a description from its weighted average
// and its latest runs (the store folds each run into both).
func RuntimeOf(ewma time.Duration, recent []time.Duration) Runtime {
	return Runtime{EWMA: ewma, P90: percentile(recent, 0.9), Recent: recent}
}

// percentile is the nearest-rank percentile q of ds.
func percentile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}

// EncodeRecent and DecodeRecent keep Recent in a text column, as
// milliseconds separated by commas. DecodeRecent skips what it cannot read:
// the history only orders the queue.
func EncodeRecent(ds []time.Duration) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = strconv.FormatInt(d.Milliseconds(), 10)
	}
	return strings.Join(parts, ",")
}

// DecodeRecent is the inverse of EncodeRecent.
func DecodeRecent(s string) []time.Duration {
	var out []time.Duration
	for _, p := range strings.Split(s, ",") {
		if v, err := strconv.ParseInt(p, 10, 64); err == nil && v >= 0 {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
	}
	if len(out) > RecentRuns {
		out = out[len(out)-RecentRuns:]
	}
	return out
}

// TaskKey is what ExpectedRuntimes knows of a task: its description, which
// keys the history, and what relates it to the other tasks of its job.
type TaskKey struct {
	Description string
	IsolateHash string
}

// Command is the first word of a description ("foo_test" of "foo_test
// shard 3 of 8"): descriptions sharing it are most likely the same program.
func (k TaskKey) Command() string {
	c, _, _ := strings.Cut(strings.TrimSpace(k.Description), " ")
	return c
}
