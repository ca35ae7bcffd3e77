package slave

import (
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// lockFolder takes an exclusive flock on the file at path, made if need
// be, and writes this process's pid in it for whoever finds it held. The
// kernel drops the lock when the process dies, however it dies.
func lockFolder(path string) (func(), error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errFolderHeld
		}
		return nil, err
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
