// Package cli holds the user commands of dist_test: submit, watch, cancel
// and fetch with the flags, output and exit codes of the original Python
// client, which CI scripts depend on, plus status, jobs and retry.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dist-test/dist_test/client"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/httpclient"
)

// ExitFailed is the exit code of submit and watch when some group of
// tasks failed; CI scripts test for it. 0 means every group passed, 1 any
// other trouble.
const ExitFailed = 88

// Env is what the commands use of the world outside, so that tests can
// supply their own.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string // nil: os.Getenv
	ConfigPath     *string             // set by the root --config flag; nil or "": the default file
	Now            func() time.Time    // nil: time.Now
	IsTerminal     func(io.Writer) bool
	// HTTPClient carries the requests to the master and the downloads;
	// nil: a default client.
	HTTPClient *http.Client
	// Interrupts delivers the Ctrl-C presses that come after the first,
	// which ends the command's context with ErrInterrupted: submit, asked
	// to stop, cancels its job unless a second one comes. nil: none come.
	Interrupts <-chan os.Signal
}

// ErrInterrupted is the cause of a command's context ended by Ctrl-C.
// Commands exit ExitInterrupted for it.
var ErrInterrupted = errors.New("interrupted")

// ExitInterrupted is the exit code after Ctrl-C, as shells report a
// process ended by SIGINT.
const ExitInterrupted = 130

// ExitError ends the program with Code. A nil Err means there is nothing
// to print: the command already said what happened (a job with failed
// tests exits 88 that way).
type ExitError struct {
	Code int
	Err  error
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// ExitCode is the process exit code for the error a command returned: 0
// for nil, the code of an ExitError, and 1 for anything else (usage errors
// included).
func ExitCode(err error) int {
	if err == nil {
		return 0
	}
	var e *ExitError
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, ErrInterrupted) {
		return ExitInterrupted
	}
	return 1
}

// Report prints err to w as "dist_test: <err>" unless it is an ExitError
// with nothing to say, and returns the exit code. Use it in main with a
// root command that silences cobra's own error printing.
func Report(w io.Writer, err error) int {
	var e *ExitError
	if err != nil && !(errors.As(err, &e) && e.Err == nil) {
		fmt.Fprintf(w, "dist_test: %v\n", err)
	}
	return ExitCode(err)
}

// IsTerminal reports whether w is a terminal; it suits Env.IsTerminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Commands returns the user commands, to be added to the root command.
func Commands(env *Env) []*cobra.Command {
	return []*cobra.Command{
		submitCmd(env), watchCmd(env), cancelCmd(env), fetchCmd(env),
		statusCmd(env), jobsCmd(env), tasksCmd(env), retryCmd(env), drainCmd(env),
	}
}

func (e *Env) getenv(k string) string {
	if e.Getenv == nil {
		return os.Getenv(k)
	}
	return e.Getenv(k)
}

func (e *Env) now() time.Time {
	if e.Now == nil {
		return time.Now()
	}
	return e.Now()
}

func (e *Env) terminal(w io.Writer) bool { return e.IsTerminal != nil && e.IsTerminal(w) }

func (e *Env) logf(format string, args ...any) {
	fmt.Fprintf(e.Stderr, format+"\n", args...)
}

// session is what one command run works with: its configuration and a
// client of the master.
type session struct {
	env *Env
	cfg *config.Config
	api *client.Client
}

// LoadConfig reads the configuration (environment > file > default) and
// warns on stderr of each key of the file that nothing reads, with the
// known key closest to it: every command that reads the file, client or
// server, warns the same way.
func (e *Env) LoadConfig() (*config.Config, error) {
	path := ""
	if e.ConfigPath != nil {
		path = *e.ConfigPath
	}
	cfg, err := config.Load(path, e.getenv)
	if err != nil {
		return nil, err
	}
	for _, k := range cfg.Unknown() {
		section, name, _ := strings.Cut(k, ".")
		hint := ""
		if near := config.Closest(k); near != "" {
			_, n, _ := strings.Cut(near, ".")
			hint = fmt.Sprintf(" (did you mean %s?)", n)
		}
		e.logf("warning: %s: unknown key [%s] %s is ignored%s", cfg.File(), section, name, hint)
	}
	return cfg, nil
}

// conn are the flags of every command that talks to the master.
type conn struct {
	master   string
	retryFor time.Duration
}

func (c *conn) flags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&c.master, "master", "", "URL of the master (overrides DIST_TEST_MASTER and the configuration file)")
	cmd.Flags().DurationVar(&c.retryFor, "retry-for", 0, "keep retrying a master that does not answer for this long, e.g. 10m (default: 10 tries over about 50 s)")
}

// open loads the configuration (flag > environment > file > default) and
// makes a client of the master. A readOnly command gives up at once when
// nothing listens at the master's address.
func (e *Env) open(c conn, readOnly bool) (*session, error) {
	if c.retryFor < 0 {
		return nil, fmt.Errorf("--retry-for %s: must not be negative", c.retryFor)
	}
	cfg, err := e.LoadConfig()
	if err != nil {
		return nil, err
	}
	masterFlag := c.master
	if masterFlag != "" {
		if err := config.CheckURL(masterFlag); err != nil {
			return nil, fmt.Errorf("--master %q: %w", masterFlag, err)
		}
		cfg.DistTest.Master = masterFlag
	}
	if cfg.DistTest.Master == "" {
		where := "~/.dist_test.cnf"
		if cfg.File() != "" {
			where = cfg.File()
		}
		return nil, fmt.Errorf("no master to talk to: set DIST_TEST_MASTER, or master in the [dist_test] section of %s, or pass --master URL", where)
	}
	hc := e.HTTPClient
	if hc == nil {
		t, err := httpclient.Transport(cfg.DistTest.CAFile, 0)
		if err != nil {
			return nil, err
		}
		hc = &http.Client{Transport: t}
	}
	opts := []client.Option{
		client.WithHTTPClient(hc),
		client.WithTimeout(cfg.DistTest.URLTimeout),
		client.WithAuth(cfg.Account()),
		client.WithLogf(e.logf),
		client.WithRetryFor(c.retryFor),
	}
	if readOnly {
		opts = append(opts, client.WithFailFast())
	}
	api := client.New(cfg.DistTest.Master, opts...)
	return &session{env: e, cfg: cfg, api: api}, nil
}

// jobID is the job named in args, or else the last one submitted from
// here, as the original client did.
func (s *session) jobID(args []string, command string) (string, error) {
	if len(args) > 0 {
		return args[0], nil
	}
	data, err := os.ReadFile(s.cfg.DistTest.JobPath)
	id := strings.TrimSpace(string(data))
	if err != nil || id == "" {
		return "", fmt.Errorf("no job id given, and no job was submitted from here (%s)\nusage: dist_test %s JOB_ID",
			s.cfg.DistTest.JobPath, command)
	}
	s.env.logf("Using most recently submitted job id: %s", id)
	return id, nil
}

// saveJobID keeps the id of the job just submitted for later commands.
func (s *session) saveJobID(id string) error {
	return os.WriteFile(s.cfg.DistTest.JobPath, []byte(id), 0o644)
}

// dashboard is the URL of a job's page.
func (s *session) dashboard(id string) string {
	return s.api.BaseURL() + "/job?job_id=" + url.QueryEscape(id)
}

// quiet stops cobra printing the usage for errors past argument parsing:
// a master that is down is not a usage mistake.
func quiet(run func(ctx context.Context, cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		cmd.SilenceUsage = true
		return run(cmd.Context(), cmd, args)
	}
}
