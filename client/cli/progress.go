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
	// runningEvery is how often at most the running attempts (as many
	// as the slots, at most) are read for the running count and the ETA.
	runningEvery = 2 * time.Second
	// queuedEvery is how often at most the queued attempts are read, per
	// page of them: a job of 100,000 tasks costs its master 100 pages a
	// read, which a watch should not ask for every few seconds. In
	// between, the work queued is scaled by how many are left.
	queuedEvery = 10 * time.Second
	barWidth    = 24
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
	running  *runningWork // nil until read
	queued   *queuedWork  // nil until read
	readKey  string
}

// runningWork is what the running attempts say of the work left, as read
// at a moment.
type runningWork struct {
	at    time.Time
	n     int
	work  time.Duration // the rest of their expected runtimes
	known bool          // every one has an expected runtime
}

// queuedWork is the expected runtime of the queued attempts, as read.
type queuedWork struct {
	at    time.Time
	n     int
	work  time.Duration
	known bool
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
	if !final {
		p.read(ctx, j.ID, key, now)
	}
	if p.running != nil {
		key += fmt.Sprint(" ", p.running.n)
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
	if final || p.running == nil {
		return line
	}
	line += fmt.Sprintf(", %d running", p.running.n)
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

// read reads the running attempts when the counts changed, and the
// queued ones now and then. A failure only leaves the ETA and the running
// count out: the counters are what the watch is about.
func (p *progress) read(ctx context.Context, id, key string, now time.Time) {
	if p.running == nil || key != p.readKey && now.Sub(p.running.at) >= runningEvery {
		p.readKey = key
		atts, err := p.s.api.Tasks(ctx, id, "running")
		if err != nil {
			p.running = nil
			return
		}
		r := &runningWork{at: now, n: len(atts), known: true}
		for _, a := range atts {
			if a.ExpectedSeconds <= 0 {
				r.known = false
			}
			r.work += max(seconds(a.ExpectedSeconds)-seconds(a.DurationSeconds), 0)
		}
		p.running = r
	}
	pages := 1
	if p.queued != nil {
		pages += p.queued.n / protocol.DefaultPage
	}
	if p.queued == nil || now.Sub(p.queued.at) >= time.Duration(pages)*queuedEvery {
		atts, err := p.s.api.Tasks(ctx, id, "queued")
		if err != nil {
			p.queued = nil
			return
		}
		q := &queuedWork{at: now, n: len(atts), known: true}
		for _, a := range atts {
			if a.ExpectedSeconds <= 0 {
				q.known = false
			}
			q.work += seconds(a.ExpectedSeconds)
		}
		p.queued = q
	}
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// eta estimates the time left: the expected work left shared by the slots
// in use, less the time since the running attempts were read. The work
// queued is that read last, scaled to the attempts queued now (the job's
// unfinished attempts less the running ones). Without expected runtimes it
// extrapolates the pace so far.
func (p *progress) eta(j protocol.Job, now time.Time) (time.Duration, bool) {
	r, q := p.running, p.queued
	if r != nil && q != nil && r.known && q.known && r.n > 0 {
		queuedNow := max(j.RunningTasks-r.n, 0)
		var queued time.Duration
		switch {
		case q.n > 0:
			queued = q.work * time.Duration(queuedNow) / time.Duration(q.n)
		case queuedNow > 0:
			queued = -1 // queued since the read, of no known runtime
		}
		if queued >= 0 {
			return max((r.work+queued)/time.Duration(r.n)-now.Sub(r.at), 0), true
		}
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
