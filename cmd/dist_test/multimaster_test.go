package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/testenv"
)

// SQLite serves one master: a second master, or a `dist_test local`, on
// the data folder of a running master refuses to start, names the holder
// and points at MySQL; once the first has stopped, the folder is free again.
func TestSQLiteOneMaster(t *testing.T) {
	dir := t.TempDir()
	bs, tube := testenv.Beanstalk(t)
	cnf := filepath.Join(dir, "dist_test.cnf")
	text := "[slave]\ntoken = " + stackToken + "\n[beanstalk]\nhost = " + bs + "\ntube = " + tube + "\n"
	if err := os.WriteFile(cnf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "DIST_TEST_CNF="+cnf)
	data := filepath.Join(dir, "data")
	first := startProc(t, "master", env, true, "master", "--data-dir", data)
	cl := &cluster{t: t, dir: dir, env: env}
	pid := first.cmd.Process.Pid
	for _, args := range [][]string{
		{"master", "--listen", "127.0.0.1:0", "--data-dir", data},
		{"local", "--listen", "127.0.0.1:0", "--data-dir", data, "--slaves", "1"},
	} {
		code, _, stderr := cl.run(args...)
		want := []string{"dist_test.db is in use by process " + strconv.Itoa(pid), "SQLite serves one master", "[mysql] host"}
		for _, w := range want {
			if code == 0 || !strings.Contains(stderr, w) {
				t.Errorf("%s: exit %d, stderr:\n%s\nwant it to say %q", args[0], code, stderr, w)
			}
		}
	}
	first.stop()
	second := startProc(t, "master", env, true, "master", "--data-dir", data)
	second.stop()
}
