package model

import "time"

// LiveLog is what the master has of a running attempt's logs: the end of
// each, as its slave last sent it.
type LiveLog struct {
	Stdout, Stderr LogTail
	At             time.Time // when the slave sent the latest bytes
}

// CacheStats describe a slave's input cache as its last heartbeat did:
// what it holds, and how the inputs of the tasks it ran since it started
// were found, in the cache (hot) or downloaded (cold).
type CacheStats struct {
	Items, Bytes        int64
	HotItems, ColdItems int64
	HotBytes, ColdBytes int64
}

// HitRate is the share of input items found in the cache, from 0 to 1;
// false before any task fetched inputs.
func (c CacheStats) HitRate() (float64, bool) {
	n := c.HotItems + c.ColdItems
	if n == 0 {
		return 0, false
	}
	return float64(c.HotItems) / float64(n), true
}

// LogTail is the end of a log: Data are its bytes from Offset on, and
// Offset bytes before them are not kept.
type LogTail struct {
	Offset int64
	Data   []byte
}

// Size is how many bytes the task has written to the log so far.
func (t LogTail) Size() int64 { return t.Offset + int64(len(t.Data)) }
