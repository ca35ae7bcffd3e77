package cas_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/requestid"
	"github.com/dist-test/dist_test/internal/testlog"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
)

// Served alone, the isolate server gives each request an id; a fault of its
// blob store reaches the client as "internal error, request id X", and the
// file system's words reach only its log, under that id.
func TestCASFaultShowsTheRequestID(t *testing.T) {
	var logs testlog.Buffer
	tc := castest.New(t, cas.Options{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	tc.Client.SetRetries(1, 0)
	ctx := context.Background()
	data := []byte("an input\n")
	d := isolate.HashBytes(isolate.SHA1, data)
	if err := tc.Client.Upload(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// The blob's file becomes a link to itself, which no one can open.
	n := 0
	tc.Store.List(ctx, "", func(key string, _ blob.Info) error {
		if strings.Contains(key, d) {
			p, _ := tc.Store.Path(key)
			os.Remove(p)
			n++
			return os.Symlink(p, p)
		}
		return nil
	})
	if n == 0 {
		t.Fatal("the blob is not in the store")
	}

	resp, err := http.Get(tc.URL + protocol.PathCAS + "/" + d)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := resp.Header.Get(requestid.Header)
	var e protocol.Error
	if resp.StatusCode != 500 || id == "" || json.Unmarshal(body, &e) != nil || e.Error != "internal error, request id "+id || e.RequestID != id {
		t.Fatalf("GET of a broken blob: %d, id %q: %s", resp.StatusCode, id, body)
	}
	if strings.Contains(string(body), "symbolic") || strings.Contains(string(body), os.TempDir()) {
		t.Errorf("the body tells the fault: %s", body)
	}
	found := false
	for _, msg := range logs.Errors(id) {
		found = found || strings.Contains(msg, "too many levels of symbolic links")
	}
	if !found {
		t.Errorf("no error line with id %s names the fault:\n%s", id, logs.String())
	}

	// The client: a StatusError with the id, read as unavailable.
	_, _, err = tc.Client.Open(ctx, d)
	var se *protocol.StatusError
	if !errors.As(err, &se) || se.Status != 500 || se.RequestID == "" || !errors.Is(err, model.ErrUnavailable) ||
		!strings.Contains(err.Error(), "isolate server: internal error, request id "+se.RequestID) {
		t.Errorf("Open of a broken blob: %v", err)
	}
}
