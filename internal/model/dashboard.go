package model

import "time"

// TaskTab is a subset of a job's tasks that its page shows on one tab,
// chosen by the state of each task's latest attempt ("" is all of them).
type TaskTab string

// The tabs of a job's page. TabFailed holds the tasks that failed for good
// by their own doing (failed or infra failure); timed-out and canceled ones
// have their own tabs. TabFlaky holds the tasks that failed and then passed
// on a retry, whatever their tab by state (passed).
const (
	TabAll      TaskTab = ""
	TabRunning  TaskTab = "running"
	TabQueued   TaskTab = "queued"
	TabFailed   TaskTab = "failed"
	TabTimedOut TaskTab = "timed_out"
	TabFlaky    TaskTab = "flaky"
	TabPassed   TaskTab = "passed"
	TabCanceled TaskTab = "canceled"
)

// TaskTabs are the tabs in the order a job's page shows them.
var TaskTabs = []TaskTab{TabAll, TabRunning, TabQueued, TabFailed, TabTimedOut, TabFlaky, TabPassed, TabCanceled}

// Valid reports whether t is one of the tabs.
func (t TaskTab) Valid() bool {
	for _, v := range TaskTabs {
		if t == v {
			return true
		}
	}
	return false
}

// TabOf is the tab by state of a task whose latest attempt is in s.
func TabOf(s State) TaskTab {
	switch s {
	case Running:
		return TabRunning
	case Queued:
		return TabQueued
	case Failed, InfraFailed:
		return TabFailed
	case TimedOut:
		return TabTimedOut
	case Passed:
		return TabPassed
	case Canceled:
		return TabCanceled
	}
	return TabAll
}

// TaskOrder is the order of a page of a job's tasks.
type TaskOrder string

// The orders: by place in the job (the default), by description, by state
// (failures first, then what runs, what waits, what was canceled, what
// passed), or by runtime (longest first).
const (
	OrderIndex   TaskOrder = ""
	OrderName    TaskOrder = "name"
	OrderState   TaskOrder = "state"
	OrderRuntime TaskOrder = "runtime"
)

// Valid reports whether o is one of the orders.
func (o TaskOrder) Valid() bool {
	switch o {
	case OrderIndex, OrderName, OrderState, OrderRuntime:
		return true
	}
	return false
}

// TaskQuery selects a page of a job's tasks, each given as its latest
// attempt. Offset pages, not keyset ones: a page sorted by runtime has no
// stable key, and a job's tasks number in the ten thousands at most.
type TaskQuery struct {
	Tab    TaskTab
	Order  TaskOrder
	Offset int
	Limit  int // 0: all
	// Now is when runtimes of running attempts are measured to (OrderRuntime).
	Now time.Time
}

// TabCounts are how many of a job's tasks each tab holds.
type TabCounts map[TaskTab]int

// JobFilter selects jobs for the jobs page.
type JobFilter struct {
	Since    time.Time // submitted at or after
	User     string    // "": anyone's
	State    JobState  // "": any
	IDPrefix string    // "": any id
	Limit    int       // 100 when 0
}

// JobState is a state a job is filtered by.
type JobState string

// A job is running until every task has finished; a finished job passed
// when none of its tasks failed for good. Canceled jobs are also counted
// as failed or passed.
const (
	JobAnyState JobState = ""
	JobRunning  JobState = "running"
	JobFailed   JobState = "failed"
	JobPassed   JobState = "passed"
	JobCanceled JobState = "canceled"
)

// JobStates are the states in the order the jobs page offers them.
var JobStates = []JobState{JobAnyState, JobRunning, JobFailed, JobPassed, JobCanceled}

// Valid reports whether s is one of the states.
func (s JobState) Valid() bool {
	for _, v := range JobStates {
		if s == v {
			return true
		}
	}
	return false
}

// Active is how many of a job's tasks are running and queued now.
type Active struct {
	Running, Queued int
}

// FlakyTest is a description whose tasks failed and then passed on retry.
type FlakyTest struct {
	Description string
	Flaky       int       // tasks that failed and then passed
	Last        time.Time // submission of the latest job it was flaky in
}
