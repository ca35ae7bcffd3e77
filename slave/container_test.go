package slave

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/slave/process"
	"github.com/dist-test/dist_test/slave/taskuser"
)

func TestAllowedImages(t *testing.T) {
	c := ContainerConfig{AllowedImages: []string{"registry.example.com/ci/*", "debian:1?", "busybox"}}
	for image, want := range map[string]bool{
		"registry.example.com/ci/debian:12":          true,
		"registry.example.com/ci/team/x:1":           true, // * takes slashes too
		"registry.example.com/other/debian:12":       false,
		"evil.example.com/registry.example.com/ci/x": false,
		"debian:12":      true,
		"debian:123":     false,
		"busybox":        true,
		"busybox:latest": false,
		"busyboxx":       false,
	} {
		if got := c.allowed(image); got != want {
			t.Errorf("allowed(%q) = %v, want %v", image, got, want)
		}
	}
	if !(ContainerConfig{}).allowed("anything/at:all") {
		t.Error("no allowed_images refuses an image; want any allowed")
	}
	// Regular expression syntax in a glob is literal.
	if (ContainerConfig{AllowedImages: []string{"a.b(c)+"}}).allowed("aXb(c)") {
		t.Error("a . in a glob matched another character")
	}
}

func TestContainerConfigCheck(t *testing.T) {
	good := ContainerConfig{}.withDefaults()
	if err := good.check(); err != nil || good.Network != "host" || !slices.Equal(good.Runtime, []string{"docker"}) {
		t.Errorf("defaults %+v: %v", good, err)
	}
	for _, bad := range []ContainerConfig{
		{Runtime: []string{""}, Network: "host"},
		{Runtime: []string{"docker"}, Network: "--privileged"},
		{Runtime: []string{"docker"}, Network: "a b"},
		{Runtime: []string{"docker"}, Network: "host", Memory: -1},
		{Runtime: []string{"docker"}, Network: "host", CPUs: -0.5},
	} {
		if err := bad.check(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}

// The runtime's command line: the sandbox at /isolate-dir, the working
// folder, the slot's uid, the network and limits, the environment given
// explicitly, the image, then the task's command untouched.
func TestContainerArgs(t *testing.T) {
	s := &Slave{cfg: Config{Containers: ContainerConfig{Runtime: []string{"podman", "--runtime", "runc"},
		Network: "none", Memory: 1 << 30, CPUs: 1.5}}}
	u := &taskuser.User{Name: "dist_test-slot-1", User: process.User{UID: 3001, GID: 3002}}
	a := &attempt{dir: "/scratch/task-1", sandbox: "/scratch/task-1/sandbox", user: u}
	got := s.containerArgs(a, "debian:12", "dist_test-run", "sub/dir", "/scratch/task-1/container-id",
		[]string{"HOME=/isolate-dir/test-tmp", "X=a b"}, []string{"--rm", "-v", "$HOME"})
	want := []string{"podman", "--runtime", "runc", "run", "--rm", "--pull=never", "--name", "dist_test-run",
		"--cidfile", "/scratch/task-1/container-id", "--user", "3001:3002", "--security-opt", "no-new-privileges",
		"--volume", "/scratch/task-1/sandbox:/isolate-dir", "--workdir", "/isolate-dir/sub/dir", "--network", "none",
		"--memory", "1073741824", "--cpus", "1.5", "--env", "HOME=/isolate-dir/test-tmp", "--env", "X=a b",
		"debian:12", "--rm", "-v", "$HOME"}
	if !slices.Equal(got, want) {
		t.Errorf("args\n got %q\nwant %q", got, want)
	}
	// Without slot users, the container runs as the slave's own uid.
	a.user = nil
	s.cfg.Containers.Memory, s.cfg.Containers.CPUs = 0, 0
	got = s.containerArgs(a, "debian:12", "n", "", "c", nil, []string{"true"})
	if i := slices.Index(got, "--user"); i < 0 || got[i+1] != strconv.Itoa(os.Getuid())+":"+strconv.Itoa(os.Getgid()) {
		t.Errorf("args %q: want the slave's uid", got)
	}
	if slices.Contains(got, "--memory") || slices.Contains(got, "--cpus") || !slices.Contains(got, "/isolate-dir") {
		t.Errorf("args %q: want no limits, working folder /isolate-dir", got)
	}
}

func TestRuntimeMessage(t *testing.T) {
	stderr := "time=... level=warning msg=\"retrying 1/3\"\nw2\nw3\nw4\nError: initializing source: connection refused\n"
	if got := runtimeMessage([]byte(stderr), errors.New("exit status 125")); !strings.HasSuffix(got, "Error: initializing source: connection refused") ||
		strings.Contains(got, "retrying") {
		t.Errorf("message %q: want the last lines", got)
	}
	if got := runtimeMessage(nil, errors.New("exit status 125")); got != "exit status 125" {
		t.Errorf("message %q: want the exit status when the runtime said nothing", got)
	}
	if got := runtimeMessage([]byte(strings.Repeat("x", 10000)), nil); len(got) != 2000 {
		t.Errorf("message of %d bytes, want at most 2000", len(got))
	}
}
