package process

import (
	"bytes"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// killTagged kills every process whose environment carries tag: what a task
// started and that escaped its process group (a daemon that called setsid).
// Processes may change their environment, so this is a safety net behind
// the group kill, not a guarantee. A few rounds catch children forked while
// their parents were being killed.
func killTagged(tag string) {
	// Between NULs: the whole variable, not the end of another one's name.
	needle := []byte("\x00" + TagVar + "=" + tag + "\x00")
	for round := 0; round < 3; round++ {
		found := false
		entries, err := os.ReadDir("/proc")
		if err != nil {
			return
		}
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil || !bytes.Contains(append(append([]byte{0}, env...), 0), needle) {
				continue
			}
			_ = unix.Kill(pid, unix.SIGKILL)
			found = true
		}
		if !found {
			return
		}
	}
}
