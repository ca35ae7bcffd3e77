package web

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
)

// failedLogSource serves one failed attempt whose stdout is log.
type failedLogSource struct {
	Source
	log string
}

func (s failedLogSource) Now() time.Time { return time.Unix(1e9, 0) }
func (s failedLogSource) Attempt(ctx context.Context, job, task string, n int) (model.Attempt, error) {
	if n != 0 {
		return model.Attempt{}, fmt.Errorf("attempt %d: %w", n, model.ErrNotFound)
	}
	exit := 1
	return model.Attempt{JobID: job, TaskID: task, Description: "d", State: model.Failed, ExitCode: &exit,
		Outputs: model.Outputs{Stdout: "outputs/x"}}, nil
}
func (s failedLogSource) OpenOutput(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	return io.NopCloser(strings.NewReader(s.log)), blob.Info{Size: int64(len(s.log))}, nil
}
func (s failedLogSource) OutputLink(ctx context.Context, base, key string) string {
	return base + "/raw"
}

// BenchmarkLogPage renders the page of a failed attempt whose log is
// maxLogView bytes of 100-byte lines: the largest the page shows.
func BenchmarkLogPage(b *testing.B) {
	var sb strings.Builder
	for i := 0; sb.Len() < maxLogView; i++ {
		fmt.Fprintf(&sb, "%-99d\n", i)
	}
	p := New(failedLogSource{log: sb.String()}, slog.New(slog.DiscardHandler))
	r := httptest.NewRequest("GET", "/view_log?job_id=j&task_id=t&attempt=0&log=stdout", nil)
	for b.Loop() {
		w := httptest.NewRecorder()
		p.ViewLog(w, r)
		if w.Code != 200 {
			b.Fatal(w.Code)
		}
	}
}
