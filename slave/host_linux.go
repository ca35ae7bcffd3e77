package slave

import (
	"io/fs"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/dist-test/dist_test/internal/protocol"
)

// What the slave asks of Linux beyond its tasks (package process): the
// host's memory, free disk and CPUs for the master's slave list, and the
// owners and permissions of the sandboxes' folders. The slave runs on
// Linux only (CheckPlatform); host_other.go lets the rest build elsewhere.

// resources describes this host for the master's slave list.
func resources(scratch string) protocol.Resources {
	r := protocol.Resources{CPUs: numCPU()}
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		r.MemoryBytes = int64(si.Totalram) * int64(si.Unit)
	}
	var st unix.Statfs_t
	if unix.Statfs(scratch, &st) == nil {
		r.DiskFreeBytes = int64(st.Bavail) * int64(st.Bsize)
	}
	return r
}

func numCPU() int {
	var set unix.CPUSet
	if unix.SchedGetaffinity(os.Getpid(), &set) == nil {
		return set.Count()
	}
	return 1
}

// ownerOf is the uid owning a file.
func ownerOf(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// mayEnter tells whether this thread's user may pass through folder dir.
func mayEnter(dir string) bool { return unix.Access(dir, unix.X_OK) == nil }
