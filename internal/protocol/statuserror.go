package protocol

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/dist-test/dist_test/internal/requestid"
)

// StatusError is a non-2xx answer, as a client of the master or of the
// isolate server sees it. It unwraps to the model error of its status and
// code (KindOf), so that errors.Is(err, model.ErrNotFound) and the like
// work across the wire, whichever server answered.
type StatusError struct {
	Status int
	// Code is the kind named by an Error body; "" when the body was not one.
	Code    string
	Message string
	// RequestID is the server's X-Request-Id for the request, which its
	// log lines carry; a 5xx message quotes it too.
	RequestID string
}

func (e *StatusError) Error() string { return e.Message }

// Unwrap returns the kind of e (KindOf), or nil.
func (e *StatusError) Unwrap() error { return KindOf(e.Status, e.Code) }

// ReadError builds a StatusError from a non-2xx answer to req (nil when
// unknown), reading at most 64 KiB of its body (the caller closes it). The
// message is the server's when the body is an Error; any other body (a
// proxy's, or that of something that is not a dist_test server) is quoted
// briefly after the method, the link without its query (a presigned link's
// query is its signature, which must not land in CI logs) and the status,
// so that the user sees what answered.
func ReadError(req *http.Request, resp *http.Response) *StatusError {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	e := &StatusError{Status: resp.StatusCode, RequestID: resp.Header.Get(requestid.Header)}
	var body Error
	if json.Unmarshal(data, &body) == nil && body.Error != "" {
		e.Code, e.Message = body.Code, body.Error
		return e
	}
	e.Message = fmt.Sprintf("answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	if req != nil {
		e.Message = req.Method + " " + BareURL(req.URL) + " " + e.Message
	}
	if s := strings.TrimSpace(string(data)); s != "" && !strings.HasPrefix(s, "<") {
		if i := strings.IndexByte(s, '\n'); i >= 0 {
			s = s[:i]
		}
		if len(s) > 200 {
			s = s[:200] + "..."
		}
		e.Message += ": " + s
	}
	return e
}

// BareURL is u without credentials or query, as error messages may show
// it.
func BareURL(u *url.URL) string {
	v := *u
	v.User, v.RawQuery, v.ForceQuery = nil, "", false
	return v.String()
}
