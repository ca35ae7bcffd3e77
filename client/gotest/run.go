package gotest

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/dist-test/dist_test/isolate/archive"
)

// Cluster is what a run needs of dist_test: putting task inputs in the
// isolate server, and running tasks to the end.
type Cluster interface {
	// Archive uploads the trees (only what the server lacks) and returns
	// their manifests' digests in order.
	Archive(ctx context.Context, trees []archive.Tree) ([]string, error)
	// Run submits the tasks as one job, waits for it to finish, and
	// returns every attempt of every task with its logs.
	Run(ctx context.Context, tasks []Spec) (JobRun, error)
}

// Spec is a task to submit.
type Spec struct {
	IsolateHash string
	Description string
	Timeout     time.Duration
	MaxRetries  int
	// Output is the artifact, relative to the tree's root, that holds
	// the test2json output: Attempt.Stdout is read from it.
	Output string
}

// JobRun is what became of a job.
type JobRun struct {
	ID       string
	Wall     time.Duration // from submission to the end
	Attempts []Attempt
}

// Options say what a run tests, and how.
type Options struct {
	Dir        string   // in the module; the current folder when ""
	Packages   []string // patterns, as go test takes them; ./... when none
	BuildFlags []string // for go test -c: -race, -tags=..., -cover, ...
	TestFlags  []string // for the binaries: -test.short, -test.count=1, ...
	// ListPattern selects the tests to list (go test's -run); "." for all.
	ListPattern string
	// Inputs are the globs of the files each package's tests read (see
	// inputs); DefaultInputs when nil.
	Inputs        []string
	TargetSeconds float64
	Retries       int
	Timeout       time.Duration // of one task
	History       string        // the history file
	Go            string        // the go command; "go" when ""
	Logf          func(format string, args ...any)
}

// DefaultInputs are the files archived with each test binary: the
// package's folder (not the packages below it) and its testdata tree.
var DefaultInputs = []string{"*", "testdata/**"}

// Run tests the packages on the cluster and returns the report.
func Run(ctx context.Context, o Options, c Cluster) (*Report, error) {
	if o.Go == "" {
		o.Go = "go"
	}
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if len(o.Packages) == 0 {
		o.Packages = []string{"./..."}
	}
	if o.ListPattern == "" {
		o.ListPattern = "."
	}
	if o.TargetSeconds <= 0 {
		return nil, fmt.Errorf("the target runtime of a task must be more than zero")
	}
	start := time.Now()
	pkgs, mod, err := listPackages(ctx, o.Go, o.Dir, o.Packages)
	if err != nil {
		return nil, err
	}
	if len(pkgs) == 0 {
		return nil, fmt.Errorf("no package with tests matches %s", strings.Join(o.Packages, " "))
	}
	bins, err := os.MkdirTemp("", "dist_test-go-test-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(bins)
	o.Logf("Building the test binaries of %d packages", len(pkgs))
	if err := build(ctx, o.Go, mod.Dir, bins, pkgs, o.BuildFlags); err != nil {
		return nil, err
	}
	built := time.Now()
	listTests(ctx, pkgs, o.ListPattern, runtime.GOMAXPROCS(0))
	o.Logf("Built the test binaries in %s, listed their tests in %s", built.Sub(start).Round(time.Millisecond), time.Since(built).Round(time.Millisecond))
	h, err := LoadHistory(o.History)
	if err != nil {
		return nil, err
	}
	tasks := split(pkgs, h, o.TargetSeconds)
	rep := &Report{Started: start}
	if len(tasks) > 0 {
		trees, err := treesOf(tasks, mod.Dir, o)
		if err != nil {
			return nil, err
		}
		archiving := time.Now()
		digests, err := c.Archive(ctx, trees)
		if err != nil {
			return nil, err
		}
		o.Logf("Archived the inputs of %d tasks in %s", len(tasks), time.Since(archiving).Round(time.Millisecond))
		specs := make([]Spec, len(tasks))
		for i, t := range tasks {
			specs[i] = Spec{IsolateHash: digests[i], Description: t.Description, Timeout: o.Timeout + time.Minute,
				MaxRetries: o.Retries, Output: OutputArtifact(trees[i])}
		}
		t2j, err := test2json(ctx, o.Go)
		if err != nil {
			return nil, err
		}
		submitted := time.Now()
		run, err := c.Run(ctx, specs)
		if err != nil {
			return nil, err
		}
		rep.JobID, rep.Wall = run.ID, run.Wall
		for _, a := range run.Attempts {
			rep.Busy += a.Duration
			rep.Longest = max(rep.Longest, a.Duration)
		}
		o.Logf("Ran the job and fetched its outputs in %s", time.Since(submitted).Round(time.Millisecond))
		judging := time.Now()
		if err := rep.judge(ctx, t2j, pkgs, tasks, run.Attempts); err != nil {
			return nil, err
		}
		o.Logf("Read the output of %d attempts in %s", len(run.Attempts), time.Since(judging).Round(time.Millisecond))
	} else {
		rep.judge(ctx, "", pkgs, nil, nil)
	}
	rep.Tasks = len(tasks)
	rep.record(h)
	if err := h.Save(o.History); err != nil {
		o.Logf("warning: cannot keep the tests' runtimes for the next split: %v", err)
	}
	return rep, nil
}

// treesOf builds the input tree of each task: its package's binary and
// inputs, rooted at the module's folder so that tests that climb out of
// their folder (within --inputs) find what they read where it was.
func treesOf(tasks []Task, modDir string, o Options) ([]archive.Tree, error) {
	globs := o.Inputs
	if globs == nil {
		globs = DefaultInputs
	}
	files := map[*Package][]string{}
	trees := make([]archive.Tree, len(tasks))
	for i, t := range tasks {
		p := t.Pkg
		rel, err := filepath.Rel(modDir, p.Dir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("package %s is not in the module's folder %s", p.ImportPath, modDir)
		}
		rel = filepath.ToSlash(rel)
		if _, ok := files[p]; !ok {
			paths, err := inputs(modDir, rel, globs)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.ImportPath, err)
			}
			files[p] = paths
		}
		bin := path.Join(rel, ".dist_test", filepath.Base(p.Binary))
		timeout := fmt.Sprintf("-test.timeout=%s", o.Timeout)
		cmd := []string{"sh", "-c", runScript, "./" + path.Join(".dist_test", filepath.Base(p.Binary)), "-test.v=test2json", timeout}
		cmd = append(cmd, t.runFlags(o.ListPattern)...)
		cmd = append(cmd, o.TestFlags...)
		trees[i] = archive.Tree{Name: t.Description, Root: modDir, Paths: files[p],
			Extra: map[string]string{bin: p.Binary}, Command: cmd, RelativeCwd: rootRel(rel)}
	}
	return trees, nil
}

// runScript runs the binary ($0) with its arguments, its output kept in
// outputFile (an artifact: slaves keep the logs of failed runs only) and
// copied to stdout for people reading a failed task's log.
const runScript = `"$0" "$@" >` + outputFile + `; s=$?; cat ` + outputFile + `; exit $s`

// outputFile is where a task's test2json output is kept, relative to its
// package's folder.
const outputFile = ".dist_test/go-test.out"

// OutputArtifact is the artifact of a task's test2json output, relative
// to its tree's root.
func OutputArtifact(tree archive.Tree) string {
	return path.Join(tree.RelativeCwd, outputFile)
}

func rootRel(rel string) string {
	if rel == "." {
		return ""
	}
	return rel
}

// inputs are the module's files that globs match, as paths relative to
// the module's folder. A glob is relative to the package's folder pkgRel,
// or to the module's folder when it starts with "/"; one that starts with
// "!" takes its matches out of what the globs before it matched.
func inputs(modDir, pkgRel string, globs []string) ([]string, error) {
	fsys := os.DirFS(modDir)
	keep := map[string]bool{}
	for _, g := range globs {
		pattern, drop := strings.CutPrefix(g, "!")
		if rooted, ok := strings.CutPrefix(pattern, "/"); ok {
			pattern = path.Clean(rooted)
		} else {
			pattern = path.Clean(path.Join(pkgRel, pattern))
		}
		if pattern == ".." || strings.HasPrefix(pattern, "../") {
			return nil, fmt.Errorf("--inputs %s leads out of the module's folder", g)
		}
		if !doublestar.ValidatePattern(pattern) {
			return nil, fmt.Errorf("--inputs %s: not a valid pattern", g)
		}
		matches, err := doublestar.Glob(fsys, pattern, doublestar.WithFilesOnly())
		if err != nil {
			return nil, fmt.Errorf("--inputs %s: %w", g, err)
		}
		for _, m := range matches {
			if drop {
				delete(keep, m)
			} else if !inDotDistTest(m) {
				keep[m] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(keep)), nil
}

// inDotDistTest tells paths in a package's .dist_test folder, where the
// tree puts the binary.
func inDotDistTest(p string) bool {
	return slices.Contains(strings.Split(p, "/"), ".dist_test")
}
