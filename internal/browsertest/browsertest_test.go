package browsertest

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

func TestLocal(t *testing.T) {
	for u, want := range map[string]bool{
		"http://127.0.0.1:8080/job?job_id=x": true,
		"http://localhost/":                  true,
		"ws://[::1]:9/":                      true,
		"data:image/png;base64,AAAA":         true,
		"about:blank":                        true,
		"https://cdn.example.com/htmx.js":    false,
		"http://10.0.0.1/":                   false,
		"http://127.0.0.1.example.com/":      false,
		"ftp://127.0.0.1/":                   false,
		"%zz":                                false,
	} {
		if got := Local(u); got != want {
			t.Errorf("Local(%q) = %v, want %v", u, got, want)
		}
	}
}

// TestBrowserRecordsForeignRequests opens a page that asks for an image on
// another host: the recording must show it, and the page's own text and a
// screenshot must be there.
func TestBrowserRecordsForeignRequests(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>t</title><h1 id="h">hello &lt;b&gt;</h1><img src="http://cdn.example.com/x.png">`)
	}))
	defer srv.Close()
	b := New(t, time.Minute)
	b.Do(chromedp.Navigate(srv.URL + "/"))
	if got := b.Text("#h"); got != "hello <b>" {
		t.Errorf("heading = %q", got)
	}
	reqs := b.Requests()
	if len(reqs) < 2 || !strings.HasPrefix(reqs[0], srv.URL) {
		t.Errorf("requests = %v, want the page then the image", reqs)
	}
	// The image request is sent before the page's load ends.
	foreign := b.Foreign()
	if len(foreign) != 1 || foreign[0] != "http://cdn.example.com/x.png" {
		t.Errorf("foreign = %v, want the image on cdn.example.com", foreign)
	}
	path := b.Screenshot("browsertest self-test")
	if st, err := os.Stat(path); err != nil || st.Size() == 0 {
		t.Errorf("screenshot %s: %v", path, err)
	}
	if !strings.HasSuffix(path, ".ci/out/screenshots/browsertest_self-test.png") {
		t.Errorf("screenshot path = %s", path)
	}
}

// tb records how New gave up, and ends its goroutine as the testing
// package would.
type tb struct {
	testing.TB
	failed, skipped string
}

func (r *tb) Helper()             {}
func (r *tb) Fatal(args ...any)   { r.failed = fmt.Sprint(args...); runtime.Goexit() }
func (r *tb) Skip(args ...any)    { r.skipped = fmt.Sprint(args...); runtime.Goexit() }
func (r *tb) Logf(string, ...any) {}

// Without Chromium, a browser test fails in CI and is skipped elsewhere.
func TestMissingChromium(t *testing.T) {
	t.Setenv("DIST_TEST_CHROMIUM", "/nonexistent/chromium")
	for _, ci := range []string{"true", ""} {
		t.Setenv("CI", ci)
		r := &tb{TB: t}
		done := make(chan struct{})
		go func() {
			defer close(done)
			New(r, time.Minute)
		}()
		<-done
		if ci == "true" && (r.failed == "" || r.skipped != "") || ci == "" && (r.skipped == "" || r.failed != "") {
			t.Errorf("CI=%q: failed %q, skipped %q", ci, r.failed, r.skipped)
		}
		if msg := r.failed + r.skipped; !strings.Contains(msg, "/nonexistent/chromium") {
			t.Errorf("CI=%q: the message does not name the program: %q", ci, msg)
		}
	}
}
