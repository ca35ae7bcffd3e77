package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/server"
)

// lacking says the isolate server lacks exactly these manifests, whatever
// the job names: a server that answers more than it was asked.
type lacking []string

func (l lacking) UseManifests(context.Context, []string) ([]string, error) { return l, nil }

// flakyBlobs fails every Put after the first few.
type flakyBlobs struct {
	blob.Store
	mu sync.Mutex
	ok int // Puts left that succeed
}

func (f *flakyBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	f.mu.Lock()
	f.ok--
	fail := f.ok < 0
	f.mu.Unlock()
	if fail {
		return errors.New("blob store down")
	}
	return f.Store.Put(ctx, key, r, size)
}

func refusalMaster(t *testing.T, inputs server.Inputs, puts int) (*server.Master, blob.Store) {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	l, err := local.New(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	q := mem.New()
	t.Cleanup(func() { q.Close() })
	blobs := &flakyBlobs{Store: l, ok: puts}
	m, err := server.New(st, q, blobs, inputs, server.Options{Now: func() time.Time { return time.UnixMilli(1_800_000_000_000) },
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return m, l
}

func keys(t *testing.T, b blob.Store) []string {
	t.Helper()
	var out []string
	if err := b.List(context.Background(), "", func(k string, _ blob.Info) error { out = append(out, k); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	hashA = strings.Repeat("a", 40)
	hashB = strings.Repeat("b", 40)
	hashC = strings.Repeat("c", 40)
)

// Missing inputs fail their tasks only when the submission asks for it,
// with one stderr log per missing input; a hash the isolate server names
// but the job does not is ignored, never made a blob key.
func TestSubmitFailsMissingInputs(t *testing.T) {
	ctx := context.Background()
	m, blobs := refusalMaster(t, lacking{hashB, "../../etc/passwd", hashC}, 100)
	tasks := []model.TaskSpec{{IsolateHash: hashA, Description: "a"}, {IsolateHash: hashB, Description: "b", MaxRetries: 4},
		{IsolateHash: hashB, Description: "b2"}}
	if _, err := m.Submit(ctx, server.Submission{ID: "j", Tasks: tasks}); !errors.Is(err, model.ErrInvalid) ||
		!strings.Contains(err.Error(), hashB) || strings.Contains(err.Error(), "passwd") {
		t.Fatalf("plain submission: %v; want invalid, naming %s", err, hashB)
	}
	job, err := m.Submit(ctx, server.Submission{ID: "j", Tasks: tasks, FailMissingInputs: true, IsolateServer: "https://cas.example"})
	if err != nil {
		t.Fatal(err)
	}
	if job.Counts.FailedGroups != 2 || job.Counts.RunningTasks != 1 || job.Counts.RetriedTasks != 0 {
		t.Errorf("job counts %+v; want 2 failed at once, 1 queued", job.Counts)
	}
	k := keys(t, blobs)
	if len(k) != 1 || !strings.HasPrefix(k[0], "outputs/j/") {
		t.Fatalf("blobs %q; want one log, under the job's outputs", k)
	}
	a, err := m.Attempt(ctx, "j", hashB+".1", 0)
	if err != nil || a.State != model.Failed || a.Outputs.Stderr != k[0] || a.MaxRetries != 0 ||
		a.Error != "inputs "+hashB+" are not on the isolate server https://cas.example: archive them first" {
		t.Errorf("refused attempt %+v, %v", a, err)
	}
	rc, _, err := m.OpenOutput(ctx, k[0])
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != a.Error+"\n" {
		t.Errorf("stderr %q; want the error and a newline", b)
	}
}

// When the logs cannot be stored the job is refused as unavailable, and
// writes nothing: no rows, and the logs already stored are deleted.
func TestSubmitMissingInputsBlobStoreDown(t *testing.T) {
	ctx := context.Background()
	m, blobs := refusalMaster(t, lacking{hashA, hashB, hashC}, 1)
	tasks := []model.TaskSpec{{IsolateHash: hashA, Description: "a"}, {IsolateHash: hashB, Description: "b"},
		{IsolateHash: hashC, Description: "c"}}
	_, err := m.Submit(ctx, server.Submission{ID: "j", Tasks: tasks, FailMissingInputs: true})
	if !errors.Is(err, model.ErrUnavailable) {
		t.Fatalf("Submit = %v; want unavailable", err)
	}
	if _, err := m.Job(ctx, "j"); !errors.Is(err, model.ErrNotFound) {
		t.Errorf("the job was written: %v", err)
	}
	if k := keys(t, blobs); len(k) != 0 {
		t.Errorf("blobs left behind: %q", k)
	}
}
