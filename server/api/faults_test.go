package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/requestid"
	"github.com/dist-test/dist_test/internal/testlog"
	"github.com/dist-test/dist_test/server/api"
)

// A fault of the database or of the blob store reaches the user, in every
// renderer, as "internal error, request id X"; what the database or the
// file system said goes to the log under the same id.
func TestFaultsShowTheRequestIDNotTheirDetails(t *testing.T) {
	logs := &testlog.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	onEachStoreWith(t, harnessOptions{log: log}, func(t *testing.T, h *harness) {
		ctx := context.Background()
		job, task := h.runWithStdout("the task's own words\n")

		// check asks path and checks the answer: a 500 in the renderer's
		// shape whose message names the request, whose log line (and
		// none of the body) holds the fault, which must mention raw.
		check := func(path string, format protocol.Format, raw string, hdr http.Header) string {
			t.Helper()
			code, body, rh := h.doWith(hdr, "GET", path, "", "")
			id := rh.Get(requestid.Header)
			if code != 500 || id == "" {
				t.Fatalf("GET %s: %d, request id %q; want 500 and an id\n%s", path, code, id, body)
			}
			want := "internal error, request id " + id
			switch format {
			case protocol.JSON:
				var e protocol.Error
				if json.Unmarshal([]byte(body), &e) != nil || e.Error != want || e.Code != "internal" || e.RequestID != id {
					t.Errorf("GET %s: body %s; want a protocol.Error saying %q", path, body, want)
				}
			case protocol.Legacy:
				var e protocol.LegacyError
				if json.Unmarshal([]byte(body), &e) != nil || e.Status != "ERROR" || e.Error != want || e.RequestID != id {
					t.Errorf("GET %s: body %s; want the legacy error saying %q", path, body, want)
				}
			case protocol.HTML:
				if !strings.Contains(body, "<p>"+want+"</p>") || rh.Get("Content-Type") != "text/html; charset=utf-8" {
					t.Errorf("GET %s: %s body %s; want a page saying %q", path, rh.Get("Content-Type"), body, want)
				}
			}
			errs := logs.Errors(id)
			if len(errs) != 1 || !strings.Contains(strings.ToLower(errs[0]), raw) {
				t.Fatalf("GET %s: error lines with id %s: %q; want one that says %q", path, id, errs, raw)
			}
			if strings.Contains(strings.ToLower(body), raw) || strings.Contains(body, errs[0]) || strings.Contains(body, os.TempDir()) {
				t.Errorf("GET %s: the body tells the fault (%s): %s", path, errs[0], body)
			}
			return id
		}

		// The blob store fails: its files are links to themselves, which
		// the file system refuses to open.
		breakBlob := func(contains string) {
			t.Helper()
			var keys []string
			h.blobs.List(ctx, "", func(key string, _ blob.Info) error {
				if strings.Contains(key, contains) {
					keys = append(keys, key)
				}
				return nil
			})
			if len(keys) == 0 {
				t.Fatalf("no blob named like %s", contains)
			}
			for _, k := range keys {
				p, _ := h.blobs.Path(k)
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(p, p); err != nil {
					t.Fatal(err)
				}
			}
		}
		const loop = "too many levels of symbolic links"
		breakBlob("stdout")
		q := url.Values{"job_id": {job}, "task_id": {task}, "attempt": {"0"}, "log": {"stdout"}}
		check("/view_log?"+q.Encode(), protocol.HTML, loop, nil)
		breakBlob(h.digest)
		check(protocol.PathCAS+"/"+h.digest, protocol.JSON, loop, nil)

		// The clients keep the id and, for the isolate server, read a 5xx
		// as unavailable.
		h.cas.SetRetries(1, 0)
		_, _, err := h.cas.Open(ctx, h.digest)
		var se *protocol.StatusError
		if !errors.As(err, &se) || se.Status != 500 || se.RequestID == "" || !strings.Contains(err.Error(), "request id "+se.RequestID) ||
			!errors.Is(err, model.ErrUnavailable) || strings.Contains(err.Error(), loop) {
			t.Errorf("CAS client: %v (%+v)", err, se)
		}

		// The database fails: the jobs table is gone.
		if _, err := h.st.DB().Exec("ALTER TABLE jobs RENAME TO jobs_gone"); err != nil {
			t.Fatal(err)
		}
		const table = "table"
		check("/api/v1/jobs/"+url.PathEscape(job), protocol.JSON, table, nil)
		check("/job_status?job_id="+url.QueryEscape(job), protocol.Legacy, table, nil)
		check("/job?job_id="+url.QueryEscape(job), protocol.HTML, table, nil)
		check("/trace?job_id="+url.QueryEscape(job), protocol.HTML, table, nil)

		// An id the caller sends is the one the answer and the log use.
		mine := "ci-run-42.7." + path.Base(t.Name())
		if id := check("/job_status?job_id=x", protocol.Legacy, table, http.Header{requestid.Header: {mine}}); id != mine {
			t.Errorf("the answer has id %q, not the caller's %q", id, mine)
		}
		if id := check("/job?job_id=x", protocol.HTML, table, http.Header{requestid.Header: {"forged id\"=1"}}); id == "forged id\"=1" {
			t.Error("an id with spaces and quotes was kept")
		}

		_, err = h.api.GetJob(ctx, job)
		if !errors.As(err, &se) || se.Status != 500 || se.RequestID == "" || se.Message != "internal error, request id "+se.RequestID {
			t.Errorf("API client: %v (%+v)", err, se)
		}
	})
}

// Refusals keep their status and message in each renderer, and carry a
// request id too.
func TestRefusalsInEachRenderer(t *testing.T) {
	h := newHarness(t)
	for _, tt := range []struct {
		path, ctype, want string
		status            int
	}{
		{"/api/v1/jobs/nope", "application/json", `"code":"not_found"`, 404},
		{"/tasks", "application/json", `"status":"ERROR"`, 400},
		{"/job?job_id=j&status=bogus", "text/html; charset=utf-8", "<p>invalid input: status must be running, queued, failed, timed_out, flaky, passed, canceled or absent</p>", 400},
		{"/view_log?job_id=j&task_id=t&attempt=x&log=stdout", "text/html; charset=utf-8", "<p>invalid input: attempt must be a number</p>", 400},
		{protocol.PathCAS + "/nothex", "application/json", `"code":"invalid"`, 400},
	} {
		code, body, hdr := h.do("GET", tt.path, "", "")
		id := hdr.Get(requestid.Header)
		if code != tt.status || hdr.Get("Content-Type") != tt.ctype || !strings.Contains(body, tt.want) || id == "" {
			t.Errorf("GET %s: %d %s id %q: %s; want %d %s with %q", tt.path, code, hdr.Get("Content-Type"), id, body, tt.status, tt.ctype, tt.want)
		}
	}
	// Successful answers carry an id too.
	if _, _, hdr := h.do("GET", "/api/v1/jobs", "", ""); hdr.Get(requestid.Header) == "" {
		t.Error("no X-Request-Id on a successful answer")
	}
}

// runWithStdout runs a job of one task whose run uploads stdout, and
// returns the job's and the task's ids.
func (h *harness) runWithStdout(stdout string) (job, task string) {
	h.t.Helper()
	ctx := context.Background()
	job = "faults.1"
	if code, body := h.form("/submit_job", url.Values{"job_id": {job}, "job_json": {h.jobJSON(1, "")}}); code != 200 {
		h.t.Fatalf("submit_job: %d %s", code, body)
	}
	reg, err := h.slave.Register(ctx, protocol.Register{Hostname: "h1", Slots: 1})
	if err != nil {
		h.t.Fatal(err)
	}
	c, _ := h.q.NewConsumer(ctx)
	defer c.Close()
	res, e := h.reserve(c)
	st, err := h.slave.Start(ctx, protocol.Start{SlaveID: reg.SlaveID, EntryID: res.ID, Entry: e})
	if err != nil {
		h.t.Fatal(err)
	}
	if err := h.slave.Upload(ctx, st.Lease, "stdout", strings.NewReader(stdout), int64(len(stdout))); err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.slave.Finish(ctx, st.Lease, protocol.Finish{ExitCode: 1, Outputs: []string{"stdout"}}); err != nil {
		h.t.Fatal(err)
	}
	_ = c.Delete(ctx, res.ID)
	return job, e.TaskID
}

// panickyPages fail the way a bug does.
type panickyPages struct{}

func (panickyPages) Index(w http.ResponseWriter, r *http.Request) {
	panic("index out of range [3] with length 3")
}
func (panickyPages) Job(w http.ResponseWriter, r *http.Request)     { panic(http.ErrAbortHandler) }
func (panickyPages) Trace(w http.ResponseWriter, r *http.Request)   {}
func (panickyPages) ViewLog(w http.ResponseWriter, r *http.Request) {}
func (panickyPages) LogTail(w http.ResponseWriter, r *http.Request) {}
func (panickyPages) Slaves(w http.ResponseWriter, r *http.Request)  {}
func (panickyPages) Static(w http.ResponseWriter, r *http.Request)  {}
func (panickyPages) Test(w http.ResponseWriter, r *http.Request)    {}

// A handler's panic is an internal error like any other: the id in the
// answer, the panic and its stack in the log.
func TestPanicShowsTheRequestID(t *testing.T) {
	h := newHarness(t)
	logs := &testlog.Buffer{}
	guard, err := auth.New(auth.Config{AllowedIPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(h.m, api.Options{Guard: guard, Pages: panickyPages{},
		Logger: slog.New(slog.NewJSONHandler(logs, nil))}))
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get(requestid.Header)
	if resp.StatusCode != 500 || id == "" || !strings.Contains(string(body), "internal error, request id "+id) || strings.Contains(string(body), "index out of range") {
		t.Fatalf("a panic answered %d, id %q: %s", resp.StatusCode, id, body)
	}
	if errs := logs.Errors(id); len(errs) != 1 || !strings.Contains(errs[0], "panic: index out of range") || !strings.Contains(errs[0], "panickyPages.Index") {
		t.Errorf("log lines of %s: %q; want the panic and its stack", id, errs)
	}
	// A handler that cuts its answer on purpose still cuts it.
	if resp, err := http.Get(srv.URL + "/job"); err == nil {
		resp.Body.Close()
		t.Errorf("an aborted answer came whole: %d", resp.StatusCode)
	}
}
