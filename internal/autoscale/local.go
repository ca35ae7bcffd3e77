package autoscale

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// exitGrace is how long a slave process that has deregistered is given to
// exit by itself before it is sent SIGTERM.
const exitGrace = 10 * time.Second

// Local is a provider of `dist_test slave` processes on this host, for a
// laptop and the tests. Each slave registers under a hostname of its own
// (Prefix-N; make Prefix unique to this Local, as the autoscaler does
// with its process id, so that no name of an earlier run comes back) with
// a scratch folder of its own under Dir. A slave that
// exits 0 (drained) stays in the fleet until Remove; one that fails is
// gone, as a VM that died.
type Local struct {
	// Command starts a slave: the dist_test executable and the arguments
	// before "slave" (--config FILE, say).
	Command []string
	Master  string
	Slots   int
	Dir     string
	Prefix  string
	Stderr  io.Writer // the slaves' output; os.Stderr when nil
	Log     *slog.Logger

	mu    sync.Mutex
	procs map[string]*localProc
	next  int
}

type localProc struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process is reaped
	err  error         // its exit, once done
}

func (p *localProc) exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Instances implements Provider.
func (l *Local) Instances(ctx context.Context) ([]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for name, p := range l.procs {
		if done, err := p.exited(); done && err != nil {
			l.log().Warn("slave process failed; it leaves the fleet", "host", name, "err", err)
			delete(l.procs, name)
			continue
		}
		out = append(out, name)
	}
	slices.Sort(out)
	return out, nil
}

func (l *Local) log() *slog.Logger {
	if l.Log == nil {
		return slog.Default()
	}
	return l.Log
}

// Grow implements Provider: n more slave processes.
func (l *Local) Grow(ctx context.Context, n int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.procs == nil {
		l.procs = map[string]*localProc{}
	}
	for range n {
		l.next++
		name := l.Prefix + "-" + strconv.Itoa(l.next)
		args := append(slices.Clone(l.Command[1:]), "slave", "--master", l.Master, "--slots", strconv.Itoa(l.Slots),
			"--scratch-dir", filepath.Join(l.Dir, name), "--hostname", name)
		cmd := exec.Command(l.Command[0], args...)
		cmd.Stdout, cmd.Stderr = l.stderr(), l.stderr()
		// A group of its own: a Ctrl-C at the terminal reaches the
		// autoscaler, which stops its slaves in order.
		cmd.SysProcAttr = ownGroup()
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start a slave: %w", err)
		}
		p := &localProc{cmd: cmd, done: make(chan struct{})}
		go func() {
			p.err = cmd.Wait()
			close(p.done)
		}()
		l.procs[name] = p
		l.log().Info("slave process started", "host", name, "pid", cmd.Process.Pid)
	}
	return nil
}

func (l *Local) stderr() io.Writer {
	if l.Stderr == nil {
		return os.Stderr
	}
	return l.Stderr
}

// Remove implements Provider: the slaves have left, so their processes
// exit by themselves; one still there is sent SIGTERM, which gives its
// tasks back to the queue.
func (l *Local) Remove(ctx context.Context, hosts []string) error {
	return l.remove(ctx, hosts, true)
}

func (l *Local) remove(ctx context.Context, hosts []string, left bool) error {
	for _, h := range hosts {
		l.mu.Lock()
		p := l.procs[h]
		l.mu.Unlock()
		if p == nil {
			continue
		}
		if left {
			// It deregisters before it has closed everything: a moment
			// more, and it exits by itself.
			t := time.NewTimer(exitGrace)
			select {
			case <-p.done:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		if done, _ := p.exited(); !done {
			if left {
				l.log().Warn("slave process still there after its slave left; stopping it", "host", h)
			}
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
		select {
		case <-p.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		l.mu.Lock()
		delete(l.procs, h)
		l.mu.Unlock()
		l.log().Info("slave process removed", "host", h, "exit", p.err)
	}
	return nil
}

// Stop ends every slave process (SIGTERM: the graceful path) and waits
// for them: the autoscaler owns them and leaves none behind.
func (l *Local) Stop(ctx context.Context) error {
	l.mu.Lock()
	hosts := make([]string, 0, len(l.procs))
	for h := range l.procs {
		hosts = append(hosts, h)
	}
	l.mu.Unlock()
	return l.remove(ctx, hosts, false)
}
