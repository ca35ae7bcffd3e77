package cas

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync/atomic"

	"github.com/dist-test/dist_test/internal/model"
)

// maxMemorySpool is how much of an upload is held in memory while it is
// verified; larger uploads spill to a temporary file. Most inputs are
// small, and creating a file per upload costs more than receiving it.
const maxMemorySpool = 256 << 10

// spool holds the bytes of one upload until they are verified.
type spool struct {
	dir string
	mem bytes.Buffer
	f   *os.File
	err error // the first write failure: the server's fault, not the client's
	// used counts the bytes on disk of all spools sharing it, up to limit.
	used   *atomic.Int64
	limit  int64
	onDisk int64
}

func (s *spool) Write(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.f == nil && s.mem.Len()+len(p) <= maxMemorySpool {
		return s.mem.Write(p)
	}
	if s.used != nil {
		add := int64(len(p))
		if s.f == nil {
			add += int64(s.mem.Len())
		}
		if s.used.Add(add) > s.limit {
			s.used.Add(-add)
			s.err = fmt.Errorf("%w: the temporary space for uploads being verified is full (%d bytes); try again later", model.ErrUnavailable, s.limit)
			return 0, s.err
		}
		s.onDisk += add
	}
	if s.f == nil {
		f, err := os.CreateTemp(s.dir, "cas-put-*")
		if err != nil {
			s.err = err
			return 0, err
		}
		s.f = f
		if _, err := f.Write(s.mem.Bytes()); err != nil {
			s.err = err
			return 0, err
		}
		s.mem = bytes.Buffer{}
	}
	n, err := s.f.Write(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// reader reads the bytes written, from the start.
func (s *spool) reader() (io.Reader, error) {
	if s.f == nil {
		return bytes.NewReader(s.mem.Bytes()), nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s.f, nil
}

// Close drops the bytes.
func (s *spool) Close() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
	if s.used != nil {
		s.used.Add(-s.onDisk)
		s.onDisk = 0
	}
}
