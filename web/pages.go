package web

import (
	"context"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
)

// Dashboard is what the jobs, job and test pages read beyond the API's
// reads (server.Master's methods over store.Dashboard).
type Dashboard interface {
	FindJobs(ctx context.Context, f model.JobFilter) ([]model.Job, error)
	ActiveTasks(ctx context.Context, jobIDs []string) (map[string]model.Active, error)
	TaskTabs(ctx context.Context, jobID string) (model.TabCounts, error)
	TaskPage(ctx context.Context, jobID string, q model.TaskQuery) ([]model.Attempt, error)
	TaskAttempts(ctx context.Context, taskRows []int64) ([]model.Attempt, error)
	TestRuns(ctx context.Context, description string, limit int) ([]model.Attempt, error)
	FlakyTests(ctx context.Context, since time.Time, limit int) ([]model.FlakyTest, error)
	// OpenOutput opens a stored log, whose tail a failed task shows.
	OpenOutput(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
}

// parsePages parses each page with the layout it shares, one template set
// per page, so that each page may define its own blocks ("scripts").
func parsePages(funcs template.FuncMap) map[string]*template.Template {
	base := template.Must(template.New("").Funcs(funcs).ParseFS(files, "templates/layout.html"))
	names, err := fs.Glob(files, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := make(map[string]*template.Template)
	for _, n := range names {
		name := path.Base(n)
		if name == "layout.html" {
			continue
		}
		out[name] = template.Must(template.Must(base.Clone()).ParseFS(files, n))
	}
	return out
}

// pageFuncs are the template functions of the jobs, job and test pages.
func pageFuncs(src Source) template.FuncMap {
	return template.FuncMap{
		"dur":     roughDuration,
		"outcome": outcome,
		"testURL": testURL,
		"share": func(n, total int) string {
			if total <= 0 || n <= 0 {
				return "0%"
			}
			return strconv.FormatFloat(100*float64(n)/float64(total), 'f', 2, 64) + "%"
		},
		"agoShort": func(t time.Time) string {
			if t.IsZero() {
				return ""
			}
			return roughDuration(src.Now().Sub(t)) + " ago"
		},
	}
}

func testURL(description string) string {
	return "/test?description=" + url.QueryEscape(description)
}

// roughDuration writes d as people read it: 850ms, 12.3s, 4m05s, 2h10m.
func roughDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		d = d.Round(time.Second)
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// signals names the Linux signals a test dies of; a slave reports a run
// killed by a signal as the negative of its number.
var signals = map[int]string{1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
	7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE",
	14: "SIGALRM", 15: "SIGTERM", 24: "SIGXCPU", 25: "SIGXFSZ", 31: "SIGSYS"}

// outcome says in words how an attempt ended, or where it is.
func outcome(a model.Attempt) string {
	var s string
	switch a.State {
	case model.Queued:
		s = "queued"
		if a.Runs > 0 {
			s = "queued again after a lost run"
		}
	case model.Running:
		s = "running"
	case model.Passed:
		s = "passed"
	case model.Failed:
		switch {
		case a.ExitCode == nil:
			s = "failed"
		case *a.ExitCode < 0:
			if name, ok := signals[-*a.ExitCode]; ok {
				s = "killed by " + name
			} else {
				s = "killed by signal " + strconv.Itoa(-*a.ExitCode)
			}
		default:
			s = "exit " + strconv.Itoa(*a.ExitCode)
		}
	case model.TimedOut:
		s = "timed out"
		if a.Timeout > 0 {
			s += " after " + strings.TrimSuffix(strconv.FormatFloat(a.Timeout.Seconds(), 'f', 1, 64), ".0") + " s"
		}
	case model.InfraFailed:
		s = "infra failure"
	case model.Canceled:
		s = "canceled"
	default:
		s = string(a.State)
	}
	if a.Error != "" && a.State != model.Passed {
		s += ": " + model.Clip(a.Error, 300)
	}
	return s
}
