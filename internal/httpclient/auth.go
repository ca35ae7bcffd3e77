// Package httpclient builds the HTTP clients dist_test's own programs (the
// CLI, the isolate commands, slaves, and a master talking to an isolate
// server) use: they trust a private CA when told to, and authenticate to one
// server with a slave token or by answering its HTTP Digest challenges.
package httpclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/icholy/digest"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Credentials are what a client presents.
type Credentials struct {
	User, Password string // an account, for HTTP Digest
	Token          string // a slave's shared token, sent as a Bearer token; used instead of User when set
}

// Empty tells whether there is nothing to present.
func (c Credentials) Empty() bool { return c.Token == "" && c.User == "" }

// AuthTransport presents credentials to one server (the scheme, host and
// port of its URL) and to nothing else: a presigned link to an object store
// must reach it without them.
//
// Digest needs a challenge before the first request can carry credentials.
// The transport asks for one once, with a GET of the server's whoami path,
// so that a large body is not sent only to be refused, and then answers
// every request from that cached challenge, counting its uses: no 401 round
// trip per request. When the server has forgotten the nonce (a restart, or
// another master behind a load balancer), the 401 brings a new challenge:
// a request without a body, or whose body can be had again (GetBody), is
// sent once more at once; any other is answered with the 401, and the
// caller's next try carries the new challenge.
//
// icholy/digest computes the credentials; its own Transport is not used
// because it reads every request body into memory to be able to resend it,
// and dist_test uploads files of gigabytes.
type AuthTransport struct {
	next   http.RoundTripper
	scheme string
	host   string
	probe  string
	cred   Credentials

	probeMu sync.Mutex // one probe at a time
	mu      sync.Mutex
	probed  bool
	chal    *digest.Challenge
	count   int // uses of chal
}

// NewAuthTransport returns a transport that sends requests through next
// (http.DefaultTransport when nil) and presents cred to the server at
// serverURL (its root; a path prefix is kept for the whoami path).
func NewAuthTransport(next http.RoundTripper, serverURL string, cred Credentials) (*AuthTransport, error) {
	u, err := url.Parse(serverURL)
	if err != nil {
		return nil, err
	}
	if next == nil {
		next = http.DefaultTransport
	}
	return &AuthTransport{next: next, scheme: strings.ToLower(u.Scheme), host: strings.ToLower(u.Host),
		probe: strings.TrimRight(serverURL, "/") + protocol.PathWhoAmI, cred: cred}, nil
}

func (t *AuthTransport) mine(u *url.URL) bool {
	return strings.ToLower(u.Scheme) == t.scheme && strings.ToLower(u.Host) == t.host
}

// RoundTrip implements http.RoundTripper.
func (t *AuthTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.cred.Empty() || !t.mine(req.URL) {
		return t.next.RoundTrip(req)
	}
	if t.cred.Token != "" {
		r := req.Clone(req.Context())
		r.Header.Set("Authorization", "Bearer "+t.cred.Token)
		return t.next.RoundTrip(r)
	}
	t.ensureChallenge(req.Context())
	resp, err := t.next.RoundTrip(t.authorize(req))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	chal, cerr := digest.FindChallenge(resp.Header)
	if cerr != nil || !digest.CanDigest(chal) {
		return resp, nil // nothing this transport can answer
	}
	t.save(chal)
	again, ok := rebuild(req)
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return t.next.RoundTrip(t.authorize(again))
}

// ensureChallenge gets a challenge from the whoami path unless one is
// cached or was already asked for. A failed probe is not fatal: the
// request itself gets a challenge if it needs one.
func (t *AuthTransport) ensureChallenge(ctx context.Context) {
	t.probeMu.Lock()
	defer t.probeMu.Unlock()
	t.mu.Lock()
	done := t.probed || t.chal != nil
	t.mu.Unlock()
	if done {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.probe, nil)
	if err != nil {
		return
	}
	req.Header.Set("Accept", "application/json")
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	t.mu.Lock()
	t.probed = true
	t.mu.Unlock()
	if resp.StatusCode == http.StatusUnauthorized {
		if chal, err := digest.FindChallenge(resp.Header); err == nil && digest.CanDigest(chal) {
			t.save(chal)
		}
	}
}

func (t *AuthTransport) save(chal *digest.Challenge) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.chal, t.count = chal, 0
}

// authorize returns req with credentials from the cached challenge, if
// there is one; req itself is left as it is.
func (t *AuthTransport) authorize(req *http.Request) *http.Request {
	t.mu.Lock()
	chal := t.chal
	t.count++
	n := t.count
	t.mu.Unlock()
	if chal == nil {
		return req
	}
	cred, err := digest.Digest(chal, digest.Options{Method: req.Method, URI: req.URL.RequestURI(), Count: n,
		Username: t.cred.User, Password: t.cred.Password})
	if err != nil {
		return req
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", cred.String())
	return r
}

// rebuild returns a request like req that can be sent again, if its body
// allows it.
func rebuild(req *http.Request) (*http.Request, bool) {
	if req.Body == nil || req.Body == http.NoBody {
		return req, true
	}
	if req.GetBody == nil {
		return nil, false
	}
	body, err := req.GetBody()
	if err != nil {
		return nil, false
	}
	r := req.Clone(req.Context())
	r.Body = body
	return r, true
}
