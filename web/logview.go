package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dist-test/dist_test/internal/httpserver"
	"github.com/dist-test/dist_test/internal/model"
)

// maxLogView bounds the log bytes the page shows: the end of a longer log
// (where a failure usually is), with its true line numbers; the raw link
// has it whole.
const maxLogView = 4 << 20

// logLine is one line of a log on the page, numbered from the log's start.
type logLine struct {
	N    int
	Text string
	NL   bool // the line ends with a newline (the last may not, yet)
}

// logPage is what logview.html shows.
type logPage struct {
	Attempt     model.Attempt
	Log, Other  string // the log shown, and the other one
	Running     bool
	Lines       []logLine
	Skipped     int64  // bytes before the first line shown
	Size        int64  // bytes of the log (so far, for a running task)
	Raw         string // link to the stored log, whole
	Missing     string // why there is no log to show, when there is none
	Runtime     string
	Exit        string
	TailURL     string
	PrevAttempt string
	NextAttempt string
}

// ViewLog shows one log of an attempt (the original's /view_log
// parameters: job_id, task_id, attempt, log=stdout|stderr) with the task's
// name, attempt, state and links back; a running attempt's log follows the
// task's output as its slave sends it (live-log.js).
func (p *Pages) ViewLog(w http.ResponseWriter, r *http.Request) {
	a, err := p.attemptParams(r)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	log := r.URL.Query().Get("log")
	switch log {
	case "stdout", "stderr":
	case "":
		// Links from the trace name no log: the stderr says why a task
		// failed, when there is one.
		log = "stderr"
		if a.Outputs.Stderr == "" && a.Outputs.Stdout != "" {
			log = "stdout"
		}
	default:
		p.fail(w, r, fmt.Errorf("%w: log must be stdout or stderr", model.ErrInvalid))
		return
	}
	pg := logPage{Attempt: a, Log: log, Other: map[string]string{"stdout": "stderr", "stderr": "stdout"}[log],
		Runtime: a.Duration(p.src.Now()).Round(100 * time.Millisecond).String(), Exit: exitText(a)}
	if a.Attempt > 0 {
		b := a
		b.Attempt--
		pg.PrevAttempt = viewLink(b, log)
	}
	if next, err := p.src.Attempt(r.Context(), a.JobID, a.TaskID, a.Attempt+1); err == nil {
		pg.NextAttempt = viewLink(next, log)
	}
	key := a.Outputs.Stdout
	if log == "stderr" {
		key = a.Outputs.Stderr
	}
	switch {
	case a.State == model.Running:
		pg.Running = true
		pg.TailURL = "/view_log/tail?" + viewLink(a, log)[len("/view_log?"):]
		if l, ok := p.src.LiveLog(a.JobID, a.TaskID, a.Attempt); ok {
			t := l.Stdout
			if log == "stderr" {
				t = l.Stderr
			}
			pg.Skipped, pg.Size = t.Offset, t.Size()
			pg.Lines = splitLines(t.Data, 1)
		}
	case key != "":
		pg.Raw = p.src.OutputLink(r.Context(), httpserver.BaseURL(r), key)
		if err := p.readLog(r, key, &pg); err != nil {
			p.fail(w, r, err)
			return
		}
	case a.State == model.Queued:
		pg.Missing = "This attempt has not started yet."
	case a.State == model.Passed:
		pg.Missing = "The task passed: the logs of passed tasks are kept only when the slaves set [slave] keep_passed_logs = true, or the task wrote nothing to its " + log + "."
	default:
		pg.Missing = "The task wrote nothing to its " + log + " (empty logs are not kept)."
	}
	p.render(w, r, "logview.html", pg)
}

// linesHTML renders numbered lines as logview.html's <pre> holds them,
// each escaped. It is not a range in the template: that made the page of
// a 4 MiB log (40,000 lines) take 0.3 s instead of 0.04 s.
func linesHTML(lines []logLine) template.HTML {
	var b strings.Builder
	n := 0
	for _, l := range lines {
		n += len(l.Text) + 40
	}
	b.Grow(n)
	var num []byte
	for _, l := range lines {
		num = strconv.AppendInt(num[:0], int64(l.N), 10)
		b.WriteString(`<span id="L`)
		b.Write(num)
		b.WriteString(`" data-n="`)
		b.Write(num)
		b.WriteString(`">`)
		b.WriteString(template.HTMLEscapeString(l.Text))
		if l.NL {
			b.WriteByte('\n')
		}
		b.WriteString("</span>")
	}
	return template.HTML(b.String())
}

// readLog reads the stored log into the page: its last maxLogView bytes,
// numbered by their lines in the whole log.
func (p *Pages) readLog(r *http.Request, key string, pg *logPage) error {
	rc, info, err := p.src.OpenOutput(r.Context(), key)
	if err != nil {
		return err
	}
	defer rc.Close()
	pg.Size = info.Size
	first := 1
	if skip := info.Size - maxLogView; skip > 0 {
		// Count the lines of the part left out as it goes by, so that the
		// numbers shown are the log's own.
		n, err := io.Copy(lineCounter{&first}, io.LimitReader(rc, skip))
		if err != nil {
			return err
		}
		pg.Skipped = n
	}
	data, err := io.ReadAll(io.LimitReader(rc, maxLogView))
	if err != nil {
		return err
	}
	if pg.Skipped > 0 {
		// The cut fell inside a line: the page starts at the next whole one.
		if i := bytes.IndexByte(data, '\n'); i >= 0 && i < len(data)-1 {
			data = data[i+1:]
			pg.Skipped += int64(i + 1)
			first++
		}
	}
	pg.Lines = splitLines(data, first)
	return nil
}

type lineCounter struct{ n *int }

func (c lineCounter) Write(p []byte) (int, error) {
	*c.n += bytes.Count(p, []byte{'\n'})
	return len(p), nil
}

// splitLines cuts a log into lines, numbered from first. Bytes that are not
// UTF-8 show as U+FFFD; the raw link keeps them.
func splitLines(data []byte, first int) []logLine {
	if len(data) == 0 {
		return nil
	}
	text := strings.ToValidUTF8(string(data), string(utf8.RuneError))
	parts := strings.SplitAfter(text, "\n")
	if parts[len(parts)-1] == "" {
		parts = parts[:len(parts)-1]
	}
	out := make([]logLine, len(parts))
	for i, s := range parts {
		t, nl := strings.CutSuffix(s, "\n")
		out[i] = logLine{N: first + i, Text: t, NL: nl}
	}
	return out
}

// exitText says in words how an attempt ended.
func exitText(a model.Attempt) string {
	switch {
	case a.State == model.TimedOut:
		return "timed out"
	case a.State == model.InfraFailed:
		if a.Error != "" {
			return "infrastructure failure: " + a.Error
		}
		return "infrastructure failure"
	case a.ExitCode == nil:
		return ""
	case *a.ExitCode < 0:
		return "killed by signal " + strconv.Itoa(-*a.ExitCode)
	}
	return "exit " + strconv.Itoa(*a.ExitCode)
}

// tailAnswer is what /view_log/tail answers: the log's bytes from the
// caller's from= on, as text, while the attempt runs.
type tailAnswer struct {
	State   string `json:"state"`
	Running bool   `json:"running"`
	Runtime string `json:"runtime"` // so far
	// Offset is where Text starts in the log; past from when the bytes
	// between were not kept (a gap), or 0 after the log was cut.
	Offset int64  `json:"offset"`
	Size   int64  `json:"size"`
	Text   string `json:"text"`
	Reset  bool   `json:"reset,omitempty"` // the log is shorter than from: start over
}

// LogTail answers, as JSON, what a running attempt's log gained since the
// byte from= (job_id, task_id, attempt, log as /view_log); once the
// attempt has ended, running is false and the page shows the stored log.
func (p *Pages) LogTail(w http.ResponseWriter, r *http.Request) {
	a, err := p.attemptParams(r)
	if err != nil {
		p.failJSON(w, r, err)
		return
	}
	log := r.URL.Query().Get("log")
	if log != "stdout" && log != "stderr" {
		p.failJSON(w, r, fmt.Errorf("%w: log must be stdout or stderr", model.ErrInvalid))
		return
	}
	from, err := strconv.ParseInt(r.URL.Query().Get("from"), 10, 64)
	if err != nil || from < 0 {
		p.failJSON(w, r, fmt.Errorf("%w: from must be a byte offset", model.ErrInvalid))
		return
	}
	ans := tailAnswer{State: string(a.State), Running: a.State == model.Running,
		Runtime: a.Duration(p.src.Now()).Round(100 * time.Millisecond).String()}
	if ans.Running {
		if l, ok := p.src.LiveLog(a.JobID, a.TaskID, a.Attempt); ok {
			t := l.Stdout
			if log == "stderr" {
				t = l.Stderr
			}
			ans.Size, ans.Offset = t.Size(), t.Offset
			data := t.Data
			switch {
			case from > t.Size():
				ans.Reset = true
			case from > t.Offset:
				data = data[from-t.Offset:]
				ans.Offset = from
			}
			ans.Text = strings.ToValidUTF8(string(data), string(utf8.RuneError))
		} else {
			ans.Offset, ans.Size = from, from
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(ans)
}
