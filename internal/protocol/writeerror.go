package protocol

import (
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"

	"github.com/dist-test/dist_test/internal/requestid"
)

// Format is the shape of an error answer.
type Format int

const (
	// JSON is an Error body: the API under /api/v1, the isolate server,
	// and the guard's refusals.
	JSON Format = iota
	// Legacy is the original master's error body,
	// {"status": "ERROR", "error": ..., "code": ...}: its endpoints
	// (/submit_job, /job_status, /tasks, ...).
	Legacy
	// HTML is a short page for a browser: the dashboard's pages and
	// /view_log.
	HTML
)

// LegacyError is the body of an error answer of the original master's
// endpoints.
type LegacyError struct {
	Status    string `json:"status"` // always "ERROR"
	Error     string `json:"error"`
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
}

// WriteError answers err in format f, with the status of its kind
// (StatusOf), and logs it with the request's id (requestid; one is made
// when the request has none).
//
// A 4xx is the caller's to fix: the body says err, whose message says what
// was wrong and how to put it right; it is logged at debug level. A 5xx is
// the server's: its error may quote the database, S3 or the file system,
// which are nobody's business outside, so the body says only
// InternalMessage and the error goes to the log, at error level.
//
// WriteError sets no header but Content-Type and X-Request-Id: a caller
// adds its own (a 401's challenge) before.
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, f Format, err error) {
	id, ctx := requestid.Ensure(w, r)
	status, code := StatusOf(err)
	log = requestid.Logger(log)
	msg := err.Error()
	if status >= 500 {
		log.ErrorContext(ctx, "request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
		msg = InternalMessage(status, id)
	} else {
		log.DebugContext(ctx, "request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "status", status, "err", err)
	}
	switch f {
	case Legacy:
		writeJSON(w, status, LegacyError{Status: "ERROR", Error: msg, Code: code, RequestID: id})
	case HTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(status)
		title := fmt.Sprintf("%d %s", status, http.StatusText(status))
		fmt.Fprintf(w, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s · dist_test</title></head><body>\n"+
			"<h1>%s</h1>\n<p>%s</p>\n<p><a href=\"/\">dist_test</a></p>\n</body></html>\n", title, title, html.EscapeString(msg))
	default:
		writeJSON(w, status, Error{Error: msg, Code: code, RequestID: id})
	}
}

// InternalMessage is what a 5xx answer tells its caller: that the fault is
// the server's, whether trying again later may help, and the request id
// under which the server's log holds the details.
func InternalMessage(status int, id string) string {
	if status == http.StatusServiceUnavailable {
		return fmt.Sprintf("service unavailable, try again later; request id %s", id)
	}
	return fmt.Sprintf("internal error, request id %s", id)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
