package gotest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
)

// Package is one package of the run with tests to run.
type Package struct {
	ImportPath string
	Dir        string // absolute
	Name       string
	Binary     string   // the built test binary; "" when the build failed
	BuildError string   // the go command's output when the build failed
	Tests      []string // listed by the binary, in its order
	ListError  string   // why the tests could not be listed
}

// Failed tells whether the package could not be built or listed.
func (p *Package) Failed() bool { return p.BuildError != "" || p.ListError != "" }

// module is the module whose packages the run tests.
type module struct {
	Path, Dir string
}

type listed struct {
	ImportPath   string
	Name         string
	Dir          string
	TestGoFiles  []string
	XTestGoFiles []string
	Module       *module
	Error        *struct{ Err string }
}

// listPackages finds the packages the patterns name that have tests, and
// the module they belong to (the main module of dir).
func listPackages(ctx context.Context, goTool, dir string, patterns []string) ([]*Package, module, error) {
	args := append([]string{"list", "-e", "-json=ImportPath,Name,Dir,TestGoFiles,XTestGoFiles,Module,Error", "--"}, patterns...)
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, module{}, fmt.Errorf("go list: %v\n%s", err, stderr.Bytes())
	}
	var (
		pkgs []*Package
		mod  module
	)
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var l listed
		if err := dec.Decode(&l); err != nil {
			return nil, module{}, fmt.Errorf("go list: %w", err)
		}
		if l.Module != nil && mod.Dir == "" {
			mod = *l.Module
		}
		p := &Package{ImportPath: l.ImportPath, Name: l.Name, Dir: l.Dir}
		switch {
		case l.Error != nil:
			// A package that does not load is a build failure: go test
			// would fail it too.
			p.BuildError = l.Error.Err
		case len(l.TestGoFiles)+len(l.XTestGoFiles) == 0:
			continue // go test says "no test files" and runs nothing
		}
		pkgs = append(pkgs, p)
	}
	if mod.Dir == "" {
		return nil, module{}, errors.New("no package of a module matched: run go-test in a Go module")
	}
	return pkgs, mod, nil
}

// build builds the test binary of each package into dir; a package that
// does not build gets its BuildError. It runs go test itself, with an
// -exec program that copies each binary out rather than running it: go
// test links its binaries once into the build cache and reuses them
// while nothing changed, where go test -c links them every time, and it
// builds many packages in one command, loading the module once.
func build(ctx context.Context, goTool, modDir, dir string, pkgs []*Package, flags []string) error {
	var todo []*Package
	for _, p := range pkgs {
		if !p.Failed() {
			todo = append(todo, p)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	out := filepath.Join(dir, "bin")
	if err := os.Mkdir(out, 0o755); err != nil {
		return err
	}
	script := filepath.Join(dir, "copy-test-binary")
	// $1 is the binary; the folder it runs in is its package's.
	body := "#!/bin/sh\nd=$(mktemp -d " + shQuote(out) + "/b.XXXXXX) && cp \"$1\" \"$d/\" && pwd -P > \"$d/dir\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return err
	}
	args := append([]string{"test", "-json", "-count=1", "-run=^$", "-exec=" + script}, flags...)
	for _, p := range todo {
		args = append(args, p.ImportPath)
	}
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = modDir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, _ := cmd.Output() // failed builds are read from the events
	if ctx.Err() != nil {
		return ctx.Err()
	}
	built := map[string]string{} // binary by package folder
	entries, _ := os.ReadDir(out)
	for _, e := range entries {
		d := filepath.Join(out, e.Name())
		where, err := os.ReadFile(filepath.Join(d, "dir"))
		if err != nil {
			continue
		}
		bins, _ := filepath.Glob(filepath.Join(d, "*.test"))
		if len(bins) == 1 {
			built[strings.TrimSpace(string(where))] = bins[0]
		}
	}
	failures := buildFailures(stdout)
	for _, p := range todo {
		real, err := filepath.EvalSymlinks(p.Dir)
		if err != nil {
			real = p.Dir
		}
		if bin, ok := built[real]; ok {
			p.Binary = bin
			continue
		}
		p.BuildError = cmp.Or(strings.TrimSpace(failures[p.ImportPath]), "no test binary came out of go test\n"+lastLines(stderr.String(), 20))
	}
	return nil
}

// buildFailures reads what go test -json says of the packages it could
// not build, by import path.
func buildFailures(jsonl []byte) map[string]string {
	out := map[string]string{}
	dec := json.NewDecoder(bytes.NewReader(jsonl))
	for {
		var e struct {
			ImportPath, Package, Action, Output string
		}
		if dec.Decode(&e) != nil {
			return out
		}
		switch {
		case e.Action == "build-output":
			pkg, _, _ := strings.Cut(e.ImportPath, " ")
			out[pkg] += e.Output
		case e.Action == "output" && e.Package != "" && strings.Contains(e.Output, "[setup failed]"):
			out[e.Package] += e.Output
		}
	}
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// listTests asks each built binary for its tests, examples and fuzz
// targets matching pattern, as go test would run them, in the package's
// folder.
func listTests(ctx context.Context, pkgs []*Package, pattern string, parallel int) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, max(parallel, 1))
	for _, p := range pkgs {
		if p.Binary == "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cmd := exec.CommandContext(ctx, p.Binary, "-test.list", pattern)
			cmd.Dir = p.Dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				p.ListError = strings.TrimSpace(fmt.Sprintf("listing the tests: %v\n%s%s", err, lastLines(string(out), 10), lastLines(stderr.String(), 10)))
				return
			}
			for line := range strings.SplitSeq(string(out), "\n") {
				if runnable(line) {
					p.Tests = append(p.Tests, line)
				}
			}
		}()
	}
	wg.Wait()
}

// runnable tells the names -test.run runs of the lines -test.list prints
// (which also names benchmarks, and whatever TestMain printed).
func runnable(name string) bool {
	for _, prefix := range []string{"Test", "Example", "Fuzz"} {
		if strings.HasPrefix(name, prefix) && name == strings.TrimSpace(name) && !strings.ContainsAny(name, " \t/") {
			return true
		}
	}
	return false
}

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return ""
	}
	return strings.Join(lines, "\n") + "\n"
}
