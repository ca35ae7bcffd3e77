package model

import "time"

// EventKind names what happened.
type EventKind string

// The events the master records, each in the transaction of the change it
// describes.
const (
	EventJobSubmitted    EventKind = "job_submitted"
	EventJobCanceled     EventKind = "job_canceled"
	EventJobFailureCap   EventKind = "job_failure_cap" // its max_failures was reached; a cancel follows
	EventAttemptStarted  EventKind = "attempt_started"
	EventAttemptFinished EventKind = "attempt_finished" // detail: the final state
	EventAttemptRequeued EventKind = "attempt_requeued" // its slave was lost; new token
	EventAttemptAborted  EventKind = "attempt_aborted"  // its slave gave it back
	EventAttemptHedged   EventKind = "attempt_hedged"   // a straggler: a second run is queued
	// EventRunSuperseded: of an attempt's two runs, the other one finished
	// first (or this one's slave was lost); this one is killed.
	EventRunSuperseded    EventKind = "run_superseded"
	EventSlaveStarted     EventKind = "slave_started"
	EventSlaveLost        EventKind = "slave_lost"
	EventSlaveDraining    EventKind = "slave_draining" // told to finish its runs and leave
	EventSlaveTerminated  EventKind = "slave_terminated"
	EventSlaveReset       EventKind = "slave_reset" // a lost slave came back and was told to reset
	EventQueueEntriesLost EventKind = "queue_entries_lost"
	// A backend of the master (database, queue, blob store) stopped
	// answering, and answers again; detail: which, why, for how long.
	EventServiceDown EventKind = "service_down"
	EventServiceBack EventKind = "service_back"
)

// Event is one record of the event log.
type Event struct {
	ID      int64
	At      time.Time
	Kind    EventKind
	SlaveID string
	JobID   string
	TaskID  string
	Attempt int // -1 when the event is not about an attempt
	Detail  string
}
