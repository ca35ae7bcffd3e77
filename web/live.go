package web

import (
	"context"
	"embed"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// LiveSource is what the log, slaves and trace pages read beyond the
// listings: one attempt and its logs, stored or still being written, and
// what the slaves run now.
type LiveSource interface {
	Attempt(ctx context.Context, jobID, taskID string, n int) (model.Attempt, error)
	OpenOutput(ctx context.Context, key string) (io.ReadCloser, blob.Info, error)
	// LiveLog is the end of a running attempt's logs, as its slave last
	// sent them; false when there is none.
	LiveLog(jobID, taskID string, attempt int) (model.LiveLog, bool)
	RunningOn(ctx context.Context, slaveID string) ([]model.Attempt, error)
	// OldestQueued is the attempt that has waited longest in the queue.
	OldestQueued(ctx context.Context) (model.Attempt, bool, error)
	// SlaveCache is a slave's input cache as its last heartbeat said.
	SlaveCache(slaveID string) (model.CacheStats, bool)
}

//go:embed static/live-*
var static embed.FS

var staticFiles = func() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err)
	}
	return http.FileServerFS(sub)
}()

// Static serves the pages' scripts and styles (/static/live-*), embedded
// in the binary so that the pages need nothing from any other host.
func (p *Pages) Static(w http.ResponseWriter, r *http.Request) {
	// The files change only with the binary; a day's caching spares the
	// polling pages a request per refresh.
	w.Header().Set("Cache-Control", "public, max-age=86400")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	if strings.HasSuffix(r.URL.Path, "/") {
		http.NotFound(w, r) // no listings
		return
	}
	http.StripPrefix("/static/", staticFiles).ServeHTTP(w, r)
}

// liveFuncs are the template functions of the log, slaves and trace pages.
func liveFuncs(src Source) template.FuncMap {
	return template.FuncMap{
		"logURL": func(a model.Attempt, log string) string { return viewLink(a, log) },
		"age": func(t time.Time) string {
			if t.IsZero() {
				return "never"
			}
			return src.Now().Sub(t).Round(time.Second).String()
		},
		"bytes": humanBytes,
		"lines": linesHTML,
		"hitRate": func(c model.CacheStats) string {
			r, ok := c.HitRate()
			if !ok {
				return "no inputs fetched yet"
			}
			return strconv.FormatFloat(100*r, 'f', 0, 64) + "% of input items found in it"
		},
	}
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return strconv.FormatFloat(float64(n)/(1<<30), 'f', 1, 64) + " GiB"
	case n >= 1<<20:
		return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MiB"
	case n >= 1<<10:
		return strconv.FormatFloat(float64(n)/(1<<10), 'f', 1, 64) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " B"
}

// attemptParams reads the attempt a request names (job_id, task_id,
// attempt), as the original's /view_log took them.
func (p *Pages) attemptParams(r *http.Request) (model.Attempt, error) {
	q := r.URL.Query()
	n, err := strconv.Atoi(q.Get("attempt"))
	if err != nil || n < 0 {
		return model.Attempt{}, fmt.Errorf("%w: attempt must be a number", model.ErrInvalid)
	}
	return p.src.Attempt(r.Context(), q.Get("job_id"), q.Get("task_id"), n)
}

// failJSON answers err as a protocol.Error, for the pages' scripts.
func (p *Pages) failJSON(w http.ResponseWriter, r *http.Request, err error) {
	protocol.WriteError(w, r, p.log, protocol.JSON, err)
}
