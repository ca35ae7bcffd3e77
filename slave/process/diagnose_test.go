package process

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A command that cannot start is reported with what is missing, never as
// the kernel's bare "no such file or directory".
func TestRunSaysWhyACommandCannotStart(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string, mode os.FileMode) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	write("tools/run.sh", "#!/bin/sh\necho ran\n", 0o755)
	write("tools/noexec.sh", "#!/bin/sh\necho ran\n", 0o644)
	write("tools/py2.py", "#!/usr/bin/python2-dist-test-missing\nprint 'x'\n", 0o755)
	write("tools/envpy2.py", "#!/usr/bin/env  dist-test-python2-missing -u\nprint 'x'\n", 0o755)
	write("tools/envS.py", "#!/usr/bin/env -S PYTHONHASHSEED=0 dist-test-python2-missing -u\n", 0o755)
	write("tools/empty.sh", "#!\n", 0o755)
	write("tools/nonl.sh", "#!/bin/sh", 0o755)
	if err := os.Mkdir(filepath.Join(dir, "tools", "folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin"}

	cases := []struct {
		name string
		dir  string
		args []string
		want error
		says []string
	}{
		{"missing working folder", filepath.Join(dir, "build/isolate"), []string{"../../tools/run.sh"}, fs.ErrNotExist,
			[]string{"working folder", "build/isolate", "does not exist"}},
		{"missing command", dir, []string{"tools/gone.sh"}, fs.ErrNotExist,
			[]string{"command", "tools/gone.sh", "does not exist", "inputs"}},
		{"no execute bit", dir, []string{"tools/noexec.sh"}, fs.ErrPermission,
			[]string{"tools/noexec.sh", "is not executable", "0644", "execute bit"}},
		{"folder as command", dir, []string{"tools/folder"}, fs.ErrPermission,
			[]string{"tools/folder", "is a folder"}},
		{"missing interpreter", dir, []string{"tools/py2.py"}, fs.ErrNotExist,
			[]string{"interpreter /usr/bin/python2-dist-test-missing", "#!", "this slave does not have"}},
		{"missing interpreter through env", dir, []string{"tools/envpy2.py"}, fs.ErrNotExist,
			[]string{"dist-test-python2-missing is not in the PATH", "/usr/bin:/bin"}},
		{"env -S with assignments", dir, []string{"tools/envS.py"}, fs.ErrNotExist,
			[]string{"dist-test-python2-missing is not in the PATH"}},
		{"empty #! line", dir, []string{"tools/empty.sh"}, fs.ErrNotExist,
			[]string{"names no interpreter"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Run(t.Context(), Command{Args: c.args, Dir: c.dir, Env: env})
			if !errors.Is(err, c.want) {
				t.Fatalf("got error %v, want one wrapping %v", err, c.want)
			}
			for _, s := range c.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not say %q", err, s)
				}
			}
			if strings.Contains(err.Error(), "fork/exec") {
				t.Errorf("error %q is the exec's own, not the diagnosis", err)
			}
		})
	}

	// What is fine starts: a relative command from a subfolder, and a #!
	// line without a newline.
	out := filepath.Join(dir, "stdout")
	if err := os.MkdirAll(filepath.Join(dir, "build", "isolate"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"../../tools/run.sh"}, {"../../tools/nonl.sh"}} {
		res, err := Run(t.Context(), Command{Args: args, Dir: filepath.Join(dir, "build", "isolate"), Env: env, Stdout: out})
		if err != nil || res.ExitCode != 0 {
			t.Errorf("%v: got %+v, %v; want a clean run", args, res, err)
		}
	}
}
