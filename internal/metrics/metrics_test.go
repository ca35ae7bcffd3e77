package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/metrics/slavemetrics"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// Requests are counted by their route's pattern: ids in the path, unknown
// paths and invented methods add no series.
func TestHTTPRoutes(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := NewHTTP(reg)
	r := chi.NewRouter()
	r.Use(h.Middleware)
	r.Get("/api/v1/jobs/{id}", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("job")) })
	r.Route("/api/v1/cas", func(r chi.Router) {
		r.Post("/{digest}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) })
	})
	for _, req := range []struct{ method, path string }{
		{"GET", "/api/v1/jobs/alice.1"}, {"GET", "/api/v1/jobs/bob.2"}, {"POST", "/api/v1/cas/abc123"},
		{"GET", "/secret-path-1"}, {"GET", "/<script>"}, {"BREW", "/api/v1/jobs/x"},
	} {
		r.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(req.method, req.path, nil))
	}
	var b bytes.Buffer
	for _, s := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"/api/v1/jobs/{id}", "GET", "200"}, 2},
		{[]string{"/api/v1/cas/{digest}", "POST", "201"}, 1},
		{[]string{Unmatched, "GET", "404"}, 2},
		// chi matches no route for a method it does not route.
		{[]string{Unmatched, "other", "405"}, 1},
	} {
		if got := testutil.ToFloat64(h.requests.WithLabelValues(s.labels...)); got != s.want {
			fmt.Fprintf(&b, "%v = %v, want %v\n", s.labels, got, s.want)
		}
	}
	if n := testutil.CollectAndCount(h.requests); n != 4 {
		fmt.Fprintf(&b, "%d series, want 4\n", n)
	}
	if b.Len() > 0 {
		t.Error(b.String())
	}
}

// failingStore fails what a database outage fails, and answers "not
// found" and "conflict" as the protocol does.
type failingStore struct{ store.Store }

func (failingStore) GetJob(ctx context.Context, id string) (model.Job, error) {
	return model.Job{}, fmt.Errorf("job %s: %w", id, model.ErrNotFound)
}

func (failingStore) Runs(ctx context.Context) (int, error) {
	return 0, errors.New("dial tcp: connection refused")
}

func (failingStore) MarkEnqueued(ctx context.Context, id int64, token string, entry uint64) error {
	return fmt.Errorf("stale: %w", model.ErrConflict)
}

// The store's failures are counted by method; its answers are not.
func TestStoreErrors(t *testing.T) {
	m := NewMaster(prometheus.NewRegistry())
	st := m.WrapStore(failingStore{})
	ctx := context.Background()
	st.GetJob(ctx, "x")
	st.Runs(ctx)
	st.Runs(ctx)
	st.MarkEnqueued(ctx, 1, "t", 2)
	if got := testutil.ToFloat64(m.storeErrors.WithLabelValues("Runs")); got != 2 {
		t.Errorf("Runs errors = %v, want 2", got)
	}
	if n := testutil.CollectAndCount(m.storeErrors); n != 1 {
		t.Errorf("%d series of store errors, want 1 (Runs)", n)
	}
}

type memBlobs struct {
	blob.Store
	data map[string][]byte
}

func (s *memBlobs) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	b, err := io.ReadAll(r)
	s.data[key] = b
	return err
}

func (s *memBlobs) Get(ctx context.Context, key string) (io.ReadCloser, blob.Info, error) {
	b, ok := s.data[key]
	if !ok {
		return nil, blob.Info{}, blob.ErrNotFound
	}
	return io.NopCloser(bytes.NewReader(b)), blob.Info{Size: int64(len(b))}, nil
}

// Bytes are counted as they go in and out; a missing blob is no error.
func TestBlobBytes(t *testing.T) {
	b := NewBlobs(prometheus.NewRegistry())
	s := b.Wrap(&memBlobs{data: map[string][]byte{}})
	ctx := context.Background()
	if err := s.Put(ctx, "k", strings.NewReader("hello"), 5); err != nil {
		t.Fatal(err)
	}
	rc, _, err := s.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	if _, _, err := s.Get(ctx, "missing"); !errors.Is(err, blob.ErrNotFound) {
		t.Fatal(err)
	}
	if in, out := testutil.ToFloat64(b.bytes.WithLabelValues("in")), testutil.ToFloat64(b.bytes.WithLabelValues("out")); in != 5 || out != 5 {
		t.Errorf("in %v, out %v, want 5 and 5", in, out)
	}
	if n := testutil.CollectAndCount(b.errors); n != 0 {
		t.Errorf("%d error series after a missing blob", n)
	}
}

// every registers every metric of every process, each with a series, and
// returns the names Prometheus sees (histograms with their suffixes).
func every(t *testing.T) (map[string]bool, []*dto.MetricFamily) {
	reg := NewRegistry()
	Version(reg, "v1")
	m := NewMaster(reg)
	NewFleet(reg, func(context.Context) (Fleet, error) { return Fleet{}, nil }, nil)
	h := NewHTTP(reg)
	b := NewBlobs(reg)
	slavemetrics.NewSlave(reg, 2)
	m.JobSubmitted(1)
	m.Started(model.Attempt{Runs: 1}, model.Attempt{}.StartedAt)
	m.Finished(model.Attempt{State: model.Passed}, 1, model.Inputs{}, false)
	m.StoreError("x")
	m.QueueError("x")
	b.errors.WithLabelValues("x").Inc()
	h.Middleware(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		n := f.GetName()
		names[n] = true
		for _, s := range []string{"_bucket", "_count", "_sum"} {
			names[n+s] = true
		}
	}
	return names, fams
}

var metricName = regexp.MustCompile(`dist_test_[a-z_]+`)

// The Grafana dashboard and the alert rules ask for metrics that exist.
func TestDashboardAndRulesNameRealMetrics(t *testing.T) {
	names, fams := every(t)
	raw, err := os.ReadFile("../../infra/grafana/dist_test.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	if len(dash.Panels) < 10 {
		t.Errorf("dashboard: %d panels", len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range metricName.FindAllString(tg.Expr, -1) {
				if !names[n] {
					t.Errorf("dashboard panel %q asks for %s, which no process exports", p.Title, n)
				}
			}
		}
	}
	rules, err := os.ReadFile("../../infra/prometheus/dist_test.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range metricName.FindAllString(string(rules), -1) {
		if !names[n] {
			t.Errorf("alert rules ask for %s, which no process exports", n)
		}
	}
	// Every family of dist_test's follows the conventions: counters end in
	// _total, and no label is an id.
	for _, f := range fams {
		n := f.GetName()
		if !strings.HasPrefix(n, "dist_test_") {
			continue
		}
		if f.GetType() == dto.MetricType_COUNTER && !strings.HasSuffix(n, "_total") {
			t.Errorf("counter %s does not end in _total", n)
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "id" || strings.HasSuffix(l.GetName(), "_id") || l.GetName() == "host" || l.GetName() == "lease" {
					t.Errorf("%s has label %s", n, l.GetName())
				}
			}
		}
	}
}
