package slave

import (
	"log/slog"
	"os"
	"path/filepath"
	"sync"
)

// removalQueue bounds the sandboxes waiting for the remover; beyond it a
// slot removes its own, so that a slow disk slows the slots rather than
// fill it.
const removalQueue = 64

// A finished attempt's folder is moved at once into the trash, a folder of
// the slave's that task users may not enter (its name, in the folder of
// sandboxes, is their only way there, and their processes are gone), and
// removed there by the remover, off the slot's way. A crash leaves the
// trash to clearSandboxes at the next start.
type remover struct {
	trash string
	log   *slog.Logger
	queue chan removal
	wg    sync.WaitGroup
	once  sync.Once
}

type removal struct {
	dir     string
	release func()
}

// startRemover makes the trash in sandboxes and starts removing what is
// put there; stop ends it.
func startRemover(sandboxes string, log *slog.Logger) (*remover, error) {
	trash := filepath.Join(sandboxes, ".trash")
	if err := makePrivate(trash, 0o700); err != nil {
		return nil, err
	}
	r := &remover{trash: trash, log: log, queue: make(chan removal, removalQueue)}
	r.wg.Go(func() {
		for rm := range r.queue {
			r.remove(rm)
		}
	})
	return r, nil
}

// discard removes an attempt's folder, then calls release: in the
// background unless the queue is full or the move into the trash fails.
// A nil remover removes it at once.
func (r *remover) discard(dir string, release func(), log *slog.Logger) {
	if r != nil {
		moved := filepath.Join(r.trash, filepath.Base(dir))
		if os.Rename(dir, moved) == nil {
			select {
			case r.queue <- removal{moved, release}:
				return
			default:
				dir = moved
			}
		}
	}
	removeTree(dir, log)
	if release != nil {
		release()
	}
}

func (r *remover) remove(rm removal) {
	removeTree(rm.dir, r.log)
	if rm.release != nil {
		rm.release()
	}
}

// stop removes what is queued and the trash, and returns once done. It
// may be called again.
func (r *remover) stop() {
	r.once.Do(func() {
		close(r.queue)
		r.wg.Wait()
		removeTree(r.trash, r.log)
	})
}

// removeTree removes dir, which a task may have left with read-only
// folders: they are made writable first.
func removeTree(dir string, log *slog.Logger) {
	_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	if err := os.RemoveAll(dir); err != nil {
		log.Warn("could not remove a sandbox", "dir", dir, "err", err)
	}
}
