package cli

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client/gotest"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/isolate/archive"
	"github.com/dist-test/dist_test/isolate/cas"
)

func goTestCmd(env *Env) *cobra.Command {
	var (
		c         conn
		o         gotest.Options
		server    string
		name      string
		junit     string
		jsonOut   string
		tail      int
		inputs    []string
		noInputs  bool
		goTestArg []string
	)
	cmd := &cobra.Command{
		Use:   "go-test [flags] [PACKAGES] [-- go test flags]",
		Short: "Run a Go module's tests on the cluster, split by test",
		Long: `Run the tests of a Go module's packages (./... by default) on the cluster, as
go test would, with each package's test binary built once here and its tests
split into tasks of about --target-seconds by the runtimes of earlier runs
(kept in --history). Each binary is archived with its package's folder and
testdata (or the files --inputs names), uploading only what changed.
Go test flags after "--": -race, -tags, -cover, -gcflags, ... go to the
build; -short, -count, -cpu, -parallel, -failfast, -shuffle and -timeout
(of each task, 10m by default) to the tests; -run selects the tests.
The summary names each failed test with its package and the end of its
output, and each flaky one (failed, then passed on a retry of --retries).
A failed build, a panic, a TestMain that fails, a binary that exits
non-zero with no failing test, and a listed test that never ran fail the
run too. Exits 0 when every package passed, 88 when some failed, and 1
when the tests could not be run.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if at := cmd.ArgsLenAtDash(); at >= 0 {
				goTestArg = args[at:]
				args = args[:at]
			}
			o.Packages = args
			return nil
		},
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if o.TargetSeconds <= 0 {
				return fmt.Errorf("--target-seconds %g: must be more than zero", o.TargetSeconds)
			}
			if o.Retries < 0 || o.Retries > protocol.MaxRetries {
				return fmt.Errorf("--retries %d: give 0 to %d", o.Retries, protocol.MaxRetries)
			}
			if tail < 0 || tail > 1000 {
				return fmt.Errorf("--tail %d: give 0 to 1000 lines", tail)
			}
			return parseGoTestFlags(goTestArg, &o)
		},
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(c, false)
			if err != nil {
				return err
			}
			if server == "" {
				server = s.cfg.Isolate.Server
			}
			if server == "" {
				return errors.New("no isolate server: set --isolate-server, ISOLATE_SERVER or [isolate] server")
			}
			user, password := s.cfg.Account()
			hc, err := httpclient.New(server, s.cfg.DistTest.CAFile, httpclient.Credentials{User: user, Password: password}, 64)
			if err != nil {
				return err
			}
			if o.History == "" {
				if o.History, err = gotest.DefaultHistoryFile(); err != nil {
					return err
				}
			}
			o.Inputs = append([]string{}, gotest.DefaultInputs...)
			if noInputs {
				o.Inputs = []string{}
			}
			o.Inputs = append(o.Inputs, inputs...)
			o.Logf = env.logf
			rep, err := gotest.Run(ctx, o, &cluster{s: s, cas: cas.NewClient(server, hc), name: name})
			if err != nil {
				return err
			}
			if err := writeReports(rep, junit, jsonOut); err != nil {
				return err
			}
			rep.WriteSummary(env.Stdout, tail)
			if rep.Failed() {
				return &ExitError{Code: ExitFailed}
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.Float64Var(&o.TargetSeconds, "target-seconds", 30, "runtime of each task to aim for, from the tests' runtimes of earlier runs")
	f.IntVar(&o.Retries, "retries", 0, "run a failed task again up to this many times; a test that then passes is flaky")
	f.StringArrayVar(&inputs, "inputs", nil, "glob of more files the tests read, relative to each package's folder, or to the module's when it starts with /; !GLOB leaves matches out (repeatable)")
	f.BoolVar(&noInputs, "no-inputs", false, "leave out the default inputs, the files of each package's folder and of its testdata tree")
	f.StringVar(&junit, "junit", "", "write JUnit XML (Surefire's, with flakyFailure for flaky tests) to this file")
	f.StringVar(&jsonOut, "json", "", "write the test2json events of all tests, as go test -json does, to this file")
	f.StringVar(&o.History, "history", "", "file of the tests' runtimes, which splits the next run (default: go-test-history.json in the user's cache folder)")
	f.IntVar(&tail, "tail", 10, "lines of each failed test's output to print in the summary")
	f.StringVarP(&name, "name", "n", "go-test", "job name prefix, made unique by the user, time and process id")
	f.StringVarP(&server, "isolate-server", "I", "", "URL of the isolate server (default $ISOLATE_SERVER or [isolate] server)")
	c.flags(cmd)
	return cmd
}

// writeReports writes the files asked for.
func writeReports(rep *gotest.Report, junit, jsonOut string) error {
	for _, out := range []struct {
		path  string
		write func(f *os.File) error
	}{
		{junit, func(f *os.File) error { return rep.WriteJUnit(f) }},
		{jsonOut, func(f *os.File) error { return rep.WriteJSON(f) }},
	} {
		if out.path == "" {
			continue
		}
		f, err := os.Create(out.path)
		if err != nil {
			return err
		}
		err = out.write(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("writing %s: %w", out.path, err)
		}
	}
	return nil
}

// Go test flags go-test takes after "--", as the build or the tests take
// them.
var (
	buildValueFlags = []string{"tags", "gcflags", "ldflags", "asmflags", "covermode", "coverpkg", "mod", "buildvcs", "pgo", "overlay", "modfile"}
	buildBoolFlags  = []string{"race", "cover", "trimpath", "msan", "asan"}
	testValueFlags  = []string{"count", "cpu", "parallel", "shuffle"}
	testBoolFlags   = []string{"short", "failfast"}
)

// parseGoTestFlags sorts go test flags into o: the build's, the tests',
// -run and -timeout.
func parseGoTestFlags(args []string, o *gotest.Options) error {
	o.Timeout = 10 * time.Minute
	o.ListPattern = "."
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			return fmt.Errorf("%q after --: go test flags only; name the packages before --", a)
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		isBool := contains(buildBoolFlags, name) || contains(testBoolFlags, name) || name == "v"
		known := isBool || contains(buildValueFlags, name) || contains(testValueFlags, name) || name == "run" || name == "timeout"
		if name == "json" {
			return errors.New("-json after --: give go-test --json FILE")
		}
		if !known {
			return fmt.Errorf("go test flag -%s is not one go-test passes on (build: -%s; tests: -%s, -run, -timeout)",
				name, strings.Join(append(buildBoolFlags, buildValueFlags...), ", -"), strings.Join(append(testBoolFlags, testValueFlags...), ", -"))
		}
		if !isBool && !hasValue {
			if i+1 == len(args) {
				return fmt.Errorf("flag -%s after -- needs a value", name)
			}
			i++
			value = args[i]
		}
		switch {
		case contains(buildBoolFlags, name):
			o.BuildFlags = append(o.BuildFlags, "-"+name+boolSuffix(hasValue, value))
		case contains(buildValueFlags, name):
			o.BuildFlags = append(o.BuildFlags, "-"+name+"="+value)
		case contains(testBoolFlags, name):
			o.TestFlags = append(o.TestFlags, "-test."+name+boolSuffix(hasValue, value))
		case contains(testValueFlags, name):
			o.TestFlags = append(o.TestFlags, "-test."+name+"="+value)
		case name == "v":
			// Always on: the output is read as test2json.
		case name == "run":
			o.ListPattern = value
		case name == "timeout":
			d, err := time.ParseDuration(value)
			if err != nil || d <= 0 {
				return fmt.Errorf("-timeout %q: want a duration such as 10m", value)
			}
			o.Timeout = d
		}
	}
	return nil
}

func contains(list []string, s string) bool { return slices.Contains(list, s) }

func boolSuffix(has bool, v string) string {
	if !has {
		return ""
	}
	return "=" + v
}

// cluster is the dist_test master and isolate server a go-test run uses.
type cluster struct {
	s    *session
	cas  *cas.Client
	name string
}

func (c *cluster) Archive(ctx context.Context, trees []archive.Tree) ([]string, error) {
	digests, st, err := archive.Trees(ctx, c.cas, trees, archive.BatchOptions{})
	if err != nil {
		return nil, err
	}
	c.s.env.logf("%s", st.Summary())
	return digests, nil
}

func (c *cluster) Run(ctx context.Context, specs []gotest.Spec) (gotest.JobRun, error) {
	s := c.s
	tasks := make([]protocol.Task, len(specs))
	output := map[string]string{} // the output artifact by description
	for i, sp := range specs {
		tasks[i] = protocol.Task{IsolateHash: sp.IsolateHash, Description: sp.Description, Timeout: sp.Timeout.Seconds(),
			MaxRetries: sp.MaxRetries, ArtifactGlobs: []string{sp.Output}}
		output[sp.Description] = sp.Output
	}
	user := s.user()
	id := makeJobID(c.name, user, s.env.now(), os.Getpid())
	if _, err := s.api.CreateJob(ctx, protocol.CreateJob{ID: id, Name: c.name, User: user, Tasks: tasks}); err != nil {
		return gotest.JobRun{}, err
	}
	if err := s.saveJobID(id); err != nil {
		s.env.logf("warning: cannot keep the job id for later commands: %v", err)
	}
	s.env.logf("Submitted job %s of %d tasks", id, len(tasks))
	s.env.logf("Watch your results at %s", s.dashboard(id))
	job, err := s.follow(ctx, id, watchOptions{}, s.newProgress())
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrInterrupted) {
			if _, cerr := s.api.Cancel(context.WithoutCancel(ctx), id); cerr != nil {
				s.env.logf("could not cancel job %s: %v", id, cerr)
			} else {
				s.env.logf("Canceled job %s", id)
			}
		}
		return gotest.JobRun{}, err
	}
	run := gotest.JobRun{ID: id}
	if job.FinishedAt != nil {
		run.Wall = job.FinishedAt.Sub(job.SubmittedAt)
	}
	atts, err := s.api.Tasks(ctx, id, "")
	if err != nil {
		return run, err
	}
	dir, err := os.MkdirTemp("", "dist_test-go-test-logs-")
	if err != nil {
		return run, err
	}
	defer os.RemoveAll(dir)
	var files []download
	for i, a := range atts {
		for _, l := range []struct{ link, suffix string }{{a.StdoutLink, ".stdout"}, {a.StderrLink, ".stderr"}, {a.ArtifactArchiveLink, ".zip"}} {
			if l.link != "" {
				files = append(files, download{l.link, filepath.Join(dir, strconv.Itoa(i)+l.suffix)})
			}
		}
	}
	for i, err := range s.downloadAll(ctx, files) {
		if err != nil {
			return run, fmt.Errorf("fetching %s: %w", filepath.Base(files[i].path), err)
		}
	}
	for i, a := range atts {
		out := gotest.Attempt{Description: a.Description, Number: a.Attempt, State: a.State, ExitCode: a.ExitCode,
			Error: a.Error, Duration: time.Duration(a.DurationSeconds * float64(time.Second))}
		stem := filepath.Join(dir, strconv.Itoa(i))
		out.Stdout, err = readZipped(stem+".zip", output[a.Description])
		if err != nil {
			// No artifact: what the failed run's stdout log holds.
			out.Stdout, _ = os.ReadFile(stem + ".stdout")
		}
		out.Stderr, _ = os.ReadFile(stem + ".stderr")
		run.Attempts = append(run.Attempts, out)
	}
	return run, nil
}

// readZipped reads one file of a zip archive.
func readZipped(zipPath, name string) ([]byte, error) {
	z, err := zip.OpenReader(zipPath)
	if err != nil {
		return nil, err
	}
	defer z.Close()
	f, err := z.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}
