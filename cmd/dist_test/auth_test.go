package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
)

// runWith runs a dist_test command with more environment (later values
// win; an empty value unsets a setting).
func (c *cluster) runWith(env []string, args ...string) (int, string, string) {
	c.t.Helper()
	saved := c.env
	c.env = append(append([]string{}, c.env...), env...)
	defer func() { c.env = saved }()
	return c.run(args...)
}

// noLogin is the environment of a client without credentials.
var noLogin = []string{"DIST_TEST_USER=", "DIST_TEST_PASSWORD="}

func login(user, password string) []string {
	return []string{"DIST_TEST_USER=" + user, "DIST_TEST_PASSWORD=" + password}
}

// passwd runs `dist_test passwd user` with the password on standard input
// and returns the line it prints.
func passwd(t *testing.T, user, password string) string {
	t.Helper()
	cmd := exec.Command(binary, "passwd", user)
	cmd.Stdin = strings.NewReader(password + "\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dist_test passwd: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// httpDo sends a request with a client presenting cred to the server at
// base, and returns the status, the body and the headers.
func httpDo(t *testing.T, base string, cred httpclient.Credentials, caFile, method, path, ctype, body string, hdr http.Header) (int, string, http.Header) {
	t.Helper()
	hc, err := httpclient.New(base, caFile, cred, 0)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
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
	return resp.StatusCode, string(b), resp.Header
}

// pythonSubmit posts a job to /submit_job the way the original Python
// client does: urllib with an HTTPDigestAuthHandler over a password
// manager, answering the master's challenge. It returns the exit code (0
// submitted, 3 HTTP error) and the output.
func pythonSubmit(t *testing.T, master, user, password, jobID, jobJSON, caFile string) (int, string) {
	t.Helper()
	py := needPython(t, "to test the original client's Digest handshake")
	const script = `
import ssl, sys, urllib.error, urllib.parse, urllib.request
url, user, password, job_id, job_json, cafile = sys.argv[1:7]
mgr = urllib.request.HTTPPasswordMgrWithDefaultRealm()
mgr.add_password(None, url, user, password)
handlers = [urllib.request.HTTPDigestAuthHandler(mgr)]
if cafile:
    handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=cafile)))
opener = urllib.request.build_opener(*handlers)
data = urllib.parse.urlencode({"job_id": job_id, "job_json": job_json}).encode()
try:
    print(opener.open(url + "/submit_job", data).read().decode())
except urllib.error.HTTPError as e:
    print("HTTP %d" % e.code)
    sys.exit(3)
`
	cmd := exec.Command(py, "-c", script, master, user, password, jobID, jobJSON, caFile)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), string(out)
		}
		t.Fatal(err)
	}
	return 0, string(out)
}

// Writes need an account (or an allowed address): without credentials or
// with a wrong password they get 401 and a Digest challenge, with the right
// one (held as the HA1 `dist_test passwd` prints, or in plain text) they
// succeed, and the job belongs to the account. The original Python
// client's Digest handshake works. A user cannot speak the slave protocol
// and a slave account cannot submit.
func TestAuthenticatedWrites(t *testing.T) {
	line := passwd(t, "alice", "alice-secret")
	sum := md5.Sum([]byte("alice:dist_test:alice-secret"))
	if want := `"alice": "` + hex.EncodeToString(sum[:]) + `"`; line != want {
		t.Fatalf("passwd printed %q, want %q", line, want)
	}
	c := newClusterWith(t, clusterOptions{slots: 2, config: `[dist_test]
allowed_ip_ranges = 10.255.0.0/16
accounts = {` + line + `, "bob": "bob-plain"}
[master]
slave_accounts = {"s1": "slave-secret"}
`})
	if log := c.log.String(); !strings.Contains(log, "plain-text password") || !strings.Contains(log, `users="bob, s1"`) {
		t.Errorf("no warning naming the plain-text accounts bob and s1:\n%s", log)
	}
	c.writeInputs(scripts)

	// Inputs: uploading them is a write.
	args := []string{"isolate", "archive", "--isolate", filepath.Join(c.dir, "inputs", "task.isolate"), "--extra-variable", "SCRIPT=pass", "--extra-variable", "ARG=a"}
	code, _, stderr := c.runWith(noLogin, args...)
	if code != 1 || !strings.Contains(stderr, "DIST_TEST_USER and DIST_TEST_PASSWORD") {
		t.Errorf("archive without credentials: exit %d\n%s", code, stderr)
	}
	code, out, stderr := c.runWith(login("alice", "alice-secret"), args...)
	if code != 0 {
		t.Fatalf("archive as alice: exit %d\n%s", code, stderr)
	}
	hash := lastLine(out)
	job := c.writeJob("job.json", []jobTask{{IsolateHash: hash, Description: "pass", Timeout: 60}})

	code, _, stderr = c.runWith(noLogin, "submit", job)
	if code != 1 || !strings.Contains(stderr, "sent no credentials: set DIST_TEST_USER and DIST_TEST_PASSWORD") {
		t.Errorf("submit without credentials: exit %d\n%s", code, stderr)
	}
	code, _, stderr = c.runWith(login("alice", "wrong"), "submit", job)
	if code != 1 || !strings.Contains(stderr, "not accepted") || !strings.Contains(stderr, `sent user "alice"`) {
		t.Errorf("submit with a wrong password: exit %d\n%s", code, stderr)
	}
	jobJSON := `{"tasks": [{"isolate_hash": "` + hash + `", "description": "raw"}]}`
	form := url.Values{"job_id": {"raw.1"}, "job_json": {jobJSON}}.Encode()
	status, body, hdr := httpDo(t, c.url, httpclient.Credentials{}, "", "POST", "/submit_job", "application/x-www-form-urlencoded", form, nil)
	if status != 401 || !strings.HasPrefix(hdr.Get("Www-Authenticate"), `Digest realm="dist_test"`) || !strings.Contains(body, `"unauthenticated"`) {
		t.Errorf("POST /submit_job without credentials: %d %v %s", status, hdr, body)
	}
	code, stdout, stderr := c.runWith(login("alice", "alice-secret"), "submit", "-n", "mine", job)
	if code != 0 {
		t.Fatalf("submit as alice: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var j protocol.Job
	c.get("/api/v1/jobs/"+strings.TrimPrefix(lastLine(stdout), "job_id="), &j)
	if j.User != "alice" || j.SucceededTasks != 1 {
		t.Errorf("alice's job: user %q, %d passed", j.User, j.SucceededTasks)
	}
	if code, _, stderr := c.runWith(login("bob", "bob-plain"), "submit", "--no-wait", job); code != 0 {
		t.Errorf("submit as bob (plain-text password): exit %d\n%s", code, stderr)
	}

	// The original client: urllib's HTTPDigestAuthHandler.
	if code, out := pythonSubmit(t, c.url, "alice", "alice-secret", "py.1", jobJSON, ""); code != 0 || !strings.Contains(out, `"SUCCESS"`) {
		t.Errorf("python submit with the right password: exit %d %s", code, out)
	}
	if code, out := pythonSubmit(t, c.url, "alice", "wrong", "py.2", jobJSON, ""); code != 3 || !strings.Contains(out, "HTTP 401") {
		t.Errorf("python submit with a wrong password: exit %d %s; want HTTP 401", code, out)
	}
	var py protocol.Job
	c.get("/api/v1/jobs/py.1", &py)
	if py.User != "alice" {
		t.Errorf("the python client's job belongs to %q, want alice", py.User)
	}

	// Roles: a user does not speak the slave protocol, a slave does not submit.
	aliceCred := httpclient.Credentials{User: "alice", Password: "alice-secret"}
	for _, r := range []struct{ method, path string }{
		{"POST", "/api/v1/slaves"}, {"POST", "/api/v1/slaves/x/heartbeat"}, {"POST", "/api/v1/attempts/start"},
		{"POST", "/api/v1/attempts/" + strings.Repeat("0", 32) + "/finish"}, {"PUT", "/api/v1/attempts/x/outputs/stdout"},
	} {
		if status, body, _ := httpDo(t, c.url, aliceCred, "", r.method, r.path, "application/json", `{"exit_code": 0}`, nil); status != 403 ||
			!strings.Contains(body, "only slaves may call the slave protocol") {
			t.Errorf("alice: %s %s = %d %s; want 403", r.method, r.path, status, body)
		}
	}
	slaveCred := httpclient.Credentials{User: "s1", Password: "slave-secret"}
	if status, body, _ := httpDo(t, c.url, slaveCred, "", "POST", "/submit_job", "application/x-www-form-urlencoded", form, nil); status != 403 ||
		!strings.Contains(body, "slave credentials may not submit") {
		t.Errorf("slave account: POST /submit_job = %d %s; want 403", status, body)
	}
	if code, _, stderr := c.runWith(login("s1", "slave-secret"), "submit", "--no-wait", job); code != 1 || !strings.Contains(stderr, "slave credentials may not submit") {
		t.Errorf("submit as a slave account: exit %d\n%s", code, stderr)
	}
	var l protocol.SlaveList
	c.get("/api/v1/slaves", &l)
	if len(l.Slaves) != 1 {
		t.Errorf("%d slaves registered; want only local's own", len(l.Slaves))
	}
}

// With owners_only, only the job's owner and admins cancel it; an allowed
// address still submits without an account.
func TestOwnersOnly(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 1, config: `[dist_test]
accounts = {"alice": "a-pw", "bob": "b-pw", "carol": "c-pw"}
[master]
owners_only = true
admins = carol
`, env: []string{"PIDDIR=" + sharedDir(t)}})
	c.writeInputs(scripts)
	hash := c.archive("sleep", "ARG=s") // by the loopback address, allowed
	job := c.writeJob("job.json", []jobTask{{IsolateHash: hash, Description: "sleep", Timeout: 600}})
	if code, _, stderr := c.runWith(noLogin, "submit", "--no-wait", "-n", "anon", job); code != 0 {
		t.Errorf("submit from an allowed address: exit %d\n%s", code, stderr)
	}
	code, _, stderr := c.runWith(login("alice", "a-pw"), "submit", "--no-wait", job)
	if code != 0 {
		t.Fatalf("submit as alice: exit %d\n%s", code, stderr)
	}
	id := lastJob(t, c)
	for _, who := range [][]string{login("bob", "b-pw"), noLogin} {
		code, _, stderr := c.runWith(who, "cancel", id)
		if code != 1 || !strings.Contains(stderr, `the job's owner ("alice")`) {
			t.Errorf("cancel by %v: exit %d\n%s", who, code, stderr)
		}
	}
	var j protocol.Job
	if c.get("/api/v1/jobs/"+id, &j); j.Canceled {
		t.Fatal("someone else canceled alice's job")
	}
	if code, _, stderr := c.runWith(login("carol", "c-pw"), "cancel", id); code != 0 {
		t.Errorf("cancel by the admin: exit %d\n%s", code, stderr)
	}
	if c.get("/api/v1/jobs/"+id, &j); !j.Canceled {
		t.Error("the admin's cancel did not cancel")
	}
}

// With read_auth, nothing is read without an account; the slave still
// reads its inputs; logs are fetched through signed links that work for
// whoever holds them until they expire, and not altered or unsigned.
func TestReadAuth(t *testing.T) {
	c := newClusterWith(t, clusterOptions{slots: 2, config: `[dist_test]
allowed_ip_ranges = 10.255.0.0/16
accounts = {"alice": "a-pw"}
[master]
read_auth = true
[aws]
link_ttl = 3s
`})
	c.env = append(c.env, login("alice", "a-pw")...)
	c.writeInputs(scripts)
	fail := c.archive("fail", "ARG=r")
	code, stdout, stderr := c.run("submit", c.writeJob("job.json", []jobTask{{IsolateHash: fail, Description: "fail", Timeout: 60}}))
	if code != 88 {
		t.Fatalf("submit: exit %d\n%s\n%s\n%s", code, stdout, stderr, c.log)
	}
	id := strings.TrimPrefix(lastLine(stdout), "job_id=")
	for _, p := range []string{"/job_status?job_id=" + id, "/tasks?job_id=" + id, "/", "/job?job_id=" + id, "/api/v1/jobs/" + id} {
		if status, _, _ := httpDo(t, c.url, httpclient.Credentials{}, "", "GET", p, "", "", nil); status != 401 {
			t.Errorf("anonymous GET %s with read_auth: %d; want 401", p, status)
		}
	}
	if code, _, stderr := c.runWith(noLogin, "status", id); code != 1 || !strings.Contains(stderr, "DIST_TEST_USER") {
		t.Errorf("status without credentials: exit %d\n%s", code, stderr)
	}
	results := filepath.Join(c.dir, "results")
	if code, _, stderr := c.run("fetch", "-l", "-d", results, id); code != 0 {
		t.Fatalf("fetch: exit %d\n%s", code, stderr)
	}
	files, _ := filepath.Glob(filepath.Join(results, "*.stdout"))
	if len(files) != 1 {
		t.Fatalf("fetched %v", files)
	}
	if b, _ := os.ReadFile(files[0]); string(b) != "stdout of failure r\n" {
		t.Errorf("fetched log %q", b)
	}

	_, body, _ := httpDo(t, c.url, httpclient.Credentials{User: "alice", Password: "a-pw"}, "", "GET", "/tasks?job_id="+id, "", "", nil)
	var tasks []map[string]any
	if err := json.Unmarshal([]byte(body), &tasks); err != nil || len(tasks) != 1 {
		t.Fatalf("tasks: %s", body)
	}
	link, _ := tasks[0]["stdout_link"].(string)
	get := func(l string) (int, string) {
		resp, err := http.Get(l)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, got := get(link); code != 200 || got != "stdout of failure r\n" {
		t.Errorf("signed link, no login: %d %q", code, got)
	}
	u, _ := url.Parse(link)
	q := u.Query()
	q.Set("sig", strings.Repeat("x", len(q.Get("sig"))))
	tampered := *u
	tampered.RawQuery = q.Encode()
	if code, got := get(tampered.String()); code != 403 || strings.Contains(got, "failure") {
		t.Errorf("tampered link: %d %q; want 403", code, got)
	}
	if code, _ := get(c.url + u.Path); code != 401 {
		t.Errorf("unsigned link: %d; want 401", code)
	}
	time.Sleep(4 * time.Second) // link_ttl = 3s
	if code, got := get(link); code != 403 || strings.Contains(got, "failure") {
		t.Errorf("expired link: %d %q; want 403", code, got)
	}
}

// A browser on another site cannot cancel or submit: GET /cancel_job
// marked cross-site and cross-origin form posts are refused, while the same
// requests without browser headers (curl, the Python client) still work.
func TestCrossSiteRequests(t *testing.T) {
	c := newCluster(t, 1, "PIDDIR="+sharedDir(t))
	c.writeInputs(scripts)
	hash := c.archive("sleep", "ARG=x")
	code, _, stderr := c.run("submit", "--no-wait", c.writeJob("job.json", []jobTask{{IsolateHash: hash, Description: "sleep", Timeout: 600}}))
	if code != 0 {
		t.Fatalf("submit: exit %d\n%s", code, stderr)
	}
	id := lastJob(t, c)
	none := httpclient.Credentials{}
	browser := http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}
	if status, body, _ := httpDo(t, c.url, none, "", "GET", "/cancel_job?job_id="+url.QueryEscape(id), "", "", browser); status != 403 {
		t.Errorf("cross-site GET /cancel_job: %d %s; want 403", status, body)
	}
	form := url.Values{"job_id": {"evil.1"}, "job_json": {`{"tasks": [{"isolate_hash": "` + hash + `", "description": "x"}]}`}}.Encode()
	if status, body, _ := httpDo(t, c.url, none, "", "POST", "/submit_job", "application/x-www-form-urlencoded", form, browser); status != 403 {
		t.Errorf("cross-site form post: %d %s; want 403", status, body)
	}
	var j protocol.Job
	if c.get("/api/v1/jobs/"+id, &j); j.Canceled {
		t.Fatal("a cross-site GET canceled the job")
	}
	if status, body, _ := httpDo(t, c.url, none, "", "GET", "/cancel_job?job_id="+url.QueryEscape(id), "", "", nil); status != 200 {
		t.Errorf("GET /cancel_job without browser headers: %d %s", status, body)
	}
	if c.get("/api/v1/jobs/"+id, &j); !j.Canceled {
		t.Error("GET /cancel_job without browser headers did not cancel")
	}
}

// writeCerts makes a private CA and a certificate for 127.0.0.1 signed by
// it; it returns the files of the CA, the certificate and its key.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dist_test test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("cert.pem", "CERTIFICATE", srvDER), write("key.pem", "EC PRIVATE KEY", keyDER)
}

// A master, an isolate server and a slave process over https with a
// private CA: the slave logs in with a slave account (Digest), reads need
// an account on both servers, clients trust the CA through [dist_test]
// ca_file and refuse the server without it; a job runs (the master asks the
// isolate server with the slave's account, the slave fetches its inputs
// with it) and its logs are fetched through signed links; the original
// client's handshake works over https too.
func TestSecureMasterAndSlave(t *testing.T) {
	dir := t.TempDir()
	ca, cert, key := writeCerts(t, dir)
	bs, tube := testenv.Beanstalk(t)
	cnf := filepath.Join(dir, "dist_test.cnf")
	err := os.WriteFile(cnf, []byte(fmt.Sprintf(`[dist_test]
allowed_ip_ranges = 10.255.0.0/16
accounts = {%s}
ca_file = %s
[isolate]
server = http://placeholder
tls_cert = %s
tls_key = %s
[master]
read_auth = true
slave_accounts = {%s}
tls_cert = %s
tls_key = %s
heartbeat_interval = 1s
heartbeat_timeout = 3s
[beanstalk]
host = %s
tube = %s
[slave]
user = s1
password = slave-secret
kill_grace = 1s
`, passwd(t, "alice", "a-pw"), ca, cert, key, passwd(t, "s1", "slave-secret"), cert, key, bs, tube)), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DIST_TEST_CNF="+cnf)
	iso := startProc(t, "isolate-server", env, true, "isolate-server", "--data-dir", filepath.Join(dir, "isolate"))
	if !strings.HasPrefix(iso.url, "https://") {
		t.Fatalf("isolate server serves %s; want https", iso.url)
	}
	b, _ := os.ReadFile(cnf)
	if err := os.WriteFile(cnf, bytes.Replace(b, []byte("http://placeholder"), []byte(iso.url), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	digest := "/api/v1/cas/0123456789abcdef0123456789abcdef01234567"
	for _, method := range []string{"GET", "PUT"} {
		if status, body, _ := httpDo(t, iso.url, httpclient.Credentials{}, ca, method, digest, "", "x", nil); status != 401 {
			t.Errorf("anonymous %s on the isolate server with read_auth: %d %s; want 401", method, status, body)
		}
	}
	if status, body, _ := httpDo(t, iso.url, httpclient.Credentials{User: "s1", Password: "slave-secret"}, ca, "PUT", digest, "", "x", nil); status != 403 {
		t.Errorf("a slave's upload to the isolate server: %d %s; want 403", status, body)
	}
	master := startProc(t, "master", env, true, "master", "--data-dir", filepath.Join(dir, "master"))
	if !strings.HasPrefix(master.url, "https://") {
		t.Fatalf("master serves %s; want https", master.url)
	}
	startProc(t, "slave", env, false, "slave", "--master", master.url, "--slots", "2", "--scratch-dir", filepath.Join(dir, "scratch"))
	c := &cluster{t: t, dir: dir, url: master.url, env: append(env, "DIST_TEST_MASTER="+master.url, "ISOLATE_SERVER="+iso.url,
		"DIST_TEST_JOB_PATH="+filepath.Join(dir, "last-job"), "DIST_TEST_USER=alice", "DIST_TEST_PASSWORD=a-pw")}
	alice := httpclient.Credentials{User: "alice", Password: "a-pw"}
	waitFor(t, 20*time.Second, "the slave to register", func() bool {
		_, body, _ := httpDo(t, master.url, alice, ca, "GET", "/api/v1/slaves?alive=1", "", "", nil)
		var l protocol.SlaveList
		return json.Unmarshal([]byte(body), &l) == nil && len(l.Slaves) == 1
	})

	// A client that does not trust the CA refuses the master.
	untrusting := filepath.Join(dir, "untrusting.cnf")
	if err := os.WriteFile(untrusting, []byte("[dist_test]\nurl_timeout = 5s\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := c.runWith([]string{"DIST_TEST_CNF=" + untrusting}, "jobs"); code != 1 || !strings.Contains(stderr, "certificate") {
		t.Errorf("a client that does not trust the CA: exit %d\n%s", code, stderr)
	}
	c.writeInputs(scripts)
	pass, fail := c.archive("pass", "ARG=p"), c.archive("fail", "ARG=s")
	code, stdout, stderr := c.run("submit", "-l", "-d", filepath.Join(dir, "results"),
		c.writeJob("job.json", []jobTask{{IsolateHash: pass, Description: "pass", Timeout: 60}, {IsolateHash: fail, Description: "fail", Timeout: 60}}))
	if code != 88 {
		t.Fatalf("submit: exit %d\n%s\n%s\nmaster: %s", code, stdout, stderr, master.log)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "results", "*.stderr"))
	if len(logs) != 1 {
		t.Fatalf("fetched stderr logs %v", logs)
	}
	if b, _ := os.ReadFile(logs[0]); !bytes.Equal(b, []byte("stderr of failure s\n")) {
		t.Errorf("fetched %q", b)
	}
	jobJSON := `{"tasks": [{"isolate_hash": "` + pass + `", "description": "py"}]}`
	if code, out := pythonSubmit(t, master.url, "alice", "a-pw", "py.tls", jobJSON, ca); code != 0 || !strings.Contains(out, "SUCCESS") {
		t.Errorf("python submit over https: exit %d %s", code, out)
	}
}
