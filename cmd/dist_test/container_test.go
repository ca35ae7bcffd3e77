package main

// Tasks that name a docker_image, run by a real runtime: Debian's podman
// with runc. There is no registry here: the image is made with podman
// import from a tarball of busybox and a marker file. The sandbox these
// tests run in forbids changing the containers' ulimits and pids limit, so
// they run podman with a containers.conf that leaves both alone.

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// testImage is the image the container tests' tasks run in; it holds
// busybox and /marker.
const testImage = "localhost/dist_test-e2e-busybox:1"

const imageMarker = "dist_test image marker\n"

// podmanRuntime is [slave] container_runtime for the tests.
const podmanRuntime = "podman --runtime runc"

var (
	podmanOnce sync.Once
	podmanConf string // the containers.conf of the tests
	podmanErr  error
)

// needPodman makes the test image once and returns the environment the
// runtime needs. Without podman, runc or busybox the test is skipped, or
// fails under CI=true, where every test must run.
func needPodman(t *testing.T) []string {
	t.Helper()
	for _, bin := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			missingTool(t, bin+" (apt-get install podman runc busybox-static)")
		}
	}
	podmanOnce.Do(func() { podmanConf, podmanErr = makeTestImage() })
	if podmanErr != nil {
		t.Fatalf("making the test image: %v", podmanErr)
	}
	return []string{"CONTAINERS_CONF=" + podmanConf}
}

func missingTool(t *testing.T, what string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is needed for the container tests", what)
	}
	t.Skipf("no %s", what)
}

// makeTestImage imports testImage into podman's store and returns the
// containers.conf to run it with.
func makeTestImage() (string, error) {
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		return "", fmt.Errorf("busybox-static is not installed: %w", err)
	}
	dir, err := os.MkdirTemp("", "dist_test-podman-")
	if err != nil {
		return "", err
	}
	conf := filepath.Join(dir, "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\npids_limit = 0\n"), 0o644); err != nil {
		return "", err
	}
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	add := func(h *tar.Header, body []byte) {
		h.Size = int64(len(body))
		_ = tw.WriteHeader(h)
		_, _ = tw.Write(body)
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil)
	add(&tar.Header{Name: "bin/busybox", Mode: 0o755}, bin)
	for _, applet := range []string{"sh", "cat", "ls", "id", "echo", "sleep", "mkdir", "env", "pwd", "sort"} {
		add(&tar.Header{Name: "bin/" + applet, Typeflag: tar.TypeSymlink, Linkname: "busybox"}, nil)
	}
	add(&tar.Header{Name: "marker", Mode: 0o644}, []byte(imageMarker))
	if err := tw.Close(); err != nil {
		return "", err
	}
	tarball := filepath.Join(dir, "image.tar")
	if err := os.WriteFile(tarball, b.Bytes(), 0o644); err != nil {
		return "", err
	}
	cmd := exec.Command("podman", "--runtime", "runc", "import", "--change", "ENV=PATH=/bin", tarball, testImage)
	cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("podman import: %v\n%s", err, out)
	}
	return conf, nil
}

// podman runs a podman command as the slave would, and returns its output.
func podman(t *testing.T, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command("podman", append([]string{"--runtime", "runc"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("podman %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// containersOf lists the containers of dist_test's runs, running or not.
func containersOf(t *testing.T, env []string) []string {
	return strings.Fields(podman(t, env, "ps", "-a", "--filter", "name=^dist_test-", "--format", "{{.Names}}"))
}

// writeShInputs is writeInputs for images without bash: sh runs the
// scripts.
func (c *cluster) writeShInputs(scripts map[string]string) {
	c.t.Helper()
	c.writeInputs(scripts)
	isolate := `{'variables': {'command': ['sh', 'scripts/<(SCRIPT).sh', '<(ARG)'], 'files': ['scripts/']}}`
	if err := os.WriteFile(filepath.Join(c.dir, "inputs", "task.isolate"), []byte(isolate), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

func attemptOf(t *testing.T, all []protocol.Attempt, desc string) protocol.Attempt {
	t.Helper()
	for _, a := range all {
		if a.Description == desc && a.Attempt == 0 {
			return a
		}
	}
	t.Fatalf("no attempt of %s in %+v", desc, all)
	return protocol.Attempt{}
}

// A task in a container sees the image and its inputs under /isolate-dir,
// runs as its slot's user, and ends as it would on the host: its exit code,
// logs, artifacts and timeout note; a timed-out container is gone.
func TestContainerTask(t *testing.T) {
	env := needPodman(t)
	c := newClusterWith(t, clusterOptions{slots: 2, env: env, config: "container_runtime = " + podmanRuntime + "\n"})
	c.writeShInputs(map[string]string{
		"look": `cat /marker; echo "uid=$(id -u) gid=$(id -g) user=$USER"; echo "pwd=$(pwd)"; ls /isolate-dir/scripts
echo "home=$HOME tmp=$TEST_TMPDIR run=$DIST_TEST_RUN"
echo to-stderr >&2; mkdir -p out; echo "artifact $1" > out/a.txt; exit 3` + "\n",
		"pass":  "echo fine\n",
		"sleep": "echo sleeping; sleep 60\n",
	})
	job := c.submitNoWait("c.json", []jobTask{
		{IsolateHash: c.archive("look", "ARG=x"), Description: "look", DockerImage: testImage, Globs: []string{"out/*"}},
		{IsolateHash: c.archive("pass", "ARG=x"), Description: "pass", DockerImage: testImage},
		{IsolateHash: c.archive("pass", "ARG=x"), Description: "pass-on-host"},
		{IsolateHash: c.archive("sleep", "ARG=x"), Description: "sleep", DockerImage: testImage, Timeout: 2},
	})
	all := c.waitJob(job, 2*time.Minute)
	look := attemptOf(t, all, "look")
	if look.State != "failed" || look.ExitCode == nil || *look.ExitCode != 3 || look.Runs != 1 {
		t.Errorf("look: %s exit %v after %d runs (%s); want failed with exit 3", look.State, look.ExitCode, look.Runs, look.Error)
	}
	if look.DockerImage != testImage {
		t.Errorf("look: docker_image %q in the API, want %q", look.DockerImage, testImage)
	}
	if look.ImagePullSeconds <= 0 {
		t.Errorf("look: image_pull_s = %v, want the time taken to find the image", look.ImagePullSeconds)
	}
	out := c.fetchLog(job, "look", "stdout")
	for _, want := range []string{imageMarker, "pwd=/isolate-dir\n", "look.sh\n", "home=/isolate-dir/test-tmp tmp=/isolate-dir/test-tmp run="} {
		if !strings.Contains(out, want) {
			t.Errorf("look: stdout lacks %q:\n%s", want, out)
		}
	}
	if os.Geteuid() == 0 {
		var name, uid string
		for _, f := range strings.Fields(out) {
			if v, ok := strings.CutPrefix(f, "user="); ok {
				name = v
			}
			if v, ok := strings.CutPrefix(f, "uid="); ok {
				uid = v
			}
		}
		u, err := user.Lookup(name)
		if err != nil || !strings.HasPrefix(name, "dist_test-slot-") || u.Uid != uid || uid == "0" {
			t.Errorf("look ran as uid %s, user %q (%v); want the slot's user's uid", uid, name, err)
		}
	}
	if errs := c.fetchLog(job, "look", "stderr"); errs != "to-stderr\n" {
		t.Errorf("look: stderr %q, want the task's own", errs)
	}
	results := t.TempDir()
	if code, _, stderr := c.run("fetch", "-a", "-d", results, job); code != 0 {
		t.Fatalf("fetch: %s", stderr)
	}
	arts, _ := filepath.Glob(filepath.Join(results, "*look", "out", "a.txt"))
	if len(arts) != 1 {
		t.Errorf("artifacts: %v", arts)
	} else if b, _ := os.ReadFile(arts[0]); string(b) != "artifact x\n" {
		t.Errorf("artifact %q", b)
	}
	pass, host := attemptOf(t, all, "pass"), attemptOf(t, all, "pass-on-host")
	if pass.State != "passed" || *pass.ExitCode != 0 || host.State != "passed" {
		t.Errorf("pass: %s exit %v (%s); on the host: %s", pass.State, pass.ExitCode, pass.Error, host.State)
	}
	if pass.Inputs.HotItems+pass.Inputs.ColdItems != host.Inputs.HotItems+host.Inputs.ColdItems || pass.Inputs.HotItems+pass.Inputs.ColdItems == 0 {
		t.Errorf("input figures in a container %+v, on the host %+v: want the same items", pass.Inputs, host.Inputs)
	}
	t.Logf("a task that prints a line: %.3f s in a container (image found in %.3f s before), %.3f s on the host",
		pass.DurationSeconds, pass.ImagePullSeconds, host.DurationSeconds)
	sleep := attemptOf(t, all, "sleep")
	if sleep.State != "timed_out" {
		t.Errorf("sleep: %s, want timed_out (%s)", sleep.State, sleep.Error)
	}
	if errs := c.fetchLog(job, "sleep", "stderr"); !strings.HasSuffix(errs, "\n------\nKilling task after 2 seconds\n") {
		t.Errorf("sleep: stderr %q lacks the timeout note", errs)
	}
	if left := containersOf(t, env); len(left) > 0 {
		t.Errorf("containers left after the job: %v", left)
	}
}

// A container gets the network and limits of the [slave] settings, and
// canceling its job kills it.
func TestContainerCancel(t *testing.T) {
	env := needPodman(t)
	c := newClusterWith(t, clusterOptions{slots: 1, env: env, config: "container_runtime = " + podmanRuntime +
		"\ntask_network = none\ntask_memory = 64MiB\ntask_cpus = 0.5\n"})
	c.writeShInputs(map[string]string{"sleep": "echo sleeping; sleep 300\n"})
	job := c.submitNoWait("c.json", []jobTask{{IsolateHash: c.archive("sleep", "ARG=x"), Description: "sleep", DockerImage: testImage}})
	waitFor(t, time.Minute, "the task's container", func() bool { return len(containersOf(t, env)) == 1 })
	name := containersOf(t, env)[0]
	got := strings.TrimSpace(podman(t, env, "inspect", "--format", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.NetworkMode}}", name))
	if got != "67108864 500000000 none" {
		t.Errorf("container %s: memory, CPUs and network %q; want 67108864 500000000 none", name, got)
	}
	if code, _, stderr := c.run("cancel", job); code != 0 {
		t.Fatalf("cancel: %d %s", code, stderr)
	}
	waitFor(t, 30*time.Second, "the container to be gone", func() bool { return len(containersOf(t, env)) == 0 })
	all := c.waitJob(job, time.Minute)
	if a := attemptOf(t, all, "sleep"); a.State != "canceled" {
		t.Errorf("sleep: %s, want canceled", a.State)
	}
}

// An image the runtime cannot find is an infrastructure failure with the
// runtime's message, tried again; an image [slave] allowed_images refuses
// fails its task at once, and so does a name that is not an image.
func TestContainerImageProblems(t *testing.T) {
	env := needPodman(t)
	c := newClusterWith(t, clusterOptions{slots: 2, env: env,
		config: "container_runtime = " + podmanRuntime + "\nallowed_images = localhost/dist_test-e2e-*\n"})
	c.writeShInputs(map[string]string{"pass": "echo fine\n"})
	hash := c.archive("pass", "ARG=x")
	job := c.submitNoWait("c.json", []jobTask{
		{IsolateHash: hash, Description: "unknown", DockerImage: "localhost/dist_test-e2e-none:1"},
		{IsolateHash: hash, Description: "refused", DockerImage: "docker.io/library/debian:12"},
	})
	all := c.waitJob(job, 2*time.Minute)
	unknown := attemptOf(t, all, "unknown")
	if unknown.State != "infra_failed" || unknown.Runs != 2 || !strings.Contains(unknown.Error, "pulling image localhost/dist_test-e2e-none:1") ||
		!strings.Contains(unknown.Error, "Error: ") {
		t.Errorf("unknown image: %s after %d runs, error %q; want infra_failed after 2 runs with podman's message", unknown.State, unknown.Runs, unknown.Error)
	}
	refused := attemptOf(t, all, "refused")
	if refused.State != "failed" || refused.Runs != 1 || !strings.Contains(refused.Error, `docker_image "docker.io/library/debian:12" is not allowed`) {
		t.Errorf("refused image: %s after %d runs, error %q; want failed at once, saying why", refused.State, refused.Runs, refused.Error)
	}
	if errs := c.fetchLog(job, "refused", "stderr"); !strings.Contains(errs, "allowed_images") {
		t.Errorf("refused image: stderr %q does not say why", errs)
	}
}

// A slave whose container runtime is missing says so at start, and never
// runs a container task on the host: the task ends as an infrastructure
// failure that names the runtime.
func TestContainerRuntimeMissing(t *testing.T) {
	shared := sharedDir(t)
	c := newClusterWith(t, clusterOptions{slots: 1, env: []string{"MARK=" + shared},
		config: "container_runtime = /nonexistent/docker --flag\n"})
	c.writeInputs(map[string]string{"mark": `touch "$MARK/ran-on-the-host"` + "\n"})
	job := c.submitNoWait("c.json", []jobTask{{IsolateHash: c.archive("mark", "ARG=x"), Description: "mark", DockerImage: testImage}})
	all := c.waitJob(job, time.Minute)
	a := attemptOf(t, all, "mark")
	if a.State != "infra_failed" || !strings.Contains(a.Error, `container runtime "/nonexistent/docker" is not installed`) {
		t.Errorf("mark: %s, error %q; want infra_failed naming the runtime", a.State, a.Error)
	}
	if _, err := os.Stat(filepath.Join(shared, "ran-on-the-host")); err == nil {
		t.Error("the task ran on the host")
	}
	if log := c.log.String(); strings.Count(log, "tasks that name a docker_image cannot run here") != 1 {
		t.Errorf("the slave did not say once at start that it lacks the runtime:\n%s", log)
	}
}

// A slave killed without warning leaves its task's container running; the
// next slave on its scratch folder kills it at start.
func TestContainerLeftByKilledSlave(t *testing.T) {
	env := needPodman(t)
	c := newClusterWith(t, clusterOptions{slots: 1, env: env, config: "container_runtime = " + podmanRuntime + "\n"})
	c.writeShInputs(map[string]string{"sleep": "echo sleeping; sleep 300\n"})
	c.submitNoWait("c.json", []jobTask{{IsolateHash: c.archive("sleep", "ARG=x"), Description: "sleep", DockerImage: testImage}})
	waitFor(t, time.Minute, "the task's container", func() bool { return len(containersOf(t, env)) == 1 })
	old := containersOf(t, env)[0]
	t.Cleanup(func() { _ = exec.Command("podman", "--runtime", "runc", "rm", "-f", "-t", "0", old).Run() })
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
	c.cmd = nil
	time.Sleep(time.Second)
	if left := containersOf(t, env); !slices.Contains(left, old) {
		t.Fatalf("containers %v after the kill: the test needs %s left running", left, old)
	}
	c.start(1)
	waitFor(t, time.Minute, "the old container to be gone", func() bool { return !slices.Contains(containersOf(t, env), old) })
	if log := c.log.String(); !strings.Contains(log, "killing a container a previous slave on this scratch folder left running") {
		t.Errorf("the slave did not say it killed the container:\n%s", log)
	}
}
