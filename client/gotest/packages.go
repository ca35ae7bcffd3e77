package gotest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sync/errgroup"
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
// does not build gets its BuildError. One go command builds many packages
// much faster than one per package (it loads the module once and links
// in parallel), but it names binaries by package, so packages of the same
// name go to separate commands; a command that fails is done again one
// package at a time, parallel at once, to tell which failed and why.
func build(ctx context.Context, goTool, modDir, dir string, pkgs []*Package, flags []string, parallel int) error {
	var batches [][]*Package
	for _, p := range pkgs {
		if p.Failed() {
			continue
		}
		i := slices.IndexFunc(batches, func(b []*Package) bool {
			return !slices.ContainsFunc(b, func(q *Package) bool { return binaryName(q) == binaryName(p) })
		})
		if i < 0 {
			batches = append(batches, nil)
			i = len(batches) - 1
		}
		batches[i] = append(batches[i], p)
	}
	for i, b := range batches {
		out := filepath.Join(dir, "batch"+strconv.Itoa(i))
		args := append([]string{"test", "-c", "-o", out + string(filepath.Separator)}, flags...)
		for _, p := range b {
			args = append(args, p.ImportPath)
		}
		cmd := exec.CommandContext(ctx, goTool, args...)
		cmd.Dir = modDir
		_, err := cmd.CombinedOutput()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var again []*Package
		for _, p := range b {
			bin := filepath.Join(out, binaryName(p))
			if _, serr := os.Stat(bin); err == nil && serr == nil {
				p.Binary = bin
			} else {
				again = append(again, p)
			}
		}
		if err := buildEach(ctx, goTool, modDir, filepath.Join(dir, "each"+strconv.Itoa(i)), again, flags, parallel); err != nil {
			return err
		}
	}
	return nil
}

// binaryName is the name go test -c gives a package's test binary.
func binaryName(p *Package) string {
	elem := path.Base(p.ImportPath)
	if len(elem) > 1 && elem[0] == 'v' && strings.Trim(elem[1:], "0123456789") == "" {
		// A major version suffix: go names the binary after the element before.
		elem = path.Base(path.Dir(p.ImportPath))
	}
	return elem + ".test"
}

// buildEach builds packages one per go command, parallel at a time.
func buildEach(ctx context.Context, goTool, modDir, dir string, pkgs []*Package, flags []string, parallel int) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(parallel, 1))
	for i, p := range pkgs {
		g.Go(func() error {
			bin := filepath.Join(dir, strconv.Itoa(i), binaryName(p))
			args := append([]string{"test", "-c", "-o", bin}, flags...)
			cmd := exec.CommandContext(gctx, goTool, append(args, p.ImportPath)...)
			cmd.Dir = modDir
			out, err := cmd.CombinedOutput()
			if gctx.Err() != nil {
				return gctx.Err()
			}
			if err != nil {
				p.BuildError = strings.TrimSpace(string(out))
				if p.BuildError == "" {
					p.BuildError = err.Error()
				}
				return nil
			}
			p.Binary = bin
			return nil
		})
	}
	return g.Wait()
}

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
