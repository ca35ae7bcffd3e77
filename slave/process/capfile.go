package process

import (
	"fmt"
	"os"
)

// capFile writes one output stream to its log file, keeping the first head
// and the last tail bytes. Up to head+tail bytes go straight to the file, so
// a small log is complete on disk while the command runs. Past that, the last
// tail bytes live in a ring in memory and land in the file, after the marker,
// when finish is called. It is used by one goroutine at a time.
type capFile struct {
	f          *os.File // nil discards the stream, still counting it
	head, tail int64
	n          int64 // bytes received

	overflowed bool   // more than head+tail bytes arrived
	ring       []byte // the last tail bytes once overflowed, oldest at pos
	pos        int

	err error // first failure; later bytes are counted and dropped
}

// createCapFile creates (or truncates) path; an empty path discards.
func createCapFile(path string, l Limits) (*capFile, error) {
	c := &capFile{head: l.Head, tail: l.Tail}
	if path == "" {
		return c, nil
	}
	// Read-write: the tail is read back from the file when it overflows.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create log file: %w", err)
	}
	c.f = f
	return c, nil
}

// add takes the next bytes of the stream. Failures are kept for finish: the
// stream must go on being drained, or the command would block on a full pipe.
func (c *capFile) add(p []byte) {
	if c.f == nil || c.err != nil {
		c.n += int64(len(p))
		return
	}
	if !c.overflowed {
		if room := c.head + c.tail - c.n; room > 0 {
			k := min(int64(len(p)), room)
			if _, err := c.f.Write(p[:k]); err != nil {
				c.fail(err)
			}
			c.n += k
			p = p[k:]
		}
		if len(p) == 0 || c.err != nil {
			c.n += int64(len(p))
			return
		}
		c.overflow()
		if c.err != nil {
			c.n += int64(len(p))
			return
		}
	}
	c.n += int64(len(p))
	c.push(p)
}

// overflow moves the bytes after the head, exactly tail of them, from the
// file into the ring.
func (c *capFile) overflow() {
	c.overflowed = true
	c.ring = make([]byte, c.tail)
	if _, err := c.f.ReadAt(c.ring, c.head); err != nil {
		c.fail(err)
	}
}

func (c *capFile) push(p []byte) {
	size := len(c.ring)
	if size == 0 {
		return
	}
	if len(p) >= size {
		copy(c.ring, p[len(p)-size:])
		c.pos = 0
		return
	}
	k := copy(c.ring[c.pos:], p)
	if k < len(p) {
		c.pos = copy(c.ring, p[k:])
		return
	}
	c.pos = (c.pos + k) % size
}

func (c *capFile) fail(err error) {
	c.err = fmt.Errorf("write log file %s: %w", c.f.Name(), err)
	c.ring = nil
}

// finish writes the marker and the tail if the stream overflowed, and closes
// the file.
func (c *capFile) finish() error {
	if c.f == nil {
		return nil
	}
	if c.overflowed && c.err == nil {
		marker := fmt.Sprintf("\n[dist_test: %d bytes omitted]\n", c.n-c.head-c.tail)
		off := c.head
		for _, part := range [][]byte{[]byte(marker), c.ring[c.pos:], c.ring[:c.pos]} {
			if _, err := c.f.WriteAt(part, off); err != nil {
				c.fail(err)
				break
			}
			off += int64(len(part))
		}
		c.ring = nil
	}
	if err := c.f.Close(); err != nil && c.err == nil {
		c.err = fmt.Errorf("close log file %s: %w", c.f.Name(), err)
	}
	return c.err
}
