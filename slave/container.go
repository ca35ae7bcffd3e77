package slave

// A task that names a docker_image runs in a container of that image,
// through the runtime's command line (docker, or podman, which takes the
// same commands): the sandbox is mounted at /isolate-dir, the command runs
// as the slot's uid, and the container is named after the run so that a
// cancel, a timeout or a lost run kills exactly that container. The runtime
// itself runs as the slave's user; only the container runs as the task's.

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/slave/process"
)

// ContainerConfig holds the settings of tasks that run in a container.
type ContainerConfig struct {
	// Runtime is the runtime's command and its own first arguments, e.g.
	// ["podman", "--runtime", "runc"] (docker).
	Runtime []string
	// Network is the containers' --network (host): host, none, or a
	// network the runtime knows.
	Network string
	// Memory caps each container's memory in bytes (--memory); 0 is
	// Config.MemoryLimit's, if any.
	Memory int64
	// CPUs caps each container's CPUs (--cpus); 0 is none.
	CPUs float64
	// AllowedImages are globs of the images tasks may name, * matching
	// any run of characters (slashes too); empty allows any.
	AllowedImages []string
}

func (c ContainerConfig) withDefaults() ContainerConfig {
	if len(c.Runtime) == 0 {
		c.Runtime = []string{"docker"}
	}
	if c.Network == "" {
		c.Network = "host"
	}
	return c
}

// IsolateDir is where a container sees the task's sandbox.
const IsolateDir = "/isolate-dir"

// containerPrefix starts the name of each container a slave runs, followed
// by the run id.
const containerPrefix = "dist_test-"

var networkName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// check refuses settings the slave could not enforce.
func (c ContainerConfig) check() error {
	switch {
	case c.Runtime[0] == "":
		return errors.New("[slave] container_runtime: empty command")
	case !networkName.MatchString(c.Network):
		return fmt.Errorf("[slave] task_network = %q: want host, none or a network name", c.Network)
	case c.Memory < 0:
		return fmt.Errorf("[slave] task_memory = %d: cannot be negative", c.Memory)
	case c.CPUs < 0:
		return fmt.Errorf("[slave] task_cpus = %g: cannot be negative", c.CPUs)
	}
	return nil
}

// allowed reports whether image matches one of the allowed globs.
func (c ContainerConfig) allowed(image string) bool {
	if len(c.AllowedImages) == 0 {
		return true
	}
	for _, g := range c.AllowedImages {
		if globMatch(g, image) {
			return true
		}
	}
	return false
}

// globMatch matches s against pattern, where * is any run of characters
// (slashes too, unlike path.Match: registry/* takes every image of that
// registry) and ? any one character.
func globMatch(pattern, s string) bool {
	var re strings.Builder
	re.WriteString("^")
	for _, r := range pattern {
		switch r {
		case '*':
			re.WriteString(".*")
		case '?':
			re.WriteString(".")
		default:
			re.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	re.WriteString("$")
	ok, _ := regexp.MatchString(re.String(), s)
	return ok
}

// checkContainers refuses bad container settings, and finds out whether the
// runtime is installed: without it container tasks are infrastructure
// failures (s.noRuntime), said once here.
func (s *Slave) checkContainers() error {
	c := s.cfg.Containers
	if err := c.check(); err != nil {
		return err
	}
	if _, err := exec.LookPath(c.Runtime[0]); err != nil {
		s.noRuntime = fmt.Errorf("container runtime %q is not installed on this slave ([slave] container_runtime): %w", c.Runtime[0], err)
		s.log.Warn("tasks that name a docker_image cannot run here; they go to other slaves", "err", s.noRuntime)
		return nil
	}
	if c.Network != "host" && c.Network != "none" {
		// A network the runtime does not know would fail every
		// container task, on this slave alone.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if stderr, err := s.runtime(ctx, "network", "inspect", c.Network); err != nil {
			return fmt.Errorf("[slave] task_network = %q: %s does not know it: %s", c.Network, c.Runtime[0], runtimeMessage(stderr, err))
		}
	}
	return nil
}

// imageLocks makes the slots that need the same image wait for one pull.
type imageLocks struct {
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (l *imageLocks) of(image string) *sync.Mutex {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.locks == nil {
		l.locks = make(map[string]*sync.Mutex)
	}
	m := l.locks[image]
	if m == nil {
		m = new(sync.Mutex)
		l.locks[image] = m
	}
	return m
}

// prepareImage makes sure a task may run in image here and that the image
// is on this host, pulling it once. A refused image is the task's own
// failure; a missing runtime or a failed pull are the slave's.
func (s *Slave) prepareImage(ctx context.Context, image string) error {
	// The master checks it at submission; a spec is checked again
	// here, before the image reaches the runtime's command line.
	if err := protocol.CheckImage(image); err != nil {
		return fmt.Errorf("docker_image: %w", err)
	}
	if !s.cfg.Containers.allowed(image) {
		return fmt.Errorf("docker_image %q is not allowed on this slave ([slave] allowed_images: %s)",
			image, strings.Join(s.cfg.Containers.AllowedImages, ", "))
	}
	if s.noRuntime != nil {
		return infraError{s.noRuntime}
	}
	m := s.images.of(image)
	m.Lock()
	defer m.Unlock()
	if _, err := s.runtime(ctx, "image", "inspect", image); err == nil {
		return nil
	} else if ctx.Err() != nil {
		return ctx.Err()
	}
	if out, err := s.runtime(ctx, "pull", image); err != nil {
		return infraError{fmt.Errorf("pulling image %s: %s", image, runtimeMessage(out, err))}
	}
	return nil
}

// runtime runs one command of the container runtime and returns its
// standard error.
func (s *Slave) runtime(ctx context.Context, args ...string) ([]byte, error) {
	_, stderr, err := s.runtimeOutput(ctx, args...)
	return stderr, err
}

// runtimeOutput runs one command of the container runtime and returns
// its standard output and error.
func (s *Slave) runtimeOutput(ctx context.Context, args ...string) (stdout, stderr []byte, err error) {
	rt := s.cfg.Containers.Runtime
	cmd := exec.CommandContext(ctx, rt[0], append(rt[1:len(rt):len(rt)], args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.Bytes(), e.Bytes(), err
}

// scratchLabel marks each container with the scratch folder of the slave
// that runs it: the folder is that slave's alone for its life (takeScratch),
// so the next slave on it knows which containers were its predecessor's.
const scratchLabel = "dist_test.scratch"

// removeLeftoverContainers kills the containers that a slave killed
// without warning (SIGKILL, a crash) left running on this scratch folder:
// their runs are over, taken over by other slaves.
func (s *Slave) removeLeftoverContainers(ctx context.Context) {
	if s.noRuntime != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, stderr, err := s.runtimeOutput(ctx, "ps", "-a", "-q", "--filter", "label="+scratchLabel+"="+s.cfg.ScratchDir)
	if err != nil {
		s.log.Warn("cannot list the containers a previous slave may have left; container tasks may fail here",
			"runtime", s.cfg.Containers.Runtime[0], "err", runtimeMessage(stderr, err))
		return
	}
	for _, id := range strings.Fields(string(out)) {
		s.log.Warn("killing a container a previous slave on this scratch folder left running", "container", id)
		s.removeContainer(id)
	}
}

// runtimeMessage is what a runtime said when it failed: the last lines of
// its standard error, where it puts the error after any warnings.
func runtimeMessage(stderr []byte, err error) string {
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if len(lines) > 3 {
		lines = lines[len(lines)-3:]
	}
	msg := strings.TrimSpace(strings.Join(lines, "\n"))
	if msg == "" {
		return err.Error()
	}
	const most = 2000
	if len(msg) > most {
		msg = msg[len(msg)-most:]
	}
	return msg
}

// containerArgs is the runtime command line that runs command in a
// container of image named name, with env as its whole environment and
// relCwd, inside the sandbox, as its working folder. The runtime writes
// cidfile once the container exists.
func (s *Slave) containerArgs(a *attempt, image, name, relCwd, cidfile string, env, command []string) []string {
	c := s.cfg.Containers
	uid, gid := os.Getuid(), os.Getgid()
	if a.user != nil {
		uid, gid = int(a.user.UID), int(a.user.GID)
	}
	args := append([]string(nil), c.Runtime...)
	args = append(args, "run", "--rm", "--pull=never", "--name", name, "--cidfile", cidfile,
		"--user", strconv.Itoa(uid)+":"+strconv.Itoa(gid),
		"--security-opt", "no-new-privileges",
		"--volume", a.sandbox+":"+IsolateDir,
		"--workdir", path.Join(IsolateDir, relCwd),
		"--network", c.Network, "--label", scratchLabel+"="+s.cfg.ScratchDir)
	// [slave] memory_limit caps every task: a container too, unless
	// task_memory says otherwise.
	if mem := cmp.Or(c.Memory, s.cfg.MemoryLimit); mem > 0 {
		args = append(args, "--memory", strconv.FormatInt(mem, 10))
	}
	if c.CPUs > 0 {
		args = append(args, "--cpus", strconv.FormatFloat(c.CPUs, 'f', -1, 64))
	}
	for _, e := range env {
		args = append(args, "--env", e)
	}
	args = append(args, image)
	return append(args, command...)
}

// runContainer runs a task's command in a container of image. The
// result's exit code is the command's. A container the runtime could not
// make (no image, a bad option, no daemon) is an infraError with the
// runtime's message; once the container exists, its ending is the task's.
func (s *Slave) runContainer(ctx context.Context, a *attempt, image string, env []string, tree Tree, cmd process.Command) (process.Result, error) {
	if strings.Contains(a.sandbox, ":") {
		return process.Result{}, infraError{fmt.Errorf("the sandbox folder %s holds a : that --volume cannot name", a.sandbox)}
	}
	name := containerPrefix + cmd.Tag
	cidfile := filepath.Join(a.dir, "container-id")
	// As on the host, the task knows its run's id.
	env = append(env, process.TagVar+"="+cmd.Tag)
	cmd.Args = s.containerArgs(a, image, name, tree.RelativeCwd, cidfile, env, tree.Command)
	// The runtime is the slave's: it runs as the slave's user, in the
	// slave's environment (its configuration, a daemon's address), from
	// the attempt's folder, not the sandbox.
	cmd.Dir, cmd.Env, cmd.User, cmd.Namespaces, cmd.MemoryLimit = a.dir, nil, nil, false, 0
	stopped := make(chan struct{})
	killed := make(chan struct{})
	go func() {
		// A canceled run must not wait for the runtime to pass SIGTERM
		// on and out the grace: the container dies now.
		defer close(killed)
		select {
		case <-ctx.Done():
			s.removeContainer(name)
		case <-stopped:
		}
	}()
	res, err := s.runCommand(ctx, cmd)
	close(stopped)
	<-killed
	// The container's use of CPU and memory is not the runtime's, which
	// is all the run's cgroup saw.
	res.CPUTime, res.PeakMemory = 0, 0
	if res.TimedOut || res.Canceled || err != nil {
		s.removeContainer(name)
	}
	if err != nil {
		return res, infraError{fmt.Errorf("running the container runtime: %w", err)}
	}
	if res.ExitCode != 0 && !res.TimedOut && !res.Canceled {
		if _, serr := os.Stat(cidfile); serr != nil {
			msg, _ := os.ReadFile(a.stderr)
			return res, infraError{fmt.Errorf("the container could not be made: %s", runtimeMessage(msg, fmt.Errorf("%s exited with %d", s.cfg.Containers.Runtime[0], res.ExitCode)))}
		}
	}
	return res, nil
}

// removeContainer kills a run's container and removes it. A container
// already gone is fine.
func (s *Slave) removeContainer(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.runtime(ctx, "kill", name); err == nil {
		s.log.Info("killed the container of a run", "container", name)
	}
	_, _ = s.runtime(ctx, "rm", "-f", name)
}
