package health

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestReady(t *testing.T) {
	ok := Check{Name: "queue", Probe: func(context.Context) error { return nil }}
	down := Check{Name: "database", Probe: func(context.Context) error { return errors.New("dial tcp 10.0.0.5:3306: refused") }}
	// A probe that ignores its context: the deadline answers for it.
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	stuck := Check{Name: "blobs", Probe: func(context.Context) error { <-release; return nil }}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	get := func(h http.Handler) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		return w.Code, w.Body.String()
	}
	if code, body := get(Ready(log, ok)); code != 200 || body != "ready\nqueue: ok\n" {
		t.Errorf("all up: %d %q", code, body)
	}
	code, body := get(Ready(log, ok, down))
	if code != 503 || !strings.HasPrefix(body, "not ready: database\n") || !strings.Contains(body, "queue: ok") {
		t.Errorf("database down: %d %q", code, body)
	}
	if strings.Contains(body, "10.0.0.5") {
		t.Errorf("the body tells where the database is: %q", body)
	}
	if testing.Short() {
		return
	}
	if code, body := get(Ready(log, stuck, down)); code != 503 || !strings.HasPrefix(body, "not ready: blobs, database\n") {
		t.Errorf("stuck and down: %d %q", code, body)
	}
}
