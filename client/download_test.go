package client

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

func TestDownload(t *testing.T) {
	tries := 0
	m := newMaster(t, map[string]http.HandlerFunc{
		"GET /logs/ok": func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("log text")) },
		"GET /logs/busy": func(w http.ResponseWriter, r *http.Request) {
			tries++
			if tries < 3 {
				http.Error(w, "SlowDown", http.StatusInternalServerError)
				return
			}
			w.Write([]byte("finally"))
		},
		"GET /logs/expired": func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "Request has expired", http.StatusForbidden)
		},
		"GET /logs/short": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", strconv.Itoa(100))
			w.Write([]byte("cut"))
		},
	})
	dir := t.TempDir()

	t.Run("saves", func(t *testing.T) {
		p := filepath.Join(dir, "a.stdout")
		if err := New(m.URL).Download(t.Context(), m.URL+"/logs/ok", p); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "log text" {
			t.Errorf("file holds %q", b)
		}
	})
	t.Run("skips an existing file", func(t *testing.T) {
		p := filepath.Join(dir, "b.stdout")
		os.WriteFile(p, []byte("mine"), 0o644)
		if err := New(m.URL).Download(t.Context(), m.URL+"/logs/ok", p); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "mine" {
			t.Errorf("file holds %q, want it untouched", b)
		}
	})
	t.Run("retries a busy store", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := filepath.Join(dir, "c.stdout")
			if err := New(m.URL, WithHTTPClient(noKeepAlive())).Download(t.Context(), m.URL+"/logs/busy", p); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(p); string(b) != "finally" || tries != 3 {
				t.Errorf("file holds %q after %d tries", b, tries)
			}
		})
	})
	t.Run("expired link fails at once", func(t *testing.T) {
		p := filepath.Join(dir, "d.stdout")
		err := New(m.URL).Download(t.Context(), m.URL+"/logs/expired?X-Amz-Signature=secret", p)
		var e *protocol.StatusError
		if !errors.As(err, &e) || e.Status != 403 {
			t.Fatalf("err = %v, want the 403", err)
		}
		if strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "/logs/expired answered 403 Forbidden: Request has expired") {
			t.Errorf("err = %q: want the status and the link without its signature", err)
		}
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed download left %s", p)
		}
	})
	t.Run("cut-off body leaves nothing", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := filepath.Join(dir, "e.stdout")
			err := New(m.URL, WithHTTPClient(noKeepAlive()), WithRetry(2, 0, 0)).Download(t.Context(), m.URL+"/logs/short", p)
			if err == nil {
				t.Fatal("a body shorter than its Content-Length was accepted")
			}
		})
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if e.Name() != "a.stdout" && e.Name() != "b.stdout" && e.Name() != "c.stdout" {
				t.Errorf("left behind %s", e.Name())
			}
		}
	})
	t.Run("no signature in network errors", func(t *testing.T) {
		dead := httptest.NewServer(http.NotFoundHandler())
		dead.Close()
		err := New(dead.URL, WithRetry(1, 0, 0)).Download(t.Context(), dead.URL+"/x?X-Amz-Signature=secret", filepath.Join(dir, "g"))
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("a missing folder is not retried", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			p := filepath.Join(dir, "nope", "f.stdout")
			err := New(m.URL, WithHTTPClient(noKeepAlive())).Download(t.Context(), m.URL+"/logs/ok", p)
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("err = %v", err)
			}
		})
	})
}

// Tail asks for the end of a log; from a server that ignores the range it
// keeps the end of the whole.
func TestTail(t *testing.T) {
	body := strings.Repeat("x", 100) + "the end\n"
	m := newMaster(t, map[string]http.HandlerFunc{
		"GET /ranged": func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(body))
		},
		"GET /whole": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) },
		"GET /empty": func(w http.ResponseWriter, r *http.Request) {
			http.ServeContent(w, r, "", time.Time{}, strings.NewReader(""))
		},
	})
	c := New(m.URL)
	for _, path := range []string{"/ranged", "/whole"} {
		got, err := c.Tail(t.Context(), m.URL+path, 8)
		if err != nil || string(got) != "the end\n" {
			t.Errorf("%s: %q, %v", path, got, err)
		}
	}
	if got, err := c.Tail(t.Context(), m.URL+"/empty", 8); err != nil || len(got) != 0 {
		t.Errorf("empty: %q, %v", got, err)
	}
}
