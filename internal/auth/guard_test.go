package auth_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/protocol"
)

const token = "a-slave-token-long-enough"

// server serves one route of each access behind a guard; each answers the
// caller's identity.
func server(t *testing.T, c auth.Config) *httptest.Server {
	t.Helper()
	g, err := auth.New(c)
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := auth.IdentityOf(r.Context())
		fmt.Fprintf(w, "%s:%s:%v", id.Role, id.Name, id.Address)
	})
	mux := http.NewServeMux()
	mux.Handle("/read", g.Require(auth.Read)(echo))
	mux.Handle("/write", g.Require(auth.Write)(echo))
	mux.Handle("/slave", g.Require(auth.SlaveProtocol)(echo))
	mux.Handle("/api/v1/cas/", g.CAS(echo))
	mux.HandleFunc(protocol.PathWhoAmI, g.WhoAmI)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func clientOf(t *testing.T, srv *httptest.Server, cred httpclient.Credentials) *http.Client {
	t.Helper()
	hc, err := httpclient.New(srv.URL, "", cred, 0)
	if err != nil {
		t.Fatal(err)
	}
	return hc
}

func call(t *testing.T, hc *http.Client, method, url string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader("body"))
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

var accounts = auth.Config{
	Users:      map[string]string{"alice": "alice-pw", "bob": auth.HA1("bob", "bob-pw"), "carol": "carol-pw"},
	SlaveUsers: map[string]string{"slave1": "slave-pw"},
	SlaveToken: token,
	Admins:     []string{"carol"},
	// Not the test's loopback address: nobody writes by address.
	AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.255.0.0/16")},
}

// Every identity against every access: what passes, and the status of
// what does not.
func TestRoles(t *testing.T) {
	srv := server(t, accounts)
	type want struct{ read, write, slave int }
	cases := []struct {
		name string
		cred httpclient.Credentials
		want want
		role string
	}{
		{"anonymous", httpclient.Credentials{}, want{200, 401, 401}, "anonymous::false"},
		{"user by plain password", httpclient.Credentials{User: "alice", Password: "alice-pw"}, want{200, 200, 403}, "user:alice:false"},
		{"user by HA1", httpclient.Credentials{User: "bob", Password: "bob-pw"}, want{200, 200, 403}, "user:bob:false"},
		{"admin", httpclient.Credentials{User: "carol", Password: "carol-pw"}, want{200, 200, 403}, "admin:carol:false"},
		{"wrong password", httpclient.Credentials{User: "alice", Password: "bob-pw"}, want{401, 401, 401}, ""},
		{"unknown user", httpclient.Credentials{User: "mallory", Password: "x"}, want{401, 401, 401}, ""},
		{"slave token", httpclient.Credentials{Token: token}, want{200, 403, 200}, "slave::false"},
		{"wrong token", httpclient.Credentials{Token: token + "x"}, want{401, 401, 401}, ""},
		{"slave account", httpclient.Credentials{User: "slave1", Password: "slave-pw"}, want{200, 403, 200}, "slave:slave1:false"},
		{"HA1 as the password", httpclient.Credentials{User: "bob", Password: auth.HA1("bob", "bob-pw")}, want{401, 401, 401}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hc := clientOf(t, srv, c.cred)
			for _, r := range []struct {
				path string
				want int
			}{{"/read", c.want.read}, {"/write", c.want.write}, {"/slave", c.want.slave}} {
				code, body, hdr := call(t, hc, "POST", srv.URL+r.path)
				if code != r.want {
					t.Errorf("POST %s: %d %s; want %d", r.path, code, body, r.want)
					continue
				}
				switch code {
				case 200:
					if body != c.role {
						t.Errorf("POST %s: identity %q, want %q", r.path, body, c.role)
					}
				case 401:
					if ch := hdr.Values("Www-Authenticate"); len(ch) == 0 || !strings.HasPrefix(ch[0], `Digest realm="dist_test"`) {
						t.Errorf("POST %s: 401 without a Digest challenge: %q", r.path, ch)
					}
					var e protocol.Error
					if json.Unmarshal([]byte(body), &e) != nil || e.Code != "unauthenticated" {
						t.Errorf("POST %s: 401 body %s", r.path, body)
					}
				case 403:
					var e protocol.Error
					if json.Unmarshal([]byte(body), &e) != nil || e.Code != "forbidden" {
						t.Errorf("POST %s: 403 body %s", r.path, body)
					}
				}
			}
		})
	}
}

// An address of allowed_ip_ranges is a user without a name; credentials it
// sends are checked all the same.
func TestAllowedAddress(t *testing.T) {
	c := accounts
	c.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	srv := server(t, c)
	code, body, _ := call(t, http.DefaultClient, "POST", srv.URL+"/write")
	if code != 200 || body != "user::true" {
		t.Errorf("allowlisted address: %d %q", code, body)
	}
	if code, body, _ := call(t, http.DefaultClient, "POST", srv.URL+"/slave"); code != 403 {
		t.Errorf("allowlisted address on the slave protocol: %d %s; want 403", code, body)
	}
	hc := clientOf(t, srv, httpclient.Credentials{User: "alice", Password: "wrong"})
	if code, _, _ := call(t, hc, "POST", srv.URL+"/write"); code != 401 {
		t.Errorf("wrong password from an allowlisted address: %d; want 401", code)
	}
	// A client holding credentials gets a challenge first (whoami), so it
	// is known by its account even from an allowlisted address.
	hc = clientOf(t, srv, httpclient.Credentials{User: "alice", Password: "alice-pw"})
	if code, body, _ := call(t, hc, "POST", srv.URL+"/write"); code != 200 || body != "user:alice:false" {
		t.Errorf("account from an allowlisted address: %d %q; want alice", code, body)
	}
}

// With read_auth, reads need any identity; slaves may read.
func TestReadAuth(t *testing.T) {
	c := accounts
	c.ReadAuth = true
	srv := server(t, c)
	if code, _, hdr := call(t, http.DefaultClient, "GET", srv.URL+"/read"); code != 401 || hdr.Get("Www-Authenticate") == "" {
		t.Errorf("anonymous read with read_auth: %d %v", code, hdr)
	}
	for _, cred := range []httpclient.Credentials{{Token: token}, {User: "alice", Password: "alice-pw"}} {
		if code, body, _ := call(t, clientOf(t, srv, cred), "GET", srv.URL+"/api/v1/cas/abc"); code != 200 {
			t.Errorf("%+v CAS read with read_auth: %d %s", cred, code, body)
		}
	}
}

// CAS downloads and missing-queries are reads; uploads are writes.
func TestCASAccess(t *testing.T) {
	srv := server(t, accounts)
	for _, r := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/api/v1/cas/abc", 200}, {"HEAD", "/api/v1/cas/abc", 200}, {"POST", "/api/v1/cas/missing", 200},
		{"PUT", "/api/v1/cas/abc", 401}, {"POST", "/api/v1/cas/abc", 401}, {"DELETE", "/api/v1/cas/abc", 401},
	} {
		if code, _, _ := call(t, http.DefaultClient, r.method, srv.URL+r.path); code != r.want {
			t.Errorf("anonymous %s %s: %d, want %d", r.method, r.path, code, r.want)
		}
	}
	hc := clientOf(t, srv, httpclient.Credentials{Token: token})
	if code, _, _ := call(t, hc, "PUT", srv.URL+"/api/v1/cas/abc"); code != 403 {
		t.Errorf("slave PUT to the CAS: %d, want 403", code)
	}
}

// Bad configurations are refused with the key to fix.
func TestConfigErrors(t *testing.T) {
	for _, c := range []struct {
		cfg  auth.Config
		want string
	}{
		{auth.Config{Users: map[string]string{"a:b": "pw"}}, `[dist_test] accounts: user name "a:b"`},
		{auth.Config{Users: map[string]string{"a": ""}}, `user "a" has an empty password`},
		{auth.Config{Users: map[string]string{"a": "pw"}, SlaveUsers: map[string]string{"a": "pw"}}, `"a" is also in [dist_test] accounts`},
		{auth.Config{Users: map[string]string{"a": "pw"}, Admins: []string{"root"}}, `[master] admins: "root" is not an account`},
		{auth.Config{SlaveToken: "short"}, "[slave] token: 5 characters is too short"},
	} {
		if _, err := auth.New(c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v; want %q", c.cfg, err, c.want)
		}
	}
	g, err := auth.New(auth.Config{Users: map[string]string{"z": "pw", "a": "pw", "h": auth.HA1("h", "x")}})
	if err != nil || strings.Join(g.Plaintext(), ",") != "a,z" {
		t.Errorf("Plaintext() = %v, %v; want a,z", g.Plaintext(), err)
	}
}

// Many clients at once, each with its own challenge and many requests in
// flight: every one is let through (no nonce count refusal), and the
// guard's use of the Digest library is free of races (go test -race).
func TestConcurrentDigest(t *testing.T) {
	srv := server(t, accounts)
	var wg sync.WaitGroup
	errs := make(chan string, 200)
	for i := range 4 {
		hc := clientOf(t, srv, httpclient.Credentials{User: "alice", Password: "alice-pw"})
		if i%2 == 1 {
			hc = clientOf(t, srv, httpclient.Credentials{User: "wrong", Password: "x"})
		}
		for range 25 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest("POST", srv.URL+"/write", nil)
				resp, err := hc.Do(req)
				if err != nil {
					errs <- err.Error()
					return
				}
				resp.Body.Close()
				if want := map[bool]int{false: 200, true: 401}[i%2 == 1]; resp.StatusCode != want {
					errs <- fmt.Sprintf("client %d: %d, want %d", i, resp.StatusCode, want)
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// Malformed, forged and foreign credentials are refused (401), never let
// through and never a crash.
func TestHostileCredentials(t *testing.T) {
	c := accounts
	c.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} // even from an allowed address
	srv := server(t, c)
	valid := `Digest username="alice", realm="dist_test", nonce="forged", uri="/write", algorithm=MD5, qop=auth, nc=00000001, cnonce="x", response="` + strings.Repeat("0", 32) + `", opaque="x"`
	for _, h := range []string{
		"Digest", "Digest ", "Digest garbage", `Digest username="alice"`, `Digest username="alice", response="x"`,
		valid, strings.Replace(valid, `username="alice"`, `username="slave1"`, 1),
		"Basic YWxpY2U6YWxpY2UtcHc=", "Bearer", "Bearer ", "Bearer " + strings.Repeat("x", 10000), "bearer " + token[:len(token)-1],
		"Negotiate abc", "Digest " + strings.Repeat(`a="b", `, 2000), `Digest username="` + strings.Repeat("a", 5000) + `"`,
	} {
		req, _ := http.NewRequest("POST", srv.URL+"/write", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Errorf("Authorization %.40q: %d %s; want 401", h, resp.StatusCode, b)
		}
	}
	// The token is compared whole, in any case of the scheme's name.
	req, _ := http.NewRequest("POST", srv.URL+"/slave", nil)
	req.Header.Set("Authorization", "bearer "+token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("lower-case bearer with the token: %v %v", resp.StatusCode, err)
	}
	// Credentials of one request do not serve another method on the same path.
	hc := clientOf(t, srv, httpclient.Credentials{User: "alice", Password: "alice-pw"})
	req, _ = http.NewRequest("GET", srv.URL+"/write", nil)
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET as alice: %v %v", resp.StatusCode, err)
	}
	replay, _ := http.NewRequest("POST", srv.URL+"/write", nil)
	replay.Header.Set("Authorization", resp.Request.Header.Get("Authorization"))
	if resp, err := http.DefaultClient.Do(replay); err != nil || resp.StatusCode != 401 {
		t.Errorf("a GET's credentials on a POST: %v %v; want 401", resp.StatusCode, err)
	}
}

// The cost of identifying the caller of a request: the same read by an
// allowed address, a Digest account (after its one challenge) and a token.
func BenchmarkIdentify(b *testing.B) {
	for _, c := range []struct {
		name string
		cred httpclient.Credentials
	}{{"address", httpclient.Credentials{}}, {"digest", httpclient.Credentials{User: "alice", Password: "alice-pw"}}, {"token", httpclient.Credentials{Token: token}}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := accounts
			cfg.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
			g, err := auth.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			mux := http.NewServeMux()
			mux.Handle("/read", g.Require(auth.Read)(ok))
			mux.HandleFunc(protocol.PathWhoAmI, g.WhoAmI)
			srv := httptest.NewServer(mux)
			defer srv.Close()
			hc, _ := httpclient.New(srv.URL, "", c.cred, 0)
			for b.Loop() {
				resp, err := hc.Get(srv.URL + "/read")
				if err != nil || resp.StatusCode != 200 {
					b.Fatalf("%v %v", resp, err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
}
