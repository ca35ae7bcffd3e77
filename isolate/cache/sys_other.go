//go:build !linux

package cache

import (
	"errors"
	"io/fs"
	"os"
)

// errPlatform: what the cache leans on (see sys_linux.go) is Linux's. The
// slave, its only user, refuses to start elsewhere; Open says so too.
var errPlatform = errors.New("the input cache runs on Linux only")

func checkPlatform() error { return errPlatform }

func flock(*os.File) error                 { return errPlatform }
func funlock(*os.File)                     {}
func tryFlock(*os.File) (bool, error)      { return false, errPlatform }
func (c *Cache) syncFS() error             { return errPlatform }
func readBootID() (string, error)          { return "", errPlatform }
func changeTime(fs.FileInfo) (int64, bool) { return 0, false }
func ownerOf(fs.FileInfo) (int, bool)      { return 0, false }
