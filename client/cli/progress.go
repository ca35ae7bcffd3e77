package cli

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Terminal escapes.
const (
	red       = "\x1b[31m"
	yellow    = "\x1b[33m"
	green     = "\x1b[32m"
	reset     = "\x1b[m"
	lineAbove = "\x1b[F\x1b[2K" // move up a line and clear it
)

const (
	// heartbeat is the longest a log goes without a progress line: CI
	// systems kill jobs that print nothing for ten minutes.
	heartbeat = 30 * time.Second
	// tasksEvery is how often at most the attempts left are read for the
	// ETA and the running count.
	tasksEvery = 2 * time.Second
	barWidth   = 24
)

// progress shows how a job is going. On a terminal it redraws one line, a
// bar with counts, elapsed time and ETA, at every poll; elsewhere (a CI
// log) it adds a line when the counts change and at least every 30 s.
// NO_COLOR turns colour off; TERM=dumb colour and redrawing.
type progress struct {
	s        *session
	w        io.Writer
	tty      bool // redraw one line
	color    bool
	start    time.Time
	printed  bool
	lastKey  string
	lastLine time.Time
	left     *workLeft // nil until the attempts were read
	readAt   time.Time
	readKey  string
}

// workLeft is what the attempts of a job not yet finished say of the time
// it needs, as read at a moment.
type workLeft struct {
	at       time.Time
	running  int
	expected time.Duration // the work of queued attempts and the rest of running ones
	known    bool          // every attempt left has an expected runtime
}

func (s *session) newProgress() *progress {
	e := s.env
	tty := e.terminal(e.Stdout) && e.getenv("TERM") != "dumb"
	return &progress{s: s, w: e.Stdout, tty: tty, color: tty && e.getenv("NO_COLOR") == "", start: e.now()}
}

func (p *progress) on(esc string) string {
	if p.color {
		return esc
	}
	return ""
}

// update shows the job as it is; final is its last state.
func (p *progress) update(ctx context.Context, j protocol.Job, final bool) {
	now := p.s.env.now()
	key := fmt.Sprint(j.FinishedGroups, j.FailedGroups, j.RetriedTasks, j.Canceled)
	if !final && (p.left == nil || key != p.readKey) && now.Sub(p.readAt) >= tasksEvery {
		p.readLeft(ctx, j.ID, now)
		p.readKey = key
	}
	if p.left != nil {
		key += fmt.Sprint(" ", p.left.running)
	}
	if !p.tty && p.printed && !final && key == p.lastKey && now.Sub(p.lastLine) < heartbeat {
		return
	}
	line := ""
	if p.printed && p.tty {
		line += lineAbove
	}
	if p.tty {
		line += p.bar(j, final) + " "
	}
	line += p.counts(j, now, final)
	io.WriteString(p.w, line+"\n")
	p.printed, p.lastKey, p.lastLine = true, key, now
}

// interrupted ends the redrawn line so that what follows starts on its own.
func (p *progress) interrupted() { p.printed = false }

// counts is the original's progress line, " 12.3s\t 20/50 tests complete
// (3 failed) (1 retries)", and what is running and the ETA.
func (p *progress) counts(j protocol.Job, now time.Time, final bool) string {
	failed := j.FailedGroups - j.CanceledGroups
	color := ""
	if final {
		color = green
		if j.FailedGroups > 0 {
			color = red
		}
	}
	line := p.on(color) + fmt.Sprintf(" %.1fs\t %d/%d tests complete", now.Sub(p.start).Seconds(), j.FinishedGroups, j.TotalGroups)
	if color != "" {
		line += p.on(reset)
	}
	if failed > 0 {
		line += p.on(red) + fmt.Sprintf(" (%d failed)", failed) + p.on(reset)
	}
	if j.RetriedTasks > 0 {
		line += p.on(yellow) + fmt.Sprintf(" (%d retries)", j.RetriedTasks) + p.on(reset)
	}
	if j.Canceled {
		line += p.on(yellow) + " (canceled)" + p.on(reset)
	}
	if final || p.left == nil {
		return line
	}
	line += fmt.Sprintf(", %d running", p.left.running)
	if eta, ok := p.eta(j, now); ok {
		line += ", ETA " + roundETA(eta)
	}
	return line
}

// bar is a bar of the finished groups: passed, then failed.
func (p *progress) bar(j protocol.Job, final bool) string {
	if j.TotalGroups == 0 {
		return ""
	}
	passed := barWidth * j.SucceededGroups / j.TotalGroups
	failed := barWidth*j.FinishedGroups/j.TotalGroups - passed
	if final && passed+failed < barWidth && j.FinishedGroups == j.TotalGroups {
		failed = barWidth - passed
	}
	rest := max(0, barWidth-passed-failed)
	return "[" + p.paint(green, strings.Repeat("=", passed)) + p.paint(red, strings.Repeat("x", failed)) + strings.Repeat(" ", rest) + "]"
}

func (p *progress) paint(esc, s string) string {
	if s == "" {
		return ""
	}
	return p.on(esc) + s + p.on(reset)
}

// readLeft reads the attempts not yet finished. A failure only leaves the
// ETA out: the counters are what the watch is about.
func (p *progress) readLeft(ctx context.Context, id string, now time.Time) {
	p.readAt = now
	w := &workLeft{at: now, known: true}
	for _, state := range []string{"queued", "running"} {
		atts, err := p.s.api.Tasks(ctx, id, state)
		if err != nil {
			p.left = nil
			return
		}
		for _, a := range atts {
			exp := time.Duration(a.ExpectedSeconds * float64(time.Second))
			if exp <= 0 {
				w.known = false
			}
			if state == "running" {
				w.running++
				exp -= time.Duration(a.DurationSeconds * float64(time.Second))
			}
			w.expected += max(exp, 0)
		}
	}
	p.left = w
}

// eta estimates the time left: the expected work left shared by the slots
// in use, less the time since it was read. Without expected runtimes it
// extrapolates the pace so far.
func (p *progress) eta(j protocol.Job, now time.Time) (time.Duration, bool) {
	l := p.left
	if l.known && l.running > 0 {
		return max(l.expected/time.Duration(l.running)-now.Sub(l.at), 0), true
	}
	if j.FinishedGroups == 0 {
		return 0, false
	}
	elapsed := now.Sub(p.start)
	return elapsed * time.Duration(j.TotalGroups-j.FinishedGroups) / time.Duration(j.FinishedGroups), true
}

func roundETA(d time.Duration) string {
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(10 * time.Second).String()
	}
	return d.Round(time.Minute).String()
}
