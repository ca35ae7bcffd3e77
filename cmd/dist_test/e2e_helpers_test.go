package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/testlog"
	"github.com/dist-test/dist_test/slave/process"
)

// binary is the dist_test binary built once for the end-to-end tests.
var binary string

// raceBuild is set when the tests run with -race (race_test.go).
var raceBuild bool

func TestMain(m *testing.M) {
	// BenchmarkProfile's slave starts this test binary as its tasks' init.
	process.MaybeInit()
	dir, err := os.MkdirTemp("", "dist_test-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "dist_test")
	// A slave that does not run as root runs it too.
	if err := os.Chmod(dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", binary}
	if raceBuild {
		args = append(args, "-race")
		// A race ends the process at once, with exit code 66, which the
		// tests see.
		os.Setenv("GORACE", "halt_on_error=1")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building dist_test:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cluster is a `dist_test local` process and the environment to talk to it.
type cluster struct {
	t       testing.TB
	dir     string // the test's folder
	dataDir string
	url     string
	env     []string
	cmd     *exec.Cmd
	log     *testlog.Buffer
	extra   []string      // more environment for the local process
	user    *process.User // runs the local process, when not root
}

// config is the configuration file both the local process and the client
// commands read: short heartbeats and kill grace keep the tests quick. The
// tests' tasks find their shared folders (see sharedDir) through the
// variables of task_env.
const testConfig = `[master]
heartbeat_interval = 1s
heartbeat_timeout = 3s
max_runs = 2
[slave]
kill_grace = 1s
` + testTaskEnv

// testTaskEnv passes the variables of the tests' shared folders on to tasks.
const testTaskEnv = "task_env = PIDDIR, RUNLOG, MARK\n"

// sharedDir is a folder that the tasks of every slot may write to, and
// the test may read: the test's own temporary folders are root's alone,
// and tasks run as other users.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(reachableDir(t), "shared")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// reachableDir is a new temporary folder that any user may pass through
// (but not list), as may the folders above it.
func reachableDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != filepath.Dir(d); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func newCluster(t testing.TB, slots int, extraEnv ...string) *cluster {
	t.Helper()
	return newClusterWith(t, clusterOptions{slots: slots, env: extraEnv})
}

// clusterOptions shape a `dist_test local` cluster.
type clusterOptions struct {
	slots  int
	env    []string // more environment for the local process
	config string   // appended to the configuration file
	// reachable puts the test's folder, and the data folder in it, under
	// folders that every user may pass: only dist_test's own modes then
	// keep tasks out of the data folder.
	reachable bool
	// user runs the local process as that user rather than as root.
	user *process.User
}

func newClusterWith(t testing.TB, o clusterOptions) *cluster {
	t.Helper()
	dir := t.TempDir()
	if o.reachable || o.user != nil {
		dir = reachableDir(t)
	}
	if o.user != nil {
		if err := os.Chown(dir, int(o.user.UID), int(o.user.GID)); err != nil {
			t.Fatal(err)
		}
	}
	c := &cluster{t: t, dir: dir, dataDir: filepath.Join(dir, "data"), extra: o.env, user: o.user}
	cnf := filepath.Join(dir, "dist_test.cnf")
	if err := os.WriteFile(cnf, []byte(testConfig+o.config), 0o644); err != nil {
		t.Fatal(err)
	}
	c.env = append(os.Environ(), "DIST_TEST_CNF="+cnf, "DIST_TEST_JOB_PATH="+filepath.Join(dir, "last-job"))
	c.start(o.slots)
	t.Cleanup(func() { c.stop() })
	return c
}

// start runs `dist_test local` and waits until it serves.
func (c *cluster) start(slots int) {
	c.t.Helper()
	urlFile := filepath.Join(c.dir, "url")
	os.Remove(urlFile)
	c.log = &testlog.Buffer{}
	c.cmd = exec.Command(binary, "local", "--listen", "127.0.0.1:0", "--url-file", urlFile,
		"--data-dir", c.dataDir, "--slaves", fmt.Sprint(slots))
	c.cmd.Env = append(append([]string{}, c.env...), c.extra...)
	if c.user != nil {
		c.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: c.user.UID, Gid: c.user.GID, Groups: []uint32{}}}
		c.cmd.Env = append(c.cmd.Env, "HOME="+c.dir)
	}
	c.cmd.Stdout, c.cmd.Stderr = c.log, c.log
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(urlFile)
		if err == nil && len(b) > 0 {
			c.url = strings.TrimSpace(string(b))
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("dist_test local did not start:\n%s", c.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.env = append(c.env, "DIST_TEST_MASTER="+c.url, "ISOLATE_SERVER="+c.url)
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			c.t.Errorf("dist_test local exited with %v:\n%s", err, c.log)
		}
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
		c.t.Errorf("dist_test local did not stop within 20 s of SIGTERM:\n%s", c.log)
	}
	c.cmd = nil
}

// run runs a dist_test command and returns its exit code, stdout and stderr.
func (c *cluster) run(args ...string) (int, string, string) {
	c.t.Helper()
	return c.runIn(c.dir, args...)
}

// runIn runs a dist_test command of the cluster in dir.
func (c *cluster) runIn(dir string, args ...string) (int, string, string) {
	c.t.Helper()
	cmd := exec.Command(binary, args...)
	cmd.Env = c.env
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &exit):
		return exit.ExitCode(), out.String(), errb.String()
	}
	c.t.Fatalf("running dist_test %v: %v", args, err)
	return -1, "", ""
}

// archive writes an .isolate file for a shell script and archives it with
// the given variables; it returns the manifest's hash.
func (c *cluster) archive(script string, vars ...string) string {
	c.t.Helper()
	args := []string{"isolate", "archive", "--isolate", filepath.Join(c.dir, "inputs", "task.isolate")}
	for _, v := range vars {
		args = append(args, "--extra-variable", v)
	}
	args = append(args, "--extra-variable", "SCRIPT="+script)
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("isolate archive: exit %d\n%s", code, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	return lines[len(lines)-1]
}

// writeInputs writes the task scripts and the .isolate file that runs one
// of them: bash scripts/<(SCRIPT).sh <(ARG).
func (c *cluster) writeInputs(scripts map[string]string) {
	c.t.Helper()
	dir := filepath.Join(c.dir, "inputs")
	if err := os.MkdirAll(filepath.Join(dir, "scripts"), 0o755); err != nil {
		c.t.Fatal(err)
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(dir, "scripts", name+".sh"), []byte(body), 0o755); err != nil {
			c.t.Fatal(err)
		}
	}
	isolate := `{'variables': {'command': ['bash', 'scripts/<(SCRIPT).sh', '<(ARG)'], 'files': ['scripts/']}}`
	if err := os.WriteFile(filepath.Join(dir, "task.isolate"), []byte(isolate), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// get fetches a JSON document from the master.
func (c *cluster) get(path string, v any) {
	c.t.Helper()
	resp, err := http.Get(c.url + path)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		c.t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		c.t.Fatalf("GET %s: %v in %s", path, err, body)
	}
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// job is one task of a job file.
type jobTask struct {
	IsolateHash string   `json:"isolate_hash"`
	Description string   `json:"description"`
	Timeout     float64  `json:"timeout,omitempty"`
	MaxRetries  int      `json:"max_retries,omitempty"`
	Globs       []string `json:"artifact_archive_globs,omitempty"`
	DockerImage string   `json:"docker_image,omitempty"`
}

func (c *cluster) writeJob(name string, tasks []jobTask) string {
	c.t.Helper()
	b, err := json.Marshal(map[string]any{"tasks": tasks})
	if err != nil {
		c.t.Fatal(err)
	}
	p := filepath.Join(c.dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	// A zombie (killed, not yet collected by its parent) is gone too.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z"
}
