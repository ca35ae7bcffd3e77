package model

import (
	"reflect"
	"slices"
	"strings"
)

// Counts are a job's counters with the names and meaning of the legacy
// /job_status answer. "Tasks" are attempts; a "group" is all attempts of one
// task id. They are kept per job on every state change (see Group), so a
// poll never reads the task rows.
type Counts struct {
	TotalTasks      int `json:"total_tasks"`
	FinishedTasks   int `json:"finished_tasks"`
	RunningTasks    int `json:"running_tasks"` // not finished: queued or running, as the original counted
	RetriedTasks    int `json:"retried_tasks"`
	TimedoutTasks   int `json:"timedout_tasks"`
	FailedTasks     int `json:"failed_tasks"`
	SucceededTasks  int `json:"succeeded_tasks"`
	CanceledTasks   int `json:"canceled_tasks"`
	TotalGroups     int `json:"total_groups"`
	FinishedGroups  int `json:"finished_groups"`
	FailedGroups    int `json:"failed_groups"`
	SucceededGroups int `json:"succeeded_groups"`
	FlakyGroups     int `json:"flaky_groups"`
	FlakyTasks      int `json:"flaky_tasks"`
	CanceledGroups  int `json:"canceled_groups"`
}

// Finished reports whether every group of the job is finished.
func (c Counts) Finished() bool { return c.FinishedGroups == c.TotalGroups }

// Status is the legacy job status: "finished" or "running".
func (c Counts) Status() string {
	if c.Finished() {
		return "finished"
	}
	return "running"
}

// The fields of Counts are the one list of a job's counters. Their JSON
// tags are their names in /job_status and the API, and the names of the
// store's columns (CounterNames); Add, Sub and Fields walk the fields. A
// counter added here therefore reaches every one of those places, and
// TestCountersOneList fails until Group.Counts counts it.
var counterNames = func() []string {
	t := reflect.TypeFor[Counts]()
	names := make([]string, t.NumField())
	for i := range names {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Type.Kind() != reflect.Int || name == "" {
			panic("model.Counts." + f.Name + " must be an int with a json name")
		}
		names[i] = name
	}
	return names
}()

// CounterNames returns the names of the counters, in the order of Fields.
func CounterNames() []string { return slices.Clone(counterNames) }

// Fields returns a pointer to each counter of c, in the order of
// CounterNames.
func (c *Counts) Fields() []*int {
	v := reflect.ValueOf(c).Elem()
	out := make([]*int, v.NumField())
	for i := range out {
		out[i] = v.Field(i).Addr().Interface().(*int)
	}
	return out
}

// Add returns c + d, field by field.
func (c Counts) Add(d Counts) Counts { return c.combine(d, 1) }

// Sub returns c - d, field by field.
func (c Counts) Sub(d Counts) Counts { return c.combine(d, -1) }

func (c Counts) combine(d Counts, sign int) Counts {
	to, from := reflect.ValueOf(&c).Elem(), reflect.ValueOf(&d).Elem()
	for i := range to.NumField() {
		f := to.Field(i)
		f.SetInt(f.Int() + int64(sign)*from.Field(i).Int())
	}
	return c
}

// Group summarises the attempts of one task. It is stored with the task and
// changed in the same transaction as the attempt, so that the job's counters
// can be moved by Counts(after) - Counts(before) without reading other rows.
type Group struct {
	Attempts   int // attempt rows
	Finished   int // attempts in a final state
	Succeeded  int
	Failed     int // finished and not passed: failed, timed out or canceled
	TimedOut   int
	Canceled   int
	Retried    int // attempts whose number is above 0
	Latest     int // highest attempt number
	MaxRetries int
	// Cancel is set when the job or the task was canceled: the group is over
	// whatever retries it had left.
	Cancel bool
}

// Add records a new attempt row numbered n in the group.
func (g *Group) Add(n int) {
	g.Attempts++
	if n > 0 {
		g.Retried++
	}
	if g.Attempts == 1 || n > g.Latest {
		g.Latest = n
	}
}

// End records that one unfinished attempt reached the final state s.
func (g *Group) End(s State) {
	g.Finished++
	switch s {
	case Passed:
		g.Succeeded++
		return
	case TimedOut:
		g.TimedOut++
	case Canceled:
		g.Canceled++
	}
	g.Failed++
}

// RetriesLeft reports whether a failed latest attempt would be retried.
func (g Group) RetriesLeft() bool { return !g.Cancel && g.Latest < g.MaxRetries }

// Succeeded reports whether some attempt passed.
func (g Group) IsSucceeded() bool { return g.Succeeded > 0 }

// IsFailed: every attempt failed and no retry remains (or the group was canceled).
func (g Group) IsFailed() bool {
	return g.Succeeded == 0 && g.allFailed() && !g.RetriesLeft()
}

// IsFlaky: some attempt failed and (some passed, or retries remain).
func (g Group) IsFlaky() bool {
	if g.Failed == 0 {
		return false
	}
	if g.Succeeded > 0 {
		return true
	}
	return g.allFailed() && g.RetriesLeft()
}

// IsFinished: a success, or all failed with no retry left.
func (g Group) IsFinished() bool { return g.IsSucceeded() || g.IsFailed() }

func (g Group) allFailed() bool { return g.Attempts > 0 && g.Failed == g.Attempts }

// Counts is the group's contribution to its job's counters.
func (g Group) Counts() Counts {
	c := Counts{
		TotalTasks:     g.Attempts,
		FinishedTasks:  g.Finished,
		RunningTasks:   g.Attempts - g.Finished,
		RetriedTasks:   g.Retried,
		TimedoutTasks:  g.TimedOut,
		FailedTasks:    g.Failed,
		SucceededTasks: g.Succeeded,
		CanceledTasks:  g.Canceled,
		TotalGroups:    1,
	}
	if g.IsFinished() {
		c.FinishedGroups = 1
	}
	if g.IsFailed() {
		c.FailedGroups = 1
	}
	if g.IsSucceeded() {
		c.SucceededGroups = 1
	}
	if g.IsFlaky() {
		c.FlakyGroups = 1
		c.FlakyTasks = g.Failed
	}
	if g.Cancel && !g.IsSucceeded() {
		c.CanceledGroups = 1
	}
	return c
}

// Recount computes a job's counters from its attempts alone: the check that
// the counters kept on every state change are right.
func Recount(attempts []Attempt) Counts {
	groups := make(map[string]*Group)
	var order []string
	latestState := make(map[string]State)
	for _, a := range attempts {
		g := groups[a.TaskID]
		if g == nil {
			g = &Group{}
			groups[a.TaskID] = g
			order = append(order, a.TaskID)
		}
		g.MaxRetries = max(g.MaxRetries, a.MaxRetries)
		g.Add(a.Attempt)
		if a.State.Final() {
			g.End(a.State)
		}
		if a.Attempt == g.Latest {
			latestState[a.TaskID] = a.State
		}
	}
	var c Counts
	for _, id := range order {
		g := groups[id]
		g.Cancel = latestState[id] == Canceled
		c = c.Add(g.Counts())
	}
	return c
}
