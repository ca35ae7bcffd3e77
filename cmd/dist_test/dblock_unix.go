//go:build unix

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// lockSQLite takes an exclusive flock on a file beside the SQLite database
// at db, held until release or until the process dies, however it dies.
// SQLite serves one master: two would each feed, reap and reconcile
// through one file without knowing of the other, and the embedded queue
// and blob store they run beside it are their own. Several masters need
// MySQL (docs/scale.md).
func lockSQLite(db string) (release func(), err error) {
	path := db + ".lock"
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock of the SQLite database: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			holder := "another process"
			if b, _ := os.ReadFile(path); len(strings.TrimSpace(string(b))) > 0 {
				holder = "process " + strings.TrimSpace(string(b))
			}
			return nil, fmt.Errorf("the SQLite database %s is in use by %s (another dist_test master or local): "+
				"SQLite serves one master; to run several masters, give them a MySQL database ([mysql] host)", db, holder)
		}
		return nil, fmt.Errorf("lock of the SQLite database: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
