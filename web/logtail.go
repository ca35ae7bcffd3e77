package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// The tail of a failed task's log shown inline: its last tailLines lines,
// from at most its last tailBytes bytes. A store that cannot seek (S3) is
// read from the start, so a log over scanBytes is not read at all there:
// the page links it instead.
const (
	tailLines = 30
	tailBytes = 64 << 10
	scanBytes = 4 << 20
)

// logTail is the end of one log.
type logTail struct {
	Name  string // stdout or stderr
	Text  string
	Cut   bool   // earlier lines are left out
	Note  string // why no text is shown
	Lines int
}

// readTail reads the last lines of the log stored at key.
func (p *Pages) readTail(ctx context.Context, name, key string) logTail {
	t := logTail{Name: name}
	rc, info, err := p.src.OpenOutput(ctx, key)
	if err != nil {
		// The page says no more than the API would of a fault; the log has it.
		p.log.WarnContext(ctx, "reading a log's tail", "key", key, "err", err)
		t.Note = "the log cannot be read now"
		return t
	}
	defer rc.Close()
	size := info.Size
	var r io.Reader = rc
	if size > tailBytes {
		if s, ok := rc.(io.Seeker); ok {
			if _, err := s.Seek(size-tailBytes, io.SeekStart); err == nil {
				r, size, t.Cut = rc, tailBytes, true
			}
		}
	}
	if size > scanBytes {
		t.Note = fmt.Sprintf("the log is %.1f MB: open it to read its end", float64(size)/1e6)
		return t
	}
	// The size a store reports may be wrong or unknown: the read is bounded
	// whatever it says.
	lr := &io.LimitedReader{R: r, N: scanBytes + 1}
	var last []byte
	buf := make([]byte, 32<<10)
	for {
		n, err := lr.Read(buf)
		last = append(last, buf[:n]...)
		if len(last) > 2*tailBytes {
			last, t.Cut = append(last[:0], last[len(last)-tailBytes:]...), true
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			p.log.WarnContext(ctx, "reading a log's tail", "key", key, "err", err)
			t.Note = "the log cannot be read now"
			return t
		}
	}
	if lr.N == 0 {
		t.Note = "the log is over 4 MB: open it to read its end"
		return t
	}
	if len(last) > tailBytes {
		last, t.Cut = last[len(last)-tailBytes:], true
	}
	t.Text, t.Lines = lastLines(last, tailLines, t.Cut)
	if t.Lines == 0 {
		t.Note = "the log is empty"
	}
	return t
}

// lastLines returns the last n lines of b as valid text; with cut, b
// starts within a line, which is dropped when whole lines are enough.
func lastLines(b []byte, n int, cut bool) (string, int) {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return "", 0
	}
	lines := bytes.Split(b, []byte("\n"))
	if cut && len(lines) > 1 {
		lines = lines[1:]
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	s := string(bytes.Join(lines, []byte("\n")))
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s, len(lines)
}
