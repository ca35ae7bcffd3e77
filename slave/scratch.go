package slave

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// maxScratchFolders bounds the search for a free default scratch folder:
// the original ran up to 16 slaves per host.
const maxScratchFolders = 64

// errFolderHeld is lockFolder's answer for a folder another process holds.
var errFolderHeld = errors.New("held by another process")

// takeScratch locks the scratch folder for the slave's life, so that no
// other slave replays its spool or clears its sandboxes. A folder given
// explicitly that another slave holds is refused; the default one is
// followed by <dir>.1, <dir>.2, ... as the original did with its cache
// folders, so that several slaves on one host each get their own. The
// returned function unlocks it.
func (s *Slave) takeScratch() (func(), error) {
	base := s.cfg.ScratchDir
	for i := range maxScratchFolders {
		dir := base
		if i > 0 {
			dir = fmt.Sprintf("%s.%d", base, i)
		}
		if err := makePrivate(dir, 0o711); err != nil {
			return nil, fmt.Errorf("scratch folder: %w", err)
		}
		unlock, err := lockFolder(filepath.Join(dir, "lock"))
		if err == nil {
			s.cfg.ScratchDir = dir
			if i > 0 {
				s.log.Info("the default scratch folder is another slave's: this one uses the next free one", "dir", dir)
			}
			return unlock, nil
		}
		if !errors.Is(err, errFolderHeld) {
			return nil, fmt.Errorf("locking the scratch folder %s: %w", dir, err)
		}
		if s.cfg.scratchGiven {
			return nil, fmt.Errorf("the scratch folder %s is in use by another slave (%s): give each slave a folder of its own (--scratch-dir or [slave] scratch_dir), or leave it unset to take the next free one", dir, holder(dir))
		}
	}
	return nil, fmt.Errorf("the scratch folders %s to %s.%d are all in use by other slaves", base, base, maxScratchFolders-1)
}

// holder names the process that holds dir's lock, from the pid it wrote.
func holder(dir string) string {
	b, err := os.ReadFile(filepath.Join(dir, "lock"))
	pid := strings.TrimSpace(string(b))
	if err != nil || pid == "" || len(pid) > 20 {
		return "pid unknown"
	}
	return "pid " + pid
}
