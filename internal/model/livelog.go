package model

import "time"

// LiveLog is what the master has of a running attempt's logs: the end of
// each, as its slave last sent it.
type LiveLog struct {
	Stdout, Stderr LogTail
	At             time.Time // when the slave sent the latest bytes
}

// LogTail is the end of a log: Data are its bytes from Offset on, and
// Offset bytes before them are not kept.
type LogTail struct {
	Offset int64
	Data   []byte
}

// Size is how many bytes the task has written to the log so far.
func (t LogTail) Size() int64 { return t.Offset + int64(len(t.Data)) }
