// Command dist_test is the whole of dist_test in one binary: the client
// commands users and CI scripts run (submit, watch, fetch, ...), the
// isolate tools, and the servers (local, and later master, slave and
// isolate-server). main builds the concrete backends and hands them to the
// packages; it holds no logic of its own.
package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/internal/requestid"
	"github.com/dist-test/dist_test/slave/process"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	// A task's init in its namespaces is this binary, started by the slave.
	process.MaybeInit()
	os.Exit(run(asInvoked(os.Args[0], os.Args[1:])))
}

// asInvoked lets the binary stand in for the two programs that the
// original's frontends run (Kudu's dist_test.py, grind): invoked as
// "isolate" it is `dist_test isolate`, which luci's callers drive with
// Go-style -long-flags; invoked as "client" it is the client, whose
// commands (submit, watch, fetch, cancel, ...) are dist_test's own.
func asInvoked(argv0 string, args []string) []string {
	switch strings.TrimSuffix(filepath.Base(argv0), ".exe") {
	case "isolate":
		return append([]string{"isolate"}, goStyleFlags(args)...)
	default:
		return args
	}
}

func run(args []string) int {
	var configPath, logLevel string
	env := &cli.Env{
		Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		ConfigPath: &configPath, IsTerminal: cli.IsTerminal,
	}
	root := &cobra.Command{
		Use:           "dist_test",
		Short:         "Run a test suite as thousands of tasks on a fleet of slaves",
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			return setupLogging(logLevel)
		},
	}
	root.PersistentFlags().StringVar(&configPath, "config", "", "configuration file (default $DIST_TEST_CNF or ~/.dist_test.cnf)")
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level of servers: debug, info, warn or error")
	root.AddCommand(cli.Commands(env)...)
	root.AddCommand(localCmd(env), masterCmd(env), slaveCmd(env), isolateServerCmd(env), isolateCmd(env), passwdCmd(env))
	root.AddCommand(healthcheckCmd(env))
	root.AddCommand(autoscaleCmd(env))
	root.SetArgs(args)
	root.SetOut(os.Stdout)
	root.SetErr(os.Stderr)
	// SIGINT and SIGTERM end the context: servers shut down in order and
	// clients stop polling. Ctrl-C ends it with cli.ErrInterrupted, and
	// the presses after the first go to the command: submit cancels its
	// job on the first unless a second comes.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	interrupts := make(chan os.Signal, 1)
	signal.Notify(interrupts, os.Interrupt)
	defer signal.Stop(interrupts)
	env.Interrupts = interrupts
	go func() {
		select {
		case <-interrupts:
			cancel(cli.ErrInterrupted)
		case <-ctx.Done():
		}
	}()
	return cli.Report(os.Stderr, root.ExecuteContext(ctx))
}

func setupLogging(level string) error {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	// Lines logged while serving a request carry its id (requestid).
	slog.SetDefault(slog.New(requestid.NewHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l}))))
	return nil
}
