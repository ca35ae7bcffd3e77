// Package auth decides who may call what on a dist_test server (the
// master and the isolate server): it identifies the caller of each request
// (an HTTP Digest account, a slave's token, an address in
// allowed_ip_ranges, or nobody) and lets the request through only when the
// caller's role allows the route's access.
//
// Roles, from the configuration:
//   - anonymous: reads only, and none when read_auth is on;
//   - user: an account of [dist_test] accounts, or an address in
//     [dist_test] allowed_ip_ranges: reads, submit, cancel, retry, and
//     uploads to the isolate server;
//   - admin: a user named in [master] admins (owners_only lets admins
//     cancel and retry any job);
//   - slave: the shared [slave] token, or an account of [master]
//     slave_accounts: reads and the slave protocol, nothing else.
//
// Credentials presented and not accepted are a 401, even from an
// allowlisted address, so that a wrong password is never silently ignored.
package auth

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"

	httpauth "github.com/abbot/go-http-auth"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// Role is what a caller may do.
type Role int

const (
	Anonymous Role = iota
	User
	Admin
	Slave
)

func (r Role) String() string {
	switch r {
	case User:
		return "user"
	case Admin:
		return "admin"
	case Slave:
		return "slave"
	}
	return "anonymous"
}

// Identity is the caller of a request.
type Identity struct {
	Role Role
	// Name is the account; "" for an anonymous caller, an allowlisted
	// address or the slave token.
	Name string
	// Address: a user by its address in allowed_ip_ranges.
	Address bool
}

// Access is what a route needs.
type Access int

const (
	// Read: pages, job status, task lists, logs, CAS downloads.
	Read Access = iota
	// Write: submit, cancel, retry, CAS uploads; users and admins.
	Write
	// SlaveProtocol: register, heartbeat, start, outputs, finish, abort.
	SlaveProtocol
)

// MinTokenLength is the shortest slave token accepted.
const MinTokenLength = 16

// Config is the guard's part of the configuration.
type Config struct {
	Users      map[string]string // [dist_test] accounts: user → password or HA1
	SlaveUsers map[string]string // [master] slave_accounts: user → password or HA1
	SlaveToken string            // [slave] token
	AllowedIPs []netip.Prefix    // [dist_test] allowed_ip_ranges
	ReadAuth   bool              // [master] read_auth
	Admins     []string          // [master] admins
	Logger     *slog.Logger
}

// Guard identifies callers and enforces roles. Safe for concurrent use.
type Guard struct {
	users, slaves accounts
	admins        map[string]bool
	token         []byte
	allowed       []netip.Prefix
	readAuth      bool
	plaintext     []string
	log           *slog.Logger

	// go-http-auth's DigestAuth keeps its nonces in a map that only
	// CheckAuth locks: every call into it goes under mu.
	mu     sync.Mutex
	digest *httpauth.DigestAuth // nil when there is no account at all
}

// New checks the configuration and returns its guard.
func New(c Config) (*Guard, error) {
	g := &Guard{admins: map[string]bool{}, allowed: c.AllowedIPs, readAuth: c.ReadAuth, log: c.Logger}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	var err error
	var plain []string
	if g.users, plain, err = parseAccounts(c.Users, "[dist_test] accounts"); err != nil {
		return nil, err
	}
	g.plaintext = append(g.plaintext, plain...)
	if g.slaves, plain, err = parseAccounts(c.SlaveUsers, "[master] slave_accounts"); err != nil {
		return nil, err
	}
	g.plaintext = append(g.plaintext, plain...)
	for name := range g.slaves {
		if _, ok := g.users[name]; ok {
			return nil, fmt.Errorf("[master] slave_accounts: %q is also in [dist_test] accounts; a slave account must be an account of its own", name)
		}
	}
	for _, a := range c.Admins {
		if _, ok := g.users[a]; !ok {
			return nil, fmt.Errorf("[master] admins: %q is not an account of [dist_test] accounts", a)
		}
		g.admins[a] = true
	}
	if t := c.SlaveToken; t != "" {
		if len(t) < MinTokenLength {
			return nil, fmt.Errorf("[slave] token: %d characters is too short to be a secret; use at least %d, e.g. the output of `openssl rand -hex 32`", len(t), MinTokenLength)
		}
		g.token = []byte(t)
	}
	if len(g.users)+len(g.slaves) > 0 {
		g.digest = httpauth.NewDigestAuthenticator(Realm, g.secret)
		// The slots of a slave, and the parallel uploads of an archive,
		// share one challenge; their requests arrive out of order, which
		// a strict nonce count would refuse.
		g.digest.IgnoreNonceCount = true
		g.digest.ClientCacheSize = 10000
		g.digest.ClientCacheTolerance = 1000
	}
	return g, nil
}

// secret is the SecretProvider of the Digest authenticator.
func (g *Guard) secret(user, realm string) string {
	if h, ok := g.users[user]; ok {
		return h
	}
	return g.slaves[user]
}

// Plaintext lists the accounts whose password the configuration holds in
// plain text rather than as an HA1 hash, for a warning at start.
func (g *Guard) Plaintext() []string { return g.plaintext }

// HasSlaveCredentials tells whether slaves have any way to authenticate.
func (g *Guard) HasSlaveCredentials() bool { return len(g.token) > 0 || len(g.slaves) > 0 }

// ReadAuth tells whether reads need authentication.
func (g *Guard) ReadAuth() bool { return g.readAuth }

type identityKey struct{}

// IdentityOf returns the caller identified by a guard's middleware.
func IdentityOf(ctx context.Context) Identity {
	id, _ := ctx.Value(identityKey{}).(Identity)
	return id
}

// Identify names the caller of r. An error (model.ErrUnauthenticated)
// means credentials were presented and not accepted.
func (g *Guard) Identify(r *http.Request) (Identity, error) {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case h == "":
		if g.allowedAddress(r.RemoteAddr) {
			return Identity{Role: User, Address: true}, nil
		}
		return Identity{}, nil
	case strings.EqualFold(scheme, "Bearer"):
		if len(g.token) == 0 || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(cred)), g.token) != 1 {
			return Identity{}, fmt.Errorf("%w: the slave token was not accepted; it must equal [slave] token of the master", model.ErrUnauthenticated)
		}
		return Identity{Role: Slave}, nil
	case strings.EqualFold(scheme, "Digest"):
		if g.digest == nil {
			return Identity{}, fmt.Errorf("%w: this server has no accounts; send no credentials", model.ErrUnauthenticated)
		}
		g.mu.Lock()
		name, _ := g.digest.CheckAuth(r)
		g.mu.Unlock()
		switch {
		case name == "":
			return Identity{}, fmt.Errorf("%w: the user name or password was not accepted (realm %q)", model.ErrUnauthenticated, Realm)
		case g.slaves[name] != "":
			return Identity{Role: Slave, Name: name}, nil
		case g.admins[name]:
			return Identity{Role: Admin, Name: name}, nil
		}
		return Identity{Role: User, Name: name}, nil
	}
	return Identity{}, fmt.Errorf("%w: Authorization scheme %q is not accepted: use HTTP Digest", model.ErrUnauthenticated, scheme)
}

func (g *Guard) allowedAddress(remote string) bool {
	ap, err := netip.ParseAddrPort(remote)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range g.allowed {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Allow tells whether id may use a route of access a; the error says why
// not and what to do.
func (g *Guard) Allow(a Access, id Identity) error {
	switch a {
	case Read:
		if !g.readAuth || id.Role != Anonymous {
			return nil
		}
		return fmt.Errorf("%w: reads need an account on this server ([master] read_auth is on)%s", model.ErrUnauthenticated, g.hint(a))
	case Write:
		switch id.Role {
		case User, Admin:
			return nil
		case Slave:
			return fmt.Errorf("%w: slave credentials may not submit, cancel or retry; use a user account", model.ErrForbidden)
		}
		if g.digest == nil || len(g.users) == 0 {
			return fmt.Errorf("%w: this address is not in [dist_test] allowed_ip_ranges and the server has no accounts ([dist_test] accounts)", model.ErrForbidden)
		}
		return fmt.Errorf("%w: submitting, canceling, retrying and uploading inputs need an account%s", model.ErrUnauthenticated, g.hint(a))
	case SlaveProtocol:
		switch id.Role {
		case Slave:
			return nil
		case Anonymous:
			return fmt.Errorf("%w: only slaves may call the slave protocol%s", model.ErrUnauthenticated, g.hint(a))
		}
		who := "user " + id.Name
		if id.Address {
			who = "an address in allowed_ip_ranges"
		}
		return fmt.Errorf("%w: only slaves may call the slave protocol, not %s", model.ErrForbidden, who)
	}
	return fmt.Errorf("%w: unknown access", model.ErrForbidden)
}

// hint says which credentials the clients of dist_test send.
func (g *Guard) hint(a Access) string {
	if a == SlaveProtocol {
		return ": slaves send [slave] token, or [slave] user and password of [master] slave_accounts"
	}
	return ": dist_test's client sends DIST_TEST_USER and DIST_TEST_PASSWORD ([dist_test] user and password)"
}

// Require is middleware that lets a request through when its caller may
// use a route of access a, with the caller in its context (IdentityOf).
func (g *Guard) Require(a Access) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id, err := g.Identify(r)
			if err == nil {
				err = g.Allow(a, id)
			}
			if err != nil {
				g.Refuse(w, r, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
		})
	}
}

// CAS is middleware for an isolate server's CAS handler: downloads and
// missing-queries (which change nothing) are reads, anything else a write.
func (g *Guard) CAS(next http.Handler) http.Handler {
	read, write := g.Require(Read)(next), g.Require(Write)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodGet, r.Method == http.MethodHead,
			r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/missing"):
			read.ServeHTTP(w, r)
		default:
			write.ServeHTTP(w, r)
		}
	})
}

// WhoAmI serves protocol.PathWhoAmI: the caller's role, or a 401 with a
// challenge when the server has accounts and the caller sent none, so that
// a client holding credentials has a challenge to answer before its first
// real call (and is known by its account even from an allowlisted address).
func (g *Guard) WhoAmI(w http.ResponseWriter, r *http.Request) {
	id, err := g.Identify(r)
	if err == nil && g.digest != nil && r.Header.Get("Authorization") == "" {
		err = fmt.Errorf("%w: this server has accounts: answer the challenge", model.ErrUnauthenticated)
	}
	if err != nil {
		g.Refuse(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, protocol.WhoAmI{User: id.Name, Role: id.Role.String(), Address: id.Address})
}

// Refuse answers err with its status (401, 403, ...) as a protocol.Error;
// a 401 carries a fresh Digest challenge when the server has accounts, and
// a Bearer one when it has a slave token.
func (g *Guard) Refuse(w http.ResponseWriter, r *http.Request, err error) {
	if status, _ := protocol.StatusOf(err); status == http.StatusUnauthorized {
		if g.digest != nil {
			g.mu.Lock()
			// NewContext fails to authenticate a request without valid
			// credentials and so mints a nonce and its challenge.
			info := httpauth.FromContext(g.digest.NewContext(r.Context(), withoutAuth(r)))
			g.mu.Unlock()
			if info != nil {
				w.Header()["Www-Authenticate"] = info.ResponseHeaders.Values("Www-Authenticate")
			}
		}
		if len(g.token) > 0 {
			w.Header().Add("WWW-Authenticate", fmt.Sprintf("Bearer realm=%q", Realm))
		}
	}
	protocol.WriteError(w, r, g.log, protocol.JSON, err)
}

// withoutAuth is r without credentials: the challenge of a refusal must be
// a new one whatever the request carried.
func withoutAuth(r *http.Request) *http.Request {
	if r.Header.Get("Authorization") == "" {
		return r
	}
	r2 := r.Clone(r.Context())
	r2.Header.Del("Authorization")
	return r2
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// MayChange tells whether id may cancel or retry a job submitted by owner
// when [master] owners_only is on: its owner and admins may.
func MayChange(id Identity, owner string) error {
	switch {
	case id.Role == Admin:
		return nil
	case id.Name != "" && id.Name == owner:
		return nil
	case id.Name == "":
		return fmt.Errorf("%w: only the job's owner (%q) or an admin may change it ([master] owners_only); log in with DIST_TEST_USER and DIST_TEST_PASSWORD", model.ErrForbidden, owner)
	}
	return fmt.Errorf("%w: %s is not the job's owner (%q) nor an admin ([master] owners_only)", model.ErrForbidden, id.Name, owner)
}
