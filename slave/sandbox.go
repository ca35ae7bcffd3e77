package slave

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/dist-test/dist_test/slave/process"
	"github.com/dist-test/dist_test/slave/taskuser"
)

// The slave's folders, and who may reach them:
//
//	<scratch>/             0711 the slave's; tasks may pass, not list
//	  spool/               0700 results waiting for the master (named by lease)
//	  cache/               0700 the input cache (unless [isolate] cache_dir)
//	  sandboxes/           0711 (0700 when tasks run as the slave's user)
//	    task-XXXX/         0711 one attempt
//	      stdout, stderr   0600 the task's logs, written by the slave
//	      artifacts.zip    0600
//	      sandbox/         0700 the slot's user's: inputs, TEST_TMPDIR, HOME
//
// A task user can reach its own sandbox and nothing else of the slave's.
// When a folder above <scratch> keeps the task users out (a 0700 home, a
// test's temporary folder), sandboxes go to a folder of the slave's own in
// the system's temporary folder instead, and the slave says so at start.

// prepareFolders makes the scratch folder, the spool and the folder of
// sandboxes, and returns the latter, with a note to log when it is not
// where it would be.
func (s *Slave) prepareFolders() (sandboxes, note string, err error) {
	shared := len(s.cfg.Users) == 0 // tasks run as the slave's own user
	if err := makePrivate(s.cfg.ScratchDir, 0o711); err != nil {
		return "", "", fmt.Errorf("scratch folder: %w", err)
	}
	if err := makePrivate(filepath.Join(s.cfg.ScratchDir, "spool"), 0o700); err != nil {
		return "", "", fmt.Errorf("spool: %w", err)
	}
	sandboxes = filepath.Join(s.cfg.ScratchDir, "sandboxes")
	if shared {
		return sandboxes, "", makePrivate(sandboxes, 0o700)
	}
	if err := makePrivate(sandboxes, 0o711); err != nil {
		return "", "", fmt.Errorf("sandboxes folder: %w", err)
	}
	blocked := closedTo(sandboxes, s.cfg.Users)
	if blocked == "" {
		return sandboxes, "", nil
	}
	alt, err := tempSandboxes(sandboxes)
	if err != nil {
		return "", "", err
	}
	if blocked2 := closedTo(alt, s.cfg.Users); blocked2 != "" {
		return "", "", fmt.Errorf("the task users cannot reach the sandboxes, neither in %s (%s) nor in %s (%s): choose a --scratch-dir (or --data-dir) they can reach",
			sandboxes, blocked, alt, blocked2)
	}
	return alt, fmt.Sprintf("sandboxes are in %s: the task users cannot reach %s (%s)", alt, sandboxes, blocked), nil
}

// makePrivate makes the folder dir of the slave with mode perm, and gives
// an existing one that mode. A folder of another user (or a link in its
// place), which its owner could change under the slave, is refused.
func makePrivate(dir string, perm fs.FileMode) error {
	if err := os.MkdirAll(dir, perm); err != nil {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if uid, ok := ownerOf(fi); !fi.IsDir() || !ok || uid != os.Geteuid() {
		return fmt.Errorf("%s is not a folder of this slave's user (uid %d): remove it, or choose another", dir, os.Geteuid())
	}
	return os.Chmod(dir, perm)
}

// tempSandboxes returns the folder of sandboxes in the temporary folder
// that stands for the one at dir: the same one at each start, so that what
// a previous life left there is removed. A folder of that name that is not
// the slave's alone (made by someone else before the slave started) is not
// used: a fresh one of a random name is.
func tempSandboxes(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	alt := filepath.Join(os.TempDir(), "dist_test-sandboxes-"+hex.EncodeToString(sum[:6]))
	err = os.Mkdir(alt, 0o711)
	if errors.Is(err, fs.ErrExist) && ownFolder(alt) {
		err = os.Chmod(alt, 0o711)
	} else if err != nil {
		alt, err = os.MkdirTemp(os.TempDir(), "dist_test-sandboxes-")
		if err == nil {
			err = os.Chmod(alt, 0o711)
		}
	}
	if err != nil {
		return "", fmt.Errorf("folder of sandboxes: %w", err)
	}
	return alt, nil
}

// ownFolder tells whether path is a folder (not a link) of this process's
// user that nobody else may write.
func ownFolder(path string) bool {
	fi, err := os.Lstat(path)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	uid, ok := ownerOf(fi)
	return ok && uid == os.Geteuid()
}

// closedTo names the first folder on the way to dir that one of users
// may not pass, with its mode; "" when they all may.
func closedTo(dir string, users []taskuser.User) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err.Error()
	}
	var chain []string
	for d := abs; ; d = filepath.Dir(d) {
		chain = append([]string{d}, chain...)
		if d == filepath.Dir(d) {
			break
		}
	}
	for _, u := range users {
		var blocked string
		_ = process.AsUser(u.User, func() error {
			for _, d := range chain {
				if !mayEnter(d) {
					blocked = d
					return nil
				}
			}
			return nil
		})
		if blocked != "" {
			mode := "?"
			if fi, err := os.Stat(blocked); err == nil {
				mode = fmt.Sprintf("%#o", fi.Mode().Perm())
			}
			return fmt.Sprintf("%s is mode %s, closed to %s", blocked, mode, u.Name)
		}
	}
	return ""
}

// clearSandboxes removes what a previous life of the slave left in the
// folder of sandboxes, once the slots' users have no process left.
func (s *Slave) clearSandboxes() {
	entries, err := os.ReadDir(s.sandboxes)
	if err != nil {
		return
	}
	for _, u := range s.cfg.Users {
		if err := process.KillUser(u.User); err != nil {
			s.log.Warn("could not kill the processes of a task user", "user", u.Name, "err", err)
		}
	}
	for _, e := range entries {
		removeTree(filepath.Join(s.sandboxes, e.Name()), s.log)
	}
}
