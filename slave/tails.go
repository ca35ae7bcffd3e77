package slave

import (
	"io"
	"os"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// follow records where a run's logs are written, so that heartbeats carry
// their new bytes to the master.
func (s *Slave) follow(r *run, stdout, stderr string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.logs = [2]string{stdout, stderr}
}

// tails reads what each running task wrote since the master last had its
// logs, at most protocol.TailBytes per log (the latest ones). sent, called
// once the master has answered the heartbeat, records that it has them; a
// lost heartbeat leaves them to the next.
func (s *Slave) tails() (out []protocol.Tail, sent func()) {
	type want struct {
		r    *run
		t    protocol.Tail
		ends [2]int64
	}
	var ws []want
	s.mu.Lock()
	for lease, r := range s.runs {
		if !r.dropped && r.logs[0] != "" {
			ws = append(ws, want{r: r, t: protocol.Tail{Lease: lease}, ends: r.sent})
		}
	}
	// The files are read outside the lock; only the heartbeat loop
	// changes sent, so the offsets stay valid meanwhile.
	logs := make([][2]string, len(ws))
	for i, w := range ws {
		logs[i] = w.r.logs
	}
	s.mu.Unlock()
	for i := range ws {
		w := &ws[i]
		var outNew, errNew bool
		w.t.Stdout, w.ends[0], outNew = readNew(logs[i][0], w.ends[0])
		w.t.Stderr, w.ends[1], errNew = readNew(logs[i][1], w.ends[1])
		if outNew || errNew {
			out = append(out, w.t)
		}
	}
	return out, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, w := range ws {
			w.r.sent = w.ends
		}
	}
}

// readNew reads a log from offset from to its end, keeping the last
// protocol.TailBytes. A log shorter than from was cut (the process keeps
// only the head and tail of a long log): its end is sent again.
func readNew(path string, from int64) (c protocol.TailChunk, end int64, changed bool) {
	f, err := os.Open(path)
	if err != nil {
		return c, from, false // not written yet
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return c, from, false
	}
	size := fi.Size()
	if size == from {
		return c, from, false
	}
	if size < from {
		from = 0
	}
	start := max(from, size-protocol.TailBytes)
	buf := make([]byte, size-start)
	n, err := f.ReadAt(buf, start)
	if err != nil && err != io.EOF {
		return c, from, false
	}
	return protocol.TailChunk{Offset: start, Data: buf[:n]}, start + int64(n), true
}

// noteInputs counts how a task's inputs were found, for the heartbeats.
func (s *Slave) noteInputs(in model.Inputs) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.found.HotItems += in.HotItems
	s.found.ColdItems += in.ColdItems
	s.found.HotBytes += in.HotBytes
	s.found.ColdBytes += in.ColdBytes
}

// cacheStats is what a heartbeat says of the input cache; nil without one.
func (s *Slave) cacheStats() *protocol.CacheStats {
	if s.cfg.CacheSize == nil {
		return nil
	}
	s.mu.Lock()
	st := s.found
	s.mu.Unlock()
	st.Items, st.Bytes = s.cfg.CacheSize()
	return &st
}
