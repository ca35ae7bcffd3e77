package slave

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/dist-test/dist_test/internal/protocol"
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
	s := &Slave{cfg: Config{ScratchDir: "/scratch", Containers: ContainerConfig{Runtime: []string{"podman", "--runtime", "runc"},
		Network: "none", Memory: 1 << 30, CPUs: 1.5}}}
	u := &taskuser.User{Name: "dist_test-slot-1", User: process.User{UID: 3001, GID: 3002}}
	a := &attempt{dir: "/scratch/task-1", sandbox: "/scratch/task-1/sandbox", user: u}
	got := s.containerArgs(a, "debian:12", "dist_test-run", "sub/dir", "/scratch/task-1/container-id",
		[]string{"HOME=/isolate-dir/test-tmp", "X=a b"}, []string{"--rm", "-v", "$HOME"})
	want := []string{"podman", "--runtime", "runc", "run", "--rm", "--pull=never", "--name", "dist_test-run",
		"--cidfile", "/scratch/task-1/container-id", "--user", "3001:3002", "--security-opt", "no-new-privileges",
		"--volume", "/scratch/task-1/sandbox:/isolate-dir", "--workdir", "/isolate-dir/sub/dir", "--network", "none",
		"--label", "dist_test.scratch=/scratch",
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
	// Without task_memory, memory_limit caps containers too.
	s.cfg.MemoryLimit = 64 << 20
	got = s.containerArgs(a, "debian:12", "n", "", "c", nil, []string{"true"})
	if i := slices.Index(got, "--memory"); i < 0 || got[i+1] != "67108864" {
		t.Errorf("args %q: want memory_limit's --memory", got)
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

// fakeRuntime is a container runtime that knows the images "present:1"
// (whose command exits 125, as a test may) and "broken:1" (which the
// runtime cannot make a container of), and has no registry to pull from.
const fakeRuntime = `#!/bin/sh
op=$1; shift
case "$op" in
image) case "$2" in missing*) echo "Error: $2: image not known" >&2; exit 125;; esac; exit 0;;
pull) echo 'level=warning msg="retrying"' >&2; echo "Error: $1: registry unreachable" >&2; exit 125;;
run)
  while [ $# -gt 0 ]; do
    case "$1" in
    --cidfile) cid=$2; shift;;
    broken:1) echo "Error: OCI runtime error: boom" >&2; exit 125;;
    present:1) echo made > "$cid"; echo "in the container"; exit 125;;
    esac
    shift
  done
  exit 99;;
esac
exit 0
`

// How a container run ends, by the runtime's words: a command's own exit
// code (125 included) once the container exists; an infrastructure failure
// with the runtime's message when it could not make the container or pull
// the image (the inputs then are not fetched); a refused or malformed
// image fails its task, before anything else.
func TestContainerOutcomes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		rt := filepath.Join(t.TempDir(), "fake-runtime")
		if err := os.WriteFile(rt, []byte(fakeRuntime), 0o755); err != nil {
			t.Fatal(err)
		}
		h.cfg.Containers = ContainerConfig{Runtime: []string{rt}, AllowedImages: []string{"present:*", "broken:*", "missing:*", "-*"}}
		want := map[string]struct {
			image, err string
			exit       int
			infra      bool
		}{
			"own":       {"present:1", "", 125, false},
			"broken":    {"broken:1", "the container could not be made: Error: OCI runtime error: boom", -1, true},
			"missing":   {"missing:1", "pulling image missing:1: level=warning msg=\"retrying\"\nError: missing:1: registry unreachable", -1, true},
			"refused":   {"other:1", `docker_image "other:1" is not allowed on this slave ([slave] allowed_images: present:*, broken:*, missing:*, -*)`, -1, false},
			"malformed": {"--privileged", `docker_image: "--privileged" is not an image name`, -1, false},
		}
		var ids []uint64
		for name, w := range want {
			ids = append(ids, h.task(name, sh("echo on the host"), func(s *protocol.Spec) { s.DockerImage = w.image }))
		}
		h.start()
		h.waitFor("the entries to be settled", func() bool {
			for _, id := range ids {
				if !h.q.settled(id) {
					return false
				}
			}
			return true
		})
		h.stop()
		fins := h.master.made("finish")
		if len(fins) != len(want) {
			t.Fatalf("%d finishes, want %d", len(fins), len(want))
		}
		for _, f := range fins {
			name := strings.Split(f.lease, "-")[1]
			w, got := want[name], f.finish
			if got.ExitCode != w.exit || got.Infra != w.infra || !strings.HasPrefix(got.Error, w.err) {
				t.Errorf("%s: exit %d, infra %v, error %q; want exit %d, infra %v, error %q", name, got.ExitCode, got.Infra, got.Error, w.exit, w.infra, w.err)
			}
			if got.CPUMS != 0 || got.PeakMemoryBytes != 0 {
				t.Errorf("%s: usage %d ms, %d bytes: want none (the container's is not measured)", name, got.CPUMS, got.PeakMemoryBytes)
			}
		}
		if fetches, _ := h.inputs.counts(); fetches != 2 {
			t.Errorf("%d fetches of inputs, want 2 (own and broken): the others could not run here", fetches)
		}
		cmds, _ := h.runner.ran()
		for _, c := range cmds {
			if c.Args[0] != rt || c.User != nil {
				t.Errorf("ran %q as %v: want the runtime, as the slave", c.Args, c.User)
			}
		}
	})
}

// A task_network the runtime does not know is refused at start; host and
// none are not asked about.
func TestTaskNetworkChecked(t *testing.T) {
	rt := filepath.Join(t.TempDir(), "fake-runtime")
	script := "#!/bin/sh\n[ \"$1 $2 $3\" = \"network inspect lab\" ] && exit 0\necho \"Error: network $3 not found\" >&2; exit 125\n"
	if err := os.WriteFile(rt, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for network, want := range map[string]string{"lab": "", "host": "", "none": "",
		"other": `[slave] task_network = "other": ` + rt + ` does not know it: Error: network other not found`} {
		s := New(nil, nil, nil, Config{Containers: ContainerConfig{Runtime: []string{rt}, Network: network}}, nil)
		err := s.checkContainers()
		if (want == "" && err != nil) || (want != "" && (err == nil || err.Error() != want)) {
			t.Errorf("task_network = %s: %v, want %q", network, err, want)
		}
	}
}

// pullingRuntime has no image until it is pulled; each pull is logged to
// $PULLS and takes a moment, so that slots that start together overlap.
const pullingRuntime = `#!/bin/sh
dir=$(dirname "$0")
case "$1" in
image) [ -e "$dir/pulled" ] && exit 0; echo "Error: image not known" >&2; exit 125;;
pull) echo "$2" >> "$dir/pulls"; sleep 0.3; touch "$dir/pulled"; exit 0;;
run) while [ $# -gt 0 ]; do [ "$1" = --cidfile ] && echo made > "$2"; shift; done; exit 0;;
esac
exit 0
`

// Slots that need the same missing image at once wait for one pull.
func TestImagePulledOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 3)
		dir := t.TempDir()
		rt := filepath.Join(dir, "fake-runtime")
		if err := os.WriteFile(rt, []byte(pullingRuntime), 0o755); err != nil {
			t.Fatal(err)
		}
		h.cfg.Containers = ContainerConfig{Runtime: []string{rt}}
		var ids []uint64
		for i := range 3 {
			ids = append(ids, h.task(fmt.Sprint("t", i), sh("true"), func(s *protocol.Spec) { s.DockerImage = "ci/debian:12" }))
		}
		h.start()
		h.waitFor("the entries to be settled", func() bool {
			for _, id := range ids {
				if !h.q.settled(id) {
					return false
				}
			}
			return true
		})
		h.stop()
		pulls, err := os.ReadFile(filepath.Join(dir, "pulls"))
		if err != nil || string(pulls) != "ci/debian:12\n" {
			t.Errorf("pulls %q, %v; want one of ci/debian:12", pulls, err)
		}
		for _, f := range h.master.made("finish") {
			if f.finish.ExitCode != 0 || f.finish.Infra || f.finish.Error != "" {
				t.Errorf("%s: %+v; want passed", f.lease, f.finish)
			}
		}
	})
}
