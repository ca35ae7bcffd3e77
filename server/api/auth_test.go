package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/client"
	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/server"
)

// authConfig has users, an admin and a slave account; no address is
// allowed (the tests' loopback address is anonymous).
func authConfig(readAuth bool) *auth.Config {
	return &auth.Config{
		Users:      map[string]string{"alice": "alice-pw", "bob": auth.HA1("bob", "bob-pw"), "carol": "carol-pw"},
		SlaveUsers: map[string]string{"slave1": "slave-pw"},
		SlaveToken: testToken,
		Admins:     []string{"carol"},
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.255.0.0/16")},
		ReadAuth:   readAuth,
	}
}

// as is a raw HTTP client presenting cred to the harness's master.
func (h *harness) as(cred httpclient.Credentials) *http.Client {
	h.t.Helper()
	hc, err := httpclient.New(h.url, "", cred, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return hc
}

// apiAs is an API client presenting an account.
func (h *harness) apiAs(user, password string) *client.Client {
	return client.New(h.url, client.WithRetry(1, time.Millisecond, time.Millisecond), client.WithAuth(user, password))
}

func send(t *testing.T, hc *http.Client, method, target, ctype, body string, hdr http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, target, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

var (
	alice  = httpclient.Credentials{User: "alice", Password: "alice-pw"}
	bob    = httpclient.Credentials{User: "bob", Password: "bob-pw"}
	carol  = httpclient.Credentials{User: "carol", Password: "carol-pw"}
	slave1 = httpclient.Credentials{User: "slave1", Password: "slave-pw"}
	tokenC = httpclient.Credentials{Token: testToken}
	nobody = httpclient.Credentials{}
)

// Every route of the master against each kind of caller: nobody may write
// or speak the slave protocol, users may not speak it, slaves may not
// write; with read_auth nobody may read either. The bodies are junk: what
// is checked is whether the guard let the request reach its handler.
func TestEveryRouteIsGuarded(t *testing.T) {
	const (
		read = iota
		write
		slave
	)
	routes := []struct {
		method, path string
		access       int
	}{
		{"GET", "/api/v1/jobs", read}, {"GET", "/api/v1/jobs/j", read}, {"GET", "/api/v1/jobs/j/tasks", read},
		{"GET", "/api/v1/queue", read}, {"GET", "/api/v1/slaves", read}, {"GET", "/api/v1/events", read},
		{"GET", "/api/v1/capacity", read}, {"POST", "/api/v1/slaves/s/drain", write},
		{"GET", "/job_status?job_id=j", read}, {"GET", "/tasks?job_id=j", read}, {"GET", "/failed_tasks?job_id=j", read},
		{"GET", "/view_log?job_id=j", read}, {"GET", "/", read}, {"GET", "/job?job_id=j", read}, {"GET", "/trace?job_id=j", read},
		{"GET", "/test?description=d", read}, {"POST", "/job/cancel", write}, {"POST", "/job/retry", write},
		{"GET", "/slaves", read}, {"GET", "/view_log/tail?job_id=j", read},
		{"GET", "/api/v1/cas/0123456789abcdef0123456789abcdef01234567", read}, {"POST", "/api/v1/cas/missing", read},
		{"GET", "/outputs/j/t/0/stdout", read},
		{"POST", "/api/v1/jobs", write}, {"POST", "/api/v1/jobs/j/cancel", write}, {"POST", "/api/v1/jobs/j/retry", write},
		{"POST", "/submit_job", write}, {"POST", "/retry_task", write}, {"POST", "/cancel_job", write}, {"GET", "/cancel_job?job_id=j", write},
		{"PUT", "/api/v1/cas/0123456789abcdef0123456789abcdef01234567", write},
		{"POST", "/api/v1/slaves", slave}, {"POST", "/api/v1/slaves/s/heartbeat", slave}, {"DELETE", "/api/v1/slaves/s", slave},
		{"POST", "/api/v1/attempts/start", slave}, {"PUT", "/api/v1/attempts/l/outputs/stdout", slave},
		{"POST", "/api/v1/attempts/l/finish", slave}, {"POST", "/api/v1/attempts/l/abort", slave},
	}
	for _, readAuth := range []bool{false, true} {
		h := newHarnessWith(t, harnessOptions{guard: authConfig(readAuth)})
		callers := []struct {
			name string
			cred httpclient.Credentials
			may  [3]bool
		}{
			{"nobody", nobody, [3]bool{!readAuth, false, false}},
			{"wrong password", httpclient.Credentials{User: "alice", Password: "nope"}, [3]bool{}},
			{"user", alice, [3]bool{true, true, false}},
			{"admin", carol, [3]bool{true, true, false}},
			{"slave token", tokenC, [3]bool{true, false, true}},
			{"slave account", slave1, [3]bool{true, false, true}},
		}
		for _, c := range callers {
			hc := h.as(c.cred)
			for _, r := range routes {
				code, body := send(t, hc, r.method, h.url+r.path, "application/json", "{}", nil)
				refused := (code == 401 || code == 403) && (strings.Contains(body, `"unauthenticated"`) || strings.Contains(body, `"forbidden"`))
				if refused == c.may[r.access] {
					t.Errorf("read_auth=%v, %s: %s %s answered %d %s; want it %s", readAuth, c.name, r.method, r.path, code,
						strings.TrimSpace(body), map[bool]string{true: "let through", false: "refused"}[c.may[r.access]])
				}
				if code == 401 && !strings.Contains(strings.Join(headerOf(t, hc, r.method, h.url+r.path), " "), `Digest realm="dist_test"`) {
					t.Errorf("%s: %s %s: 401 without a Digest challenge", c.name, r.method, r.path)
				}
			}
		}
	}
}

func headerOf(t *testing.T, hc *http.Client, method, target string) []string {
	req, _ := http.NewRequest(method, target, strings.NewReader("{}"))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Values("Www-Authenticate")
}

// A job belongs to the account that submits it, whatever the request
// says; an allowed address names its user itself, as before.
func TestJobOwnerIsTheAccount(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{guard: authConfig(false)})
	ctx := context.Background()
	job, err := h.apiAs("alice", "alice-pw").CreateJob(ctx, protocol.CreateJob{ID: "j1", User: "mallory",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}}})
	if err != nil || job.User != "alice" {
		t.Errorf("job of alice: %+v, %v; want user alice", job, err)
	}
	code, body := send(t, h.as(bob), "POST", h.url+"/submit_job", "application/x-www-form-urlencoded",
		url.Values{"job_id": {"j2"}, "job_json": {h.jobJSON(1, "")}}.Encode(), nil)
	if code != 200 {
		t.Fatalf("legacy submit by bob: %d %s", code, body)
	}
	if j, err := h.m.Job(ctx, "j2"); err != nil || j.User != "bob" {
		t.Errorf("legacy job of bob: user %q, %v", j.User, err)
	}

	byAddress := newHarness(t)
	job, err = byAddress.api.CreateJob(ctx, protocol.CreateJob{ID: "j3", User: "dave", Tasks: []protocol.Task{{IsolateHash: byAddress.digest, Description: "t"}}})
	if err != nil || job.User != "dave" {
		t.Errorf("job from an allowed address: %+v, %v; want the user it names", job, err)
	}
}

// With owners_only, only the owner and admins cancel or retry a job, by
// every route that does.
func TestOwnersOnly(t *testing.T) {
	h := newHarnessWith(t, harnessOptions{guard: authConfig(false), ownersOnly: true})
	ctx := context.Background()
	if _, err := h.apiAs("alice", "alice-pw").CreateJob(ctx, protocol.CreateJob{ID: "owned",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t", MaxRetries: 1}}}); err != nil {
		t.Fatal(err)
	}
	form := "application/x-www-form-urlencoded"
	changes := []struct{ method, path, ctype, body string }{
		{"POST", "/api/v1/jobs/owned/cancel", "", ""},
		{"POST", "/api/v1/jobs/owned/retry", "application/json", "{}"},
		{"POST", "/cancel_job", form, "job_id=owned"},
		{"GET", "/cancel_job?job_id=owned", "", ""},
		{"POST", "/retry_task", form, url.Values{"task_json": {`{"job_id": "owned", "task_id": "x", "attempt": 0}`}}.Encode()},
	}
	for _, c := range changes {
		code, body := send(t, h.as(bob), c.method, h.url+c.path, c.ctype, c.body, nil)
		if code != 403 || !strings.Contains(body, `not the job's owner (\"alice\")`) {
			t.Errorf("bob: %s %s = %d %s; want 403 naming the owner", c.method, c.path, code, body)
		}
	}
	// The job page's buttons answer in HTML.
	for _, path := range []string{"/job/cancel", "/job/retry"} {
		code, body := send(t, h.as(bob), "POST", h.url+path, form, "job_id=owned", nil)
		if code != 403 || !strings.Contains(body, "not the job&#39;s owner (&#34;alice&#34;)") {
			t.Errorf("bob: POST %s = %d %s; want 403 naming the owner", path, code, body)
		}
	}
	if j, _ := h.m.Job(ctx, "owned"); j.Canceled {
		t.Fatal("bob canceled alice's job")
	}
	// The owner may retry (nothing to retry) and an admin may cancel.
	if code, body := send(t, h.as(alice), "POST", h.url+"/api/v1/jobs/owned/retry", "application/json", "{}", nil); code != 200 {
		t.Errorf("alice retries her job: %d %s", code, body)
	}
	if code, body := send(t, h.as(carol), "POST", h.url+"/api/v1/jobs/owned/cancel", "", "", nil); code != 200 {
		t.Errorf("admin cancels: %d %s", code, body)
	}
	if j, _ := h.m.Job(ctx, "owned"); !j.Canceled {
		t.Error("the admin's cancel did not cancel")
	}
	// An unknown job answers as the original did (200, SUCCESS), not as
	// forbidden: there is no owner to protect.
	if code, body := send(t, h.as(bob), "GET", h.url+"/cancel_job?job_id=nope", "", "", nil); code != 200 || !strings.Contains(body, `"SUCCESS"`) {
		t.Errorf("cancel of an unknown job: %d %s; want 200 SUCCESS", code, body)
	}
}

// Browser requests from another site may not change anything; clients
// that are not browsers (no Sec-Fetch-Site, no Origin) are not affected.
func TestCrossSiteRequests(t *testing.T) {
	h := newHarness(t) // the loopback address may write
	ctx := context.Background()
	form := "application/x-www-form-urlencoded"
	crossSite := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}
	oldBrowser := http.Header{"Origin": {"https://evil.example"}} // no Sec-Fetch-Site
	for _, hdr := range []http.Header{crossSite, oldBrowser} {
		code, body := send(t, http.DefaultClient, "POST", h.url+"/submit_job", form,
			url.Values{"job_id": {"x"}, "job_json": {h.jobJSON(1, "")}}.Encode(), hdr)
		if code != 403 {
			t.Errorf("cross-site form post %v: %d %s; want 403", hdr, code, body)
		}
	}
	if _, err := h.m.Job(ctx, "x"); err == nil {
		t.Error("a cross-site form post submitted a job")
	}
	if code, body := h.form("/submit_job", url.Values{"job_id": {"y"}, "job_json": {h.jobJSON(1, "")}}); code != 200 {
		t.Fatalf("submit without browser headers: %d %s", code, body)
	}
	for _, site := range []string{"cross-site", "same-site"} {
		code, _ := send(t, http.DefaultClient, "GET", h.url+"/cancel_job?job_id=y", "", "", http.Header{"Sec-Fetch-Site": {site}})
		if code != 403 {
			t.Errorf("GET /cancel_job marked %s: %d; want 403", site, code)
		}
	}
	if j, _ := h.m.Job(ctx, "y"); j.Canceled {
		t.Fatal("a cross-site GET canceled the job")
	}
	same := http.Header{"Sec-Fetch-Site": {"same-origin"}}
	if code, body := send(t, http.DefaultClient, "GET", h.url+"/cancel_job?job_id=y", "", "", same); code != 200 {
		t.Errorf("same-origin GET /cancel_job: %d %s", code, body)
	}
	if j, _ := h.m.Job(ctx, "y"); !j.Canceled {
		t.Error("the same-origin GET /cancel_job did not cancel")
	}
}

// clock is a master's clock that the test moves.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Links to outputs the master serves are signed: whoever was handed one
// follows it without logging in, even with read_auth, until it expires;
// an altered, guessed or expired one gets nothing. Another master with the
// same key honours them.
func TestSignedOutputLinks(t *testing.T) {
	clk := &clock{now: time.Now()}
	h := newHarnessWith(t, harnessOptions{guard: authConfig(true), now: clk.Now})
	ctx := context.Background()
	if _, err := h.apiAs("alice", "alice-pw").CreateJob(ctx, protocol.CreateJob{ID: "logs",
		Tasks: []protocol.Task{{IsolateHash: h.digest, Description: "t"}}}); err != nil {
		t.Fatal(err)
	}
	st, _ := h.startNext()
	const log = "the secret log\n"
	h.failWithLog(st, log)

	if code, _ := send(t, http.DefaultClient, "GET", h.url+"/tasks?job_id=logs", "", "", nil); code != 401 {
		t.Fatalf("anonymous task list with read_auth: %d", code)
	}
	_, body := send(t, h.as(alice), "GET", h.url+"/tasks?job_id=logs", "", "", nil)
	var tasks []map[string]any
	if err := json.Unmarshal([]byte(body), &tasks); err != nil || len(tasks) != 1 {
		t.Fatalf("tasks: %s", body)
	}
	link, _ := tasks[0]["stdout_link"].(string)
	u, _ := url.Parse(link)
	if u.Query().Get("sig") == "" || u.Query().Get("expires") == "" {
		t.Fatalf("link %q is not signed", link)
	}
	get := func(target string) (int, string) { return send(t, http.DefaultClient, "GET", target, "", "", nil) }
	if code, got := get(link); code != 200 || got != log {
		t.Errorf("signed link without a login: %d %q", code, got)
	}
	bare := h.url + u.Path
	if code, _ := get(bare); code != 401 {
		t.Errorf("the link without its signature: %d; want 401", code)
	}
	if code, got := send(t, h.as(alice), "GET", bare, "", "", nil); code != 200 || got != log {
		t.Errorf("unsigned link with a login: %d %q", code, got)
	}
	tampered := *u
	q := u.Query()
	q.Set("sig", strings.Repeat("A", len(q.Get("sig"))))
	tampered.RawQuery = q.Encode()
	stderr := *u
	stderr.Path = strings.TrimSuffix(u.Path, "stdout") + "stderr"
	later := *u
	q = u.Query()
	q.Set("expires", "99999999999")
	later.RawQuery = q.Encode()
	for name, l := range map[string]*url.URL{"tampered": &tampered, "another output": &stderr, "pushed-back expiry": &later} {
		if code, got := get(l.String()); code != 403 || strings.Contains(got, log) {
			t.Errorf("%s link: %d %q; want 403", name, code, got)
		}
	}

	clk.add(25 * time.Hour) // past the default link lifetime of 24 h
	if code, got := get(link); code != 403 || strings.Contains(got, log) {
		t.Errorf("expired link: %d %q; want 403", code, got)
	}
}

// Masters that share the key (kept in the store) honour each other's links.
func TestLinksOfAnotherMaster(t *testing.T) {
	h := newHarness(t)
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(i)
	}
	a, err := server.New(h.st, h.q, h.blobs, nil, server.Options{LinkKey: key})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := server.New(h.st, h.q, h.blobs, nil, server.Options{LinkKey: key})
	other, _ := server.New(h.st, h.q, h.blobs, nil, server.Options{})
	u, _ := url.Parse(a.OutputLink(context.Background(), "http://m", "outputs/j/t/0/stdout"))
	if err := b.CheckOutputLink("outputs/j/t/0/stdout", u.Query()); err != nil {
		t.Errorf("a link of master a on master b: %v", err)
	}
	if err := other.CheckOutputLink("outputs/j/t/0/stdout", u.Query()); err == nil {
		t.Error("a master with another key took the link")
	}
	if _, err := server.New(h.st, h.q, h.blobs, nil, server.Options{LinkKey: key[:8]}); err == nil {
		t.Error("an 8-byte link key was accepted")
	}
}
