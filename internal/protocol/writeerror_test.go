package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/requestid"
	"github.com/dist-test/dist_test/internal/testlog"
)

// errRawFault is how a store's failure reads: a path and a driver's words,
// which must never reach a user.
var errRawFault = errors.New("open /var/lib/dist_test/blobs/cas/ab/cd: input/output error")

func TestWriteError(t *testing.T) {
	refused := fmt.Errorf("%w: limit must be a number from 1 to 10000 <b>", model.ErrInvalid)
	for _, tt := range []struct {
		name   string
		format Format
		err    error
		status int
		ctype  string
	}{
		{"json 4xx", JSON, refused, 400, "application/json"},
		{"json 5xx", JSON, fmt.Errorf("get job: %w", errRawFault), 500, "application/json"},
		{"json 503", JSON, fmt.Errorf("sqlite: %w: %w", model.ErrUnavailable, errRawFault), 503, "application/json"},
		{"legacy 4xx", Legacy, refused, 400, "application/json"},
		{"legacy 5xx", Legacy, errRawFault, 500, "application/json"},
		{"html 4xx", HTML, refused, 400, "text/html; charset=utf-8"},
		{"html 5xx", HTML, errRawFault, 500, "text/html; charset=utf-8"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs testlog.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/job?job_id=j", nil)
			WriteError(rec, req, log, tt.format, tt.err)

			id := rec.Header().Get(requestid.Header)
			body := rec.Body.String()
			if rec.Code != tt.status || rec.Header().Get("Content-Type") != tt.ctype || id == "" {
				t.Fatalf("%d %q, id %q; want %d %q and an id", rec.Code, rec.Header().Get("Content-Type"), id, tt.status, tt.ctype)
			}
			var msg, code string
			switch tt.format {
			case JSON:
				var e Error
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.RequestID != id {
					t.Fatalf("body %s: %v", body, err)
				}
				msg, code = e.Error, e.Code
			case Legacy:
				var e LegacyError
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Status != "ERROR" || e.RequestID != id {
					t.Fatalf("body %s: %v", body, err)
				}
				msg, code = e.Error, e.Code
			case HTML:
				if !strings.HasPrefix(body, "<!DOCTYPE html>") || !strings.Contains(body, fmt.Sprintf("<h1>%d %s</h1>", tt.status, http.StatusText(tt.status))) {
					t.Fatalf("body %s", body)
				}
				msg = body
			}
			lines := logs.Records(id)
			if len(lines) != 1 {
				t.Fatalf("%d log lines with the request id, want 1: %s", len(lines), logs.String())
			}
			line := lines[0]
			if line["err"] != tt.err.Error() || line["path"] != "/job" || line["status"] != float64(tt.status) {
				t.Errorf("log line %v", line)
			}

			if tt.status < 500 {
				if tt.format == HTML {
					if !strings.Contains(msg, "limit must be a number from 1 to 10000 &lt;b&gt;") {
						t.Errorf("html body does not say the error, escaped: %s", body)
					}
				} else if msg != refused.Error() || code != "invalid" {
					t.Errorf("message %q code %q; want %q invalid", msg, code, refused)
				}
				if line["level"] != "DEBUG" {
					t.Errorf("a refusal logged at %v", line["level"])
				}
				return
			}
			want := "internal error, request id " + id
			if tt.status == 503 {
				want = "service unavailable, try again later; request id " + id
			}
			if !strings.Contains(msg, want) {
				t.Errorf("body %s; want %q", body, want)
			}
			if strings.Contains(body, "/var/lib") || strings.Contains(body, "input/output") || strings.Contains(body, "sqlite") {
				t.Errorf("the body quotes the fault: %s", body)
			}
			if line["level"] != "ERROR" {
				t.Errorf("a fault logged at %v", line["level"])
			}
		})
	}
}

// An id given by the caller (or the middleware) is the one the answer and
// the log use.
func TestWriteErrorUsesTheRequestsID(t *testing.T) {
	var logs testlog.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/api/v1/jobs/x", nil)
	req.Header.Set(requestid.Header, "ci-run-42.7")
	requestid.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, JSON, errRawFault)
	})).ServeHTTP(rec, req)
	var e Error
	_ = json.Unmarshal(rec.Body.Bytes(), &e)
	if rec.Header().Get(requestid.Header) != "ci-run-42.7" || e.RequestID != "ci-run-42.7" || e.Error != "internal error, request id ci-run-42.7" {
		t.Fatalf("header %q, body %s", rec.Header().Get(requestid.Header), rec.Body)
	}
	if len(logs.Records("ci-run-42.7")) != 1 {
		t.Fatalf("log: %s", logs.String())
	}
}

// The table reads both ways: every kind comes back from its status and
// code, and from its status alone where no other kind shares it.
func TestKindOfReadsTheTableBack(t *testing.T) {
	statuses := map[int]int{}
	for _, k := range errorKinds {
		statuses[k.status]++
	}
	for _, k := range errorKinds {
		status, code := StatusOf(fmt.Errorf("wrapped: %w", k.err))
		if status != k.status || code != k.code {
			t.Errorf("StatusOf(%v) = %d %s", k.err, status, code)
		}
		if got := KindOf(status, code); got != k.err {
			t.Errorf("KindOf(%d, %s) = %v, want %v", status, code, got, k.err)
		}
		want := k.err
		if statuses[k.status] > 1 {
			want = nil
		}
		if got := KindOf(status, ""); got != want {
			t.Errorf("KindOf(%d, \"\") = %v, want %v", status, got, want)
		}
	}
	if statuses[http.StatusConflict] != 2 {
		t.Fatal("the table no longer shares 409; check KindOf's doc")
	}
	for _, status := range []int{500, 502, 504, 418} {
		if got := KindOf(status, ""); got != nil {
			t.Errorf("KindOf(%d) = %v, want none", status, got)
		}
	}
	if got := KindOf(500, "internal"); got != nil {
		t.Errorf("KindOf(500, internal) = %v", got)
	}
	if got := KindOf(404, "made_up"); got != model.ErrNotFound {
		t.Errorf("an unknown code does not hide the status's kind: %v", got)
	}
}

// What WriteError writes, ReadError reads back: the kind, the message of a
// refusal, and the request id.
func TestReadErrorRebuildsWhatWriteErrorWrote(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, k := range errorKinds {
		for _, f := range []Format{JSON, Legacy} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/x", nil)
			WriteError(rec, req, log, f, fmt.Errorf("%w: because", k.err))
			resp := rec.Result()
			e := ReadError(req, resp)
			if !errors.Is(e, k.err) || e.Status != k.status || e.RequestID == "" || e.RequestID != resp.Header.Get(requestid.Header) {
				t.Errorf("format %d, %v: read back %+v", f, k.err, e)
			}
			if k.status < 500 && e.Message != k.err.Error()+": because" {
				t.Errorf("format %d, %v: message %q", f, k.err, e.Message)
			}
			if k.status >= 500 && !strings.Contains(e.Message, e.RequestID) {
				t.Errorf("format %d, %v: message %q does not name the request", f, k.err, e.Message)
			}
		}
	}
}

func TestReadErrorOfAnotherServer(t *testing.T) {
	for _, tt := range []struct {
		status int
		body   string
		want   string
		kind   error
	}{
		{502, "upstream is down\nmore detail", "GET http://master/api/v1/jobs answered 502 Bad Gateway: upstream is down", nil},
		{503, "", "GET http://master/api/v1/jobs answered 503 Service Unavailable", model.ErrUnavailable},
		{404, "<html><body>nginx</body></html>", "GET http://master/api/v1/jobs answered 404 Not Found", model.ErrNotFound},
		{409, `{"message": "not ours"}`, `answered 409 Conflict: {"message": "not ours"}`, nil},
		{400, strings.Repeat("x", 300), "answered 400 Bad Request: " + strings.Repeat("x", 200) + "...", model.ErrInvalid},
	} {
		req := httptest.NewRequest("GET", "http://user:pw@master/api/v1/jobs?X-Amz-Signature=secret", nil)
		resp := &http.Response{StatusCode: tt.status, Header: http.Header{}, Body: http.NoBody}
		if tt.body != "" {
			resp.Body = io.NopCloser(strings.NewReader(tt.body))
		}
		e := ReadError(req, resp)
		if !strings.HasSuffix(e.Message, tt.want) || e.Code != "" || errors.Unwrap(e) != tt.kind {
			t.Errorf("%d %q: %+v (kind %v); want message ending %q, kind %v", tt.status, tt.body, e, errors.Unwrap(e), tt.want, tt.kind)
		}
		if strings.Contains(e.Message, "secret") || strings.Contains(e.Message, "pw") || strings.Contains(e.Message, "more detail") {
			t.Errorf("message %q shows the link's query, its credentials or more than a line", e.Message)
		}
	}
	// Without the request, the status still speaks.
	e := ReadError(nil, &http.Response{StatusCode: 500, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("disk hiccup"))})
	if e.Message != "answered 500 Internal Server Error: disk hiccup" {
		t.Errorf("without a request: %q", e.Message)
	}
}
