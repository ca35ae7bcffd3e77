// Package browsertest gives tests a headless Chromium (Debian's
// /usr/bin/chromium) driven through chromedp: a tab that records every
// network request it makes, so that a test can assert that a page asked
// nothing of any host but the machine's own, and screenshots saved under
// .ci/out/screenshots/ for the CI artifacts.
package browsertest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/dist-test/dist_test/internal/testenv"
)

// Paths where Debian and other distributions install Chromium; the
// environment variable DIST_TEST_CHROMIUM names another.
var paths = []string{"/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"}

// Exec returns the Chromium program, or an error that says how to install it.
func Exec() (string, error) {
	if p := os.Getenv("DIST_TEST_CHROMIUM"); p != "" {
		path, err := exec.LookPath(p)
		if err != nil {
			return "", fmt.Errorf("DIST_TEST_CHROMIUM=%s: %w", p, err)
		}
		return path, nil
	}
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no Chromium at " + strings.Join(paths, ", ") + "; install it with: apt-get install -y chromium")
}

// Browser is one tab of a headless Chromium of the test's own.
type Browser struct {
	// Ctx is the chromedp context of the tab; its deadline is the timeout
	// given to New.
	Ctx context.Context
	t   testing.TB

	mu       sync.Mutex
	requests []string
}

// New starts Chromium for the test and opens a tab; everything the test does
// in it must end within timeout. Without Chromium the test fails under
// CI=true and is skipped elsewhere. The browser stops when the test ends.
func New(t testing.TB, timeout time.Duration) *Browser {
	t.Helper()
	path, err := Exec()
	if err != nil {
		if testenv.CI() {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
		chromedp.DisableGPU,
		// Chromium's sandbox needs user namespaces that containers (and
		// root) often lack; the pages under test are the project's own.
		chromedp.NoSandbox,
		// Nothing may leave the machine: names other than the loopback's
		// do not resolve, so a stray request fails fast instead of waiting
		// on a closed network; Requests still records it.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1"),
		chromedp.Flag("no-proxy-server", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	b := &Browser{t: t}
	tabCtx, cancelTab := chromedp.NewContext(allocCtx,
		chromedp.WithListener(b.record),
		chromedp.WithLogf(func(string, ...any) {}),
		chromedp.WithErrorf(func(f string, args ...any) { t.Logf("chromedp: "+f, args...) }))
	// The first Run starts the browser and must not have a deadline (it
	// would stop the browser); later calls share the tab through Ctx.
	if err := chromedp.Do(tabCtx); err != nil {
		cancelTab()
		cancelAlloc()
		t.Fatalf("starting %s: %v", path, err)
	}
	ctx, cancel := context.WithTimeout(tabCtx, timeout)
	b.Ctx = ctx
	t.Cleanup(func() {
		cancel()
		cancelTab()
		cancelAlloc()
	})
	return b
}

func (b *Browser) record(ev any) {
	if e, ok := ev.(*network.EventRequestWillBeSent); ok && e.Request != nil {
		b.mu.Lock()
		b.requests = append(b.requests, e.Request.URL)
		b.mu.Unlock()
	}
}

// Do runs the actions in the tab and fails the test on an error.
func (b *Browser) Do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.Ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Text returns the visible text of the first element that matches the CSS
// selector, once it is there.
func (b *Browser) Text(css string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.Ctx, chromedp.Text(chromedp.CSS(css)))
	if err != nil {
		b.t.Fatalf("browser: text of %s: %v", css, err)
	}
	return s
}

// Requests returns the URL of every request the tab has made so far.
func (b *Browser) Requests() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.requests)
}

// Foreign returns the requests that went to a host other than the loopback
// (data:, about: and blob: URLs stay in the browser).
func (b *Browser) Foreign() []string {
	var out []string
	for _, r := range b.Requests() {
		if !Local(r) {
			out = append(out, r)
		}
	}
	return out
}

// Local reports whether a request to rawURL stays on the machine.
func Local(rawURL string) bool {
	u, err := url.Parse(rawURL)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "data", "about", "blob":
		return true
	case "http", "https", "ws", "wss":
	default:
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// AssertLocalOnly fails the test if any request so far left the machine.
func (b *Browser) AssertLocalOnly() {
	b.t.Helper()
	all := b.Requests()
	if len(all) == 0 {
		b.t.Error("the browser recorded no request at all: the network events are not being seen")
	}
	if f := b.Foreign(); len(f) > 0 {
		b.t.Errorf("requests left the machine: %s", strings.Join(f, ", "))
	}
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// Screenshot saves the whole page as .ci/out/screenshots/NAME.png at the
// repository's root (the folder the CI keeps as artifacts) and returns the
// file's path.
func (b *Browser) Screenshot(name string) string {
	b.t.Helper()
	png, err := chromedp.Run(b.Ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir, err := ScreenshotDir()
	if err != nil {
		b.t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.t.Fatal(err)
	}
	path := filepath.Join(dir, unsafeName.ReplaceAllString(name, "_")+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot: %s", path)
	return path
}

// ScreenshotDir is .ci/out/screenshots at the root of the module the test
// runs in (the nearest folder above the working directory with a go.mod).
func ScreenshotDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, ".ci", "out", "screenshots"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}
