package slave

import (
	"fmt"
	"runtime"
)

// CheckPlatform tells whether a slave can run here: its tasks run in
// process groups and namespaces, as users of their own (package process),
// and its input cache leans on Linux's flock, syncfs and boot id (package
// cache). The client commands of the same program run anywhere.
func CheckPlatform() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the slave runs on Linux only, not on %s", runtime.GOOS)
	}
	return nil
}
