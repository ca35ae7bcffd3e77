package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/server"
	"github.com/dist-test/dist_test/web"
)

// BenchmarkJobPage renders the first page of a finished job of 10 and of
// 10,000 tasks (one in twenty failed, with a 200-line stderr whose tail the
// page shows), and a page in the middle of the big one sorted by runtime:
// the store's queries, the tails read from the blob store and the
// template, as a request to the master pays them.
func BenchmarkJobPage(b *testing.B) {
	for _, n := range []int{10, 10_000} {
		pages, job := benchJob(b, n)
		for _, q := range []string{"", "&sort=runtime&page=10"} {
			if n == 10 && q != "" {
				continue
			}
			b.Run(fmt.Sprintf("tasks=%d%s", n, strings.ReplaceAll(q, "&", ",")), func(b *testing.B) {
				req := httptest.NewRequest("GET", "/job?job_id="+job+q, nil)
				var size int
				for b.Loop() {
					rec := httptest.NewRecorder()
					pages.Job(rec, req)
					if rec.Code != 200 {
						b.Fatalf("%d %s", rec.Code, rec.Body)
					}
					size = rec.Body.Len()
				}
				b.ReportMetric(float64(size), "bytes/page")
			})
		}
	}
}

// benchJob makes a master on SQLite and the local blob store with one
// finished job of n tasks, and its pages.
func benchJob(b *testing.B, n int) (*web.Pages, string) {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	blobs, err := local.New(filepath.Join(dir, "blobs"))
	if err != nil {
		b.Fatal(err)
	}
	q := mem.New()
	b.Cleanup(func() { q.Close() })
	log := slog.New(slog.DiscardHandler)
	now := time.Now()
	m, err := server.New(st, q, blobs, cas.NewService(blobs, 0, nil), server.Options{Logger: log, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	id := fmt.Sprintf("bench.%d", n)
	j := model.NewJob{ID: id, User: "bench", Name: "bench"}
	for i := range n {
		j.Tasks = append(j.Tasks, model.NewTask{TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i, Priority: model.NormalBase,
			Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("suite_%d_test shard %d of 8", i/8, i%8), Timeout: time.Hour}})
	}
	if err := st.CreateJob(ctx, j, now.Add(-time.Hour)); err != nil {
		b.Fatal(err)
	}
	var log200 strings.Builder
	for i := range 200 {
		fmt.Fprintf(&log200, "[ RUN      ] Suite.Case%d\nsrc/thing_test.cc:%d: Failure\n", i, i)
	}
	waiting, err := st.Waiting(ctx, id, n)
	if err != nil {
		b.Fatal(err)
	}
	for i, a := range waiting {
		if err := st.MarkEnqueued(ctx, a.ID, a.Token, uint64(i+1)); err != nil {
			b.Fatal(err)
		}
		run, _, err := st.StartAttempt(ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: uint64(i + 1),
			SlaveID: "s1", Slot: i % 16, Hostname: "bench-host", Anywhere: true}, now.Add(-time.Hour).Add(time.Duration(i)*time.Millisecond))
		if err != nil {
			b.Fatal(err)
		}
		res := model.Result{Duration: time.Duration(i%97) * time.Second}
		if i%20 == 7 {
			key := fmt.Sprintf("outputs/%s/%d/stderr", id, i)
			if err := blobs.Put(ctx, key, strings.NewReader(log200.String()), int64(log200.Len())); err != nil {
				b.Fatal(err)
			}
			res.ExitCode, res.Outputs.Stderr = 1, key
		}
		if _, err := st.FinishAttempt(ctx, run.Lease, res, now.Add(-time.Hour).Add(time.Duration(i+i%97*1000)*time.Millisecond)); err != nil {
			b.Fatal(err)
		}
	}
	return web.New(m, log), id
}
