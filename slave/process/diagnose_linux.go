package process

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxShebang is how much of a script's first line the kernel reads (and so
// how much of it matters).
const maxShebang = 256

// checkStart tells, before the exec, why the command at path could not
// start: a missing working folder, a missing command file, a folder in its
// place, a file without an execute bit, or a #! line naming an interpreter
// the machine lacks. The kernel reports all of these as one bare "no such
// file or directory" or "permission denied"; the errors here name the
// culprit. The errors wrap fs.ErrNotExist or fs.ErrPermission as the exec
// would have.
func checkStart(c Command, path string) error {
	if c.Dir != "" {
		fi, err := os.Stat(c.Dir)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("working folder %s does not exist: %w", c.Dir, fs.ErrNotExist)
		case err != nil:
			return fmt.Errorf("working folder %s: %w", c.Dir, err)
		case !fi.IsDir():
			return fmt.Errorf("working folder %s is not a folder: %w", c.Dir, fs.ErrNotExist)
		case unix.Access(c.Dir, unix.X_OK) != nil:
			return fmt.Errorf("working folder %s may not be entered by the task's user: %w", c.Dir, fs.ErrPermission)
		}
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("command %s does not exist (is it among the task's inputs, relative to the working folder %s?): %w",
			path, c.Dir, fs.ErrNotExist)
	case err != nil:
		return fmt.Errorf("command %s: %w", path, err)
	case fi.IsDir():
		return fmt.Errorf("command %s is a folder, not a program: %w", path, fs.ErrPermission)
	case fi.Mode().Perm()&0o111 == 0:
		return fmt.Errorf("command %s is not executable (mode %#o): give it an execute bit before archiving it, "+
			"or run it through its interpreter (for example [\"sh\", %q]): %w", path, fi.Mode().Perm(), c.Args[0], fs.ErrPermission)
	}
	return checkInterpreter(c, path)
}

// checkInterpreter reads the #! line of a script and checks that the
// program it names exists, following "/usr/bin/env NAME" through the PATH
// the command will see.
func checkInterpreter(c Command, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // the exec will say; nothing more to tell
	}
	defer f.Close()
	head := make([]byte, maxShebang)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	if !bytes.HasPrefix(head, []byte("#!")) {
		return nil
	}
	line, _, _ := bytes.Cut(head[2:], []byte("\n"))
	fields := strings.Fields(string(line))
	if len(fields) == 0 {
		return fmt.Errorf("command %s starts with #! but names no interpreter: %w", path, fs.ErrNotExist)
	}
	interp := fields[0]
	if fi, err := os.Stat(interp); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("command %s names the interpreter %s in its #! line, which this slave does not have: %w",
			path, interp, fs.ErrNotExist)
	}
	if filepath.Base(interp) != "env" {
		return nil
	}
	// "#!/usr/bin/env [-S] [-i] [NAME=VALUE]... PROGRAM": the kernel passes
	// everything after env as one argument; -S splits it.
	for _, a := range fields[1:] {
		if strings.HasPrefix(a, "-") || strings.Contains(a, "=") {
			continue
		}
		if _, err := lookPath(c, a); err != nil {
			return fmt.Errorf("command %s runs %s through %q in its #! line, and %s is not in the PATH %q of this slave: %w",
				path, a, "#!"+strings.TrimSpace(string(line)), a, pathOf(c), fs.ErrNotExist)
		}
		return nil
	}
	return nil
}

// pathOf is the PATH the command will see.
func pathOf(c Command) string {
	if c.Env != nil {
		return envValue(c.Env, "PATH")
	}
	return os.Getenv("PATH")
}

// lookPath finds name, which holds no slash, in the PATH the command will
// see; relative PATH entries are taken from the command's folder.
func lookPath(c Command, name string) (string, error) {
	pathList := pathOf(c)
	for _, dir := range filepath.SplitList(pathList) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if !filepath.IsAbs(p) && c.Dir != "" {
			p = filepath.Join(c.Dir, p)
		}
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			if !strings.Contains(p, "/") {
				p = "./" + p
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("command %q not found in PATH %q: %w", name, pathList, exec.ErrNotFound)
}
