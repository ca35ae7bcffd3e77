// Package slave runs tasks for a dist_test master: each of its slots
// reserves a queue entry, asks the master to start the attempt, fetches the
// inputs into a fresh sandbox, runs the command, uploads what the master
// keeps, reports the result and deletes the entry. A heartbeat loop tells
// the master the slave is alive and learns which runs to stop.
//
// The slave holds no database or blob-store credentials: it talks to the
// master, the queue and the isolate server only.
//
// Tasks are not trusted. Run as root, the slave runs each slot's tasks as
// the slot's own unprivileged user (Config.Users), with no_new_privs, in a
// sandbox that user owns, with an environment built from an allowlist:
// the lease that lets a result be recorded stays in the slave. A task can
// reach neither the slave's spool, cache and configuration, nor other
// slots' files and processes (see sandbox.go for the folders). Run as any
// other user, the slave runs tasks as itself and can protect nothing of
// its own from them; it says so at start, and gives tasks copies of their
// inputs rather than links into its cache.
//
// docs/architecture.md follows one task through the master and the
// slave, and says where each policy lives.
package slave

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/backoff"
	"github.com/dist-test/dist_test/internal/metrics/slavemetrics"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/slave/process"
	"github.com/dist-test/dist_test/slave/taskuser"
)

// Master is what a slave asks of the master (client.Client implements it).
// Errors carry the master's kinds: model.ErrConflict for a stale entry or
// lease, model.ErrNotFound for an unknown slave.
type Master interface {
	Register(ctx context.Context, r protocol.Register) (protocol.Registered, error)
	Heartbeat(ctx context.Context, slaveID string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error)
	Deregister(ctx context.Context, slaveID string) error
	Start(ctx context.Context, s protocol.Start) (protocol.Started, error)
	Upload(ctx context.Context, lease, name string, r io.Reader, size int64) error
	Finish(ctx context.Context, lease string, f protocol.Finish) (protocol.Finished, error)
	// Abort gives a run back unfinished: the attempt is queued again with
	// its entry, using no retry.
	Abort(ctx context.Context, lease, reason string) error
}

// Inputs places a task's inputs into an empty folder, for the user the
// task runs as. Errors the inputs cause themselves wrap ErrInvalidInputs.
type Inputs interface {
	Fetch(ctx context.Context, digest, dir string, p Placement) (Tree, error)
}

// Placement says whom a task's inputs are laid out for.
type Placement struct {
	// Owner, when set, is the task's user: it owns the folders and the
	// copies; links into the cache stay the slave's, read-only.
	Owner *process.User
	// Copy: the task runs as the slave's own user, who could write
	// through a link into the cache. Every file is a copy.
	Copy bool
}

// Tree is what a task's inputs say about running it, and what fetching
// them took.
type Tree struct {
	Command     []string
	RelativeCwd string
	Inputs      model.Inputs
	// Release, when set, is called once the sandbox is removed (also
	// after a fetch that failed).
	Release func()
}

// ErrInvalidInputs is wrapped by the Fetch errors that the task's inputs
// cause themselves: a malformed manifest, paths that lead out of the
// sandbox. The task fails at once: no other slave would do better.
var ErrInvalidInputs = errors.New("invalid inputs")

// InvalidInputs marks err as ErrInvalidInputs, keeping its message.
func InvalidInputs(err error) error { return invalidInputs{err} }

type invalidInputs struct{ err error }

func (e invalidInputs) Error() string   { return e.err.Error() }
func (e invalidInputs) Unwrap() []error { return []error{ErrInvalidInputs, e.err} }

// Config holds the slave's settings. Zero values take the defaults.
type Config struct {
	Slots            int    // tasks at once (number of CPUs)
	ScratchDir       string // where sandboxes are made (OS temp dir/dist_test-slave)
	Hostname         string // as reported to the master (os.Hostname)
	Version          string
	KillGrace        time.Duration  // SIGTERM → SIGKILL (5 s)
	LogLimits        process.Limits // head and tail kept of each log (8 MiB each)
	MaxArtifactBytes int64          // 200 MiB
	UploadAttempts   int            // tries per output before it is reported missing (4)
	KeepSandboxes    bool           // leave sandboxes for debugging
	// KeepPassedLogs uploads the logs of runs that passed too; by default
	// only a failed run's logs are kept, as the original's slave did.
	KeepPassedLogs bool
	// Users run the tasks, one per slot: slot n runs as Users[n]. They
	// must be the slave's alone: every process of a slot's user is killed
	// after each task. Empty: tasks run as the slave's own user, which
	// may then not be root.
	Users []taskuser.User
	// Namespaces runs each task in PID and mount namespaces of its own
	// (root only; see process.Command).
	Namespaces bool
	// MemoryLimit caps the memory of each task's processes, in bytes, in
	// its cgroup; 0 is none. Run refuses to start where it cannot.
	MemoryLimit int64
	// TaskEnv is added to each task's environment: NAME=VALUE entries.
	TaskEnv []string
	// Containers are the settings of tasks that name a docker_image.
	Containers ContainerConfig
	// Getenv reads the slave's environment for what the tasks' allowlist
	// passes on (PATH, LANG); os.Getenv when nil.
	Getenv func(string) string
	// CacheSize, when set, tells what the input cache holds now: its
	// heartbeats report it, with how the tasks' inputs were found.
	CacheSize func() (items, bytes int64)
	// Metrics, when set, counts the slots busy and the runs.
	Metrics *slavemetrics.Slave

	// scratchGiven: ScratchDir names a folder other than the default
	// (takeScratch).
	scratchGiven bool
}

func (c Config) withDefaults() Config {
	if c.Slots <= 0 {
		c.Slots = runtime.NumCPU()
	}
	// The default folder, named or not, is the one several slaves of a
	// host share out as dist_test-slave, dist_test-slave.1, ...
	def := filepath.Join(os.TempDir(), "dist_test-slave")
	c.scratchGiven = c.ScratchDir != "" && filepath.Clean(c.ScratchDir) != def
	if c.ScratchDir == "" {
		c.ScratchDir = def
	}
	if c.Hostname == "" {
		c.Hostname, _ = os.Hostname()
	}
	if c.KillGrace <= 0 {
		c.KillGrace = process.DefaultKillGrace
	}
	if c.UploadAttempts <= 0 {
		c.UploadAttempts = 4
	}
	if c.Getenv == nil {
		c.Getenv = os.Getenv
	}
	c.Containers = c.Containers.withDefaults()
	return c
}

// Slave is one slave process. Create it with New and call Run.
type Slave struct {
	master Master
	queue  queue.Queue
	inputs Inputs
	cfg    Config
	log    *slog.Logger

	spool     *spool
	reach     reach    // whether the master answers
	sandboxes string   // the folder of the tasks' sandboxes
	remover   *remover // removes them off the slots' way; nil: at once
	// runCommand is process.Run. The unit tests replace it for runs that
	// must last on testing/synctest's clock, which stands still while a
	// real process runs.
	runCommand func(context.Context, process.Command) (process.Result, error)

	// noRuntime says why container tasks cannot run here: the runtime
	// is missing (checkContainers).
	noRuntime error
	images    imageLocks

	mu    sync.Mutex
	id    string
	touch time.Duration
	beat  time.Duration
	runs  map[string]*run      // by lease
	avoid map[uint64]avoidance // entries whose task could not run here
	found protocol.CacheStats  // how the tasks' inputs were found (hot, cold)

	// drain: the master said to take no new task; the slots stop after
	// their current one, and Run returns once every result is delivered.
	drain atomic.Bool
}

func (s *Slave) isDraining() bool { return s.drain.Load() }

// New returns a slave.
func New(master Master, q queue.Queue, inputs Inputs, cfg Config, log *slog.Logger) *Slave {
	if log == nil {
		log = slog.Default()
	}
	s := &Slave{queue: q, inputs: inputs, cfg: cfg.withDefaults(), log: log, runCommand: process.Run,
		runs: make(map[string]*run), avoid: make(map[uint64]avoidance)}
	s.reach.log = log
	s.master = observed{m: master, r: &s.reach}
	return s
}

// Run registers with the master and runs tasks until ctx ends. Then it
// kills what it runs, gives the queue entries back and deregisters, so the
// master queues those tasks again at once without counting them as failed.
// Told to drain by the master, it takes no new task, finishes and reports
// the running ones, deregisters and returns nil.
func (s *Slave) Run(ctx context.Context) error {
	if err := s.checkIsolation(); err != nil {
		return err
	}
	if err := s.checkContainers(); err != nil {
		return err
	}
	unlock, err := s.takeScratch()
	if err != nil {
		return err
	}
	// Held until the deregistration: a slave that starts on this folder
	// next must find every result of this one in the spool.
	defer unlock()
	s.removeLeftoverContainers(ctx)
	sandboxes, note, err := s.prepareFolders()
	if err != nil {
		return err
	}
	if note != "" {
		s.log.Warn(note)
	}
	s.sandboxes = sandboxes
	s.clearSandboxes()
	if s.remover, err = startRemover(sandboxes, s.log); err != nil {
		return fmt.Errorf("sandboxes: %w", err)
	}
	defer s.remover.stop()
	sp, err := openSpool(filepath.Join(s.cfg.ScratchDir, "spool"))
	if err != nil {
		return err
	}
	s.spool = sp
	// The spool is read, and what a save cut short left there removed,
	// before any run of this life saves a result in it: a result being
	// saved must never be taken for such debris.
	left, err := sp.load()
	if err != nil {
		s.log.Error("cannot read the spool; its results are lost to this run", "dir", sp.dir, "err", err)
	}
	if err := s.register(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before the master answered
		}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	// The heartbeats outlive the work: a draining slave heartbeats until
	// its last result is delivered, then stops them.
	bctx, stopBeats := context.WithCancel(gctx)
	defer stopBeats()
	g.Go(func() error { return s.heartbeats(bctx) })
	g.Go(func() error {
		defer stopBeats()
		w, wctx := errgroup.WithContext(gctx)
		w.Go(func() error { return s.replay(wctx, left) })
		for slot := range s.cfg.Slots {
			w.Go(func() error { return s.slot(wctx, slot) })
		}
		return w.Wait()
	})
	err = g.Wait()
	if s.isDraining() && ctx.Err() == nil {
		s.log.Info("drained: every run is reported; leaving")
	}
	s.remover.stop()
	if s.sandboxes != filepath.Join(s.cfg.ScratchDir, "sandboxes") {
		os.Remove(s.sandboxes) // the folder in $TMPDIR, once empty
	}
	// Deregister with a context of its own: ctx is over by now.
	dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if derr := s.master.Deregister(dctx, s.slaveID()); derr != nil {
		s.log.Warn("could not deregister; the master will find this slave lost", "err", derr)
	}
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// register makes a new registration, trying until the master answers.
func (s *Slave) register(ctx context.Context) error {
	req := protocol.Register{Hostname: s.cfg.Hostname, Slots: s.cfg.Slots, Version: s.cfg.Version, Resources: resources(s.cfg.ScratchDir)}
	retry := backoff.Backoff{Policy: registerRetry}
	for {
		reg, err := s.master.Register(ctx, req)
		if err == nil {
			s.mu.Lock()
			s.id = reg.SlaveID
			s.beat = time.Duration(reg.HeartbeatIntervalMS) * time.Millisecond
			s.touch = time.Duration(reg.TouchIntervalMS) * time.Millisecond
			if s.beat <= 0 {
				s.beat = 5 * time.Second
			}
			if s.touch <= 0 {
				s.touch = 10 * time.Second
			}
			s.mu.Unlock()
			s.log.Info("registered with the master", "slave", reg.SlaveID, "slots", s.cfg.Slots)
			return nil
		}
		if errors.Is(err, model.ErrInvalid) {
			return fmt.Errorf("register: %w", err)
		}
		delay := retry.Next()
		s.log.Warn("cannot register with the master; trying again", "err", err, "in", delay)
		if !backoff.Sleep(ctx, delay) {
			return ctx.Err()
		}
	}
}

func (s *Slave) slaveID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

func (s *Slave) intervals() (beat, touch time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.beat, s.touch
}

// heartbeats tells the master every interval what runs here, and stops
// what it says to stop. Heartbeats promise nothing: a lost one is
// superseded by the next.
func (s *Slave) heartbeats(ctx context.Context) error {
	for {
		beat, _ := s.intervals()
		if s.reach.isDown() {
			// Ask often while the master is silent: its first answer
			// ends the waits of the slots and of the results.
			beat = min(beat, probeEvery)
		}
		if !backoff.Sleep(ctx, beat) {
			return nil
		}
		tails, sent := s.tails()
		reply, err := s.master.Heartbeat(ctx, s.slaveID(), protocol.Heartbeat{Running: s.leases(), Pending: s.spool.leases(),
			Tails: tails, Cache: s.cacheStats()})
		if err == nil {
			sent()
		}
		switch {
		case errors.Is(err, model.ErrNotFound):
			// The master does not know this registration (it ended it, or
			// lost its state): drop everything and start over.
			s.log.Warn("the master does not know this slave; resetting and registering again")
			s.dropAll()
			if err := s.register(ctx); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				// Refused for good: without heartbeats the slave would go
				// on reserving tasks it may not start. Stop it all.
				return err
			}
		case err != nil:
			if ctx.Err() == nil {
				s.log.Warn("heartbeat failed", "err", err)
			}
		case reply.Reset:
			s.log.Warn("the master had declared this slave lost; killing its tasks without reporting them")
			s.dropAll()
		default:
			for _, l := range reply.Kill {
				s.drop(l, "canceled or handed to another slave")
			}
			if reply.Drain && !s.isDraining() {
				s.log.Info("draining: taking no new task; leaving once the running ones are reported", "running", len(s.leases()))
				s.drain.Store(true)
			}
		}
	}
}

// checkIsolation refuses settings that would leave tasks less isolated
// than they claim, and says how tasks will run.
func (s *Slave) checkIsolation() error {
	root := os.Geteuid() == 0
	switch {
	case root && len(s.cfg.Users) == 0:
		return errors.New("a slave running as root needs a user per slot to run tasks as ([slave] task_users)")
	case !root && len(s.cfg.Users) > 0:
		return errors.New("[slave] task_users: only a slave running as root can run tasks as other users")
	case len(s.cfg.Users) > 0 && len(s.cfg.Users) < s.cfg.Slots:
		return fmt.Errorf("%d task users for %d slots: each slot needs one", len(s.cfg.Users), s.cfg.Slots)
	case s.cfg.Namespaces && !root:
		return errors.New("[slave] namespaces = true needs a slave running as root")
	case s.cfg.Namespaces:
		if err := process.CheckNamespaces(); err != nil {
			return fmt.Errorf("[slave] namespaces = true, but this kernel refuses them: %w", err)
		}
	}
	if s.cfg.MemoryLimit > 0 {
		if err := process.CheckMemoryLimit(); err != nil {
			return fmt.Errorf("[slave] memory_limit = %d, but this slave cannot enforce it: %w", s.cfg.MemoryLimit, err)
		}
	}
	if !root {
		s.log.Warn("THIS SLAVE DOES NOT RUN AS ROOT: tasks run as its own user (uid " + strconv.Itoa(os.Geteuid()) +
			") and can read and change everything it can: its spool, cache and configuration, and the files and " +
			"processes of the other tasks. Inputs are copied into sandboxes, never linked. Run the slave as root " +
			"to give each slot an unprivileged user of its own.")
		return nil
	}
	names := make([]string, 0, s.cfg.Slots)
	for _, u := range s.cfg.Users[:s.cfg.Slots] {
		names = append(names, u.String())
	}
	s.log.Info("tasks run as the slots' own users, with no_new_privs", "users", strings.Join(names, ", "), "namespaces", s.cfg.Namespaces)
	return nil
}
