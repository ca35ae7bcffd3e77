package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// kuduTree writes a build tree shaped like Kudu's: the test runner in
// tools/, one .isolate per test in build/isolate/ written as pprint does,
// which lists no file beside itself (so the manifest's relative_cwd is a
// folder no input lies in), and a luci .isolated.gen.json per test.
func kuduTree(t *testing.T, root string, tests map[string]string) []string {
	t.Helper()
	files := map[string]struct {
		body string
		mode os.FileMode
	}{
		// Runs from build/isolate, as Kudu's run_dist_test.py does.
		"tools/run.sh": {"#!/bin/sh\necho \"running $1 in $(basename \"$(dirname \"$PWD\")\")/$(basename \"$PWD\")\"\n" +
			"[ -f ../../build/bin/$1 ] || { echo \"no binary $1\" >&2; exit 2; }\nexec sh ../../build/bin/$1\n", 0o755},
		"tools/py2.py":           {"#!/usr/bin/env dist-test-python2-missing\nprint 'hello'\n", 0o755},
		"tools/noexec.sh":        {"#!/bin/sh\necho never\n", 0o644},
		"build/bin/a-test":       {"echo a passed\n", 0o644},
		"build/bin/b-test":       {"echo b failed >&2; exit 1\n", 0o644},
		"build/bin/unused":       {"", 0o644},
		"build/isolate/.gitkeep": {"", 0o644}, // not listed: the folder is not among the inputs
	}
	for name, f := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	var gens []string
	for name, command := range tests {
		isolate := fmt.Sprintf("{'variables': {'command': %s,\n               'files': ['../../tools/',\n                         '../../build/bin/']}}\n", command)
		base := filepath.Join(root, "build", "isolate", name)
		if err := os.WriteFile(base+".isolate", []byte(isolate), 0o644); err != nil {
			t.Fatal(err)
		}
		gen := fmt.Sprintf(`{"args": ["-i", %q, "-s", %q], "dir": %q, "name": %q, "version": 1}`,
			base+".isolate", base+".isolated", root, name)
		if err := os.WriteFile(base+".isolated.gen.json", []byte(gen), 0o644); err != nil {
			t.Fatal(err)
		}
		gens = append(gens, base+".isolated.gen.json")
	}
	return gens
}

// Kudu's frontend, step by step, with dist_test standing in for both
// programs it runs: `isolate batcharchive` found on PATH and
// `$DIST_TEST_HOME/bin/client`, both symlinks to the binary. The passing
// test passes although its working folder holds no input; a script whose
// #! interpreter is missing and one without an execute bit fail with a
// stderr that says so.
func TestKuduFrontend(t *testing.T) {
	c := newCluster(t, 2)
	home := filepath.Join(c.dir, "dist_test_home")
	if err := os.MkdirAll(filepath.Join(home, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"isolate", "client"} {
		if err := os.Symlink(binary, filepath.Join(home, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	root := filepath.Join(c.dir, "kudu")
	gens := kuduTree(t, root, map[string]string{
		"a-test":       `['../../tools/run.sh', 'a-test']`,
		"b-test":       `['../../tools/run.sh', 'b-test']`,
		"python2-test": `['../../tools/py2.py']`,
		"noexec-test":  `['../../tools/noexec.sh']`,
	})
	// As dist_test.py runs it: whatever `isolate` is on PATH.
	t.Setenv("PATH", filepath.Join(home, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"))
	env := append(append([]string{}, c.env...), "PATH="+os.Getenv("PATH"), "DIST_TEST_HOME="+home)
	run := func(name string, args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(name, args...)
		cmd.Env, cmd.Dir = env, root
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode(), out.String(), errb.String()
		} else if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return 0, out.String(), errb.String()
	}

	dump := filepath.Join(c.dir, "dump.json")
	code, _, stderr := run("isolate", append([]string{"batcharchive", "-isolate-server=" + c.url, "-dump-json=" + dump, "--"}, gens...)...)
	if code != 0 {
		t.Fatalf("isolate batcharchive exited %d: %s", code, stderr)
	}
	var hashes map[string]string
	if b, err := os.ReadFile(dump); err != nil || json.Unmarshal(b, &hashes) != nil || len(hashes) != 4 {
		t.Fatalf("dump %s: %v", b, err)
	}
	var tasks []jobTask
	for name, h := range hashes {
		tasks = append(tasks, jobTask{IsolateHash: h, Description: name, Timeout: 60})
	}
	job := c.writeJob("tasks.json", tasks)

	client := filepath.Join(home, "bin", "client")
	code, stdout, stderr := run(client, "submit", "--no-wait", job)
	if code != 0 {
		t.Fatalf("client submit --no-wait exited %d: %s %s", code, stdout, stderr)
	}
	code, stdout, stderr = run(client, "watch")
	if code != 88 || !strings.Contains(stdout, "4/4 tests complete (3 failed)") {
		t.Fatalf("client watch exited %d, want 88 with 3 failed:\n%s\n%s\nlocal: %s", code, stdout, stderr, c.log)
	}
	out := filepath.Join(c.dir, "results")
	if code, _, stderr := run(client, "fetch", "--logs", "-d", out); code != 0 {
		t.Fatalf("client fetch exited %d: %s", code, stderr)
	}
	logs := map[string]string{}
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		b, _ := os.ReadFile(filepath.Join(out, e.Name()))
		for _, name := range []string{"a-test", "b-test", "python2-test", "noexec-test"} {
			if strings.Contains(e.Name(), "."+strings.ReplaceAll(name, "-", "_")+".") {
				logs[name+filepath.Ext(e.Name())] += string(b)
			}
		}
	}
	if _, ok := logs["a-test.stderr"]; ok {
		t.Errorf("the passing test left logs: %v", logs)
	}
	for name, want := range map[string][]string{
		"b-test.stdout":       {"running b-test in build/isolate"},
		"b-test.stderr":       {"b failed"},
		"python2-test.stderr": {"dist-test-python2-missing is not in the PATH", "#!/usr/bin/env dist-test-python2-missing"},
		"noexec-test.stderr":  {"tools/noexec.sh is not executable", "execute bit"},
	} {
		for _, w := range want {
			if !strings.Contains(logs[name], w) {
				t.Errorf("%s does not say %q:\n%s", name, w, logs[name])
			}
		}
		if strings.Contains(logs[name], "fork/exec") {
			t.Errorf("%s gives the exec's bare error:\n%s", name, logs[name])
		}
	}
}

// `make install` lays out the binary with the two names the original's
// frontends run, and both answer as what they stand in for.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	prefix := t.TempDir()
	cmd := exec.Command("make", "-C", "../..", "install", "PREFIX="+prefix, "BIN="+filepath.Join(t.TempDir(), "dist_test"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make install: %v\n%s", err, out)
	}
	for name, want := range map[string]string{
		"isolate": "batcharchive", // `isolate --help` lists the isolate commands
		"client":  "submit",
	} {
		link, err := os.Readlink(filepath.Join(prefix, "bin", name))
		if err != nil || link != "dist_test" {
			t.Errorf("%s: link %q, %v; want a symlink to dist_test", name, link, err)
		}
		out, err := exec.Command(filepath.Join(prefix, "bin", name), "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%s --help: %v\n%s", name, err, out)
		}
	}
	out, _ := exec.Command(filepath.Join(prefix, "bin", "isolate"), "--help").CombinedOutput()
	if strings.Contains(string(out), "submit") {
		t.Errorf("isolate --help lists the client's commands:\n%s", out)
	}
}
