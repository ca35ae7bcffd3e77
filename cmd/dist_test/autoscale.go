package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client"
	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/internal/autoscale"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/requestid"
)

func autoscaleCmd(env *cli.Env) *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "autoscale [--dry-run]",
		Short: "Size the fleet of slaves to the master's work",
		Long: `Size the fleet of slaves to the master's work, every [autoscale] interval:
enough slaves to finish the queued and running work within target_drain (by
the tasks' expected runtimes), between min_size and max_size. The fleet grows
at once; it shrinks once it has been too large for scale_down_delay, by
draining idle slaves and removing their machines once the slaves have left,
so no running task is lost. [autoscale] provider says how machines come and
go: gce (a managed instance group), exec (shell commands) or local (slave
processes on this host, stopped with the autoscaler). It talks to the master
of [dist_test] master as [dist_test] user, who must be allowed to drain slaves
(an admin under [master] owners_only). Every decision is logged with its
inputs; --dry-run prints them on stdout and changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(env)
			if err != nil {
				return err
			}
			return runAutoscale(cmd.Context(), env, cfg, dryRun)
		},
	}
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "print each decision and its inputs on stdout; add, drain and remove nothing")
	return cmd
}

func runAutoscale(ctx context.Context, env *cli.Env, cfg *config.Config, dryRun bool) error {
	a := cfg.Autoscale
	if cfg.DistTest.Master == "" {
		return &cli.ExitError{Code: 1, Err: errors.New("no master: set [dist_test] master or DIST_TEST_MASTER")}
	}
	policy := autoscale.Policy{MinSize: a.MinSize, MaxSize: a.MaxSize, TargetDrain: a.TargetDrain,
		ScaleDownDelay: a.ScaleDownDelay, UnknownRuntime: a.UnknownRuntime}
	if err := policy.Check(); err != nil {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("[autoscale] %w", err)}
	}
	if a.Interval <= 0 {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("[autoscale] interval must be positive, got %s", a.Interval)}
	}
	slots := a.SlaveSlots
	if slots <= 0 {
		slots = cfg.Slave.Slots
	}
	log := slog.Default()
	if dryRun {
		log = slog.New(requestid.NewHandler(slog.NewTextHandler(env.Stdout, nil)))
	}
	provider, stop, err := newProvider(ctx, cfg, slots, log)
	if err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	defer stop()
	t, err := httpclient.Transport(cfg.DistTest.CAFile, 0)
	if err != nil {
		return err
	}
	// A round that cannot reach the master gives up soon: the next one
	// tries again with fresh figures.
	mc := client.New(cfg.DistTest.Master, client.WithHTTPClient(&http.Client{Transport: t}),
		client.WithAuth(cfg.Account()), client.WithTimeout(cfg.DistTest.URLTimeout), client.WithRetry(3, time.Second, 4*time.Second))
	c := &autoscale.Controller{Policy: policy, Master: mc, Provider: provider, SlaveSlots: slots,
		Interval: a.Interval, DryRun: dryRun, Log: log}
	log.Info("autoscaling", "provider", a.Provider, "master", cfg.DistTest.Master, "min_size", a.MinSize, "max_size", a.MaxSize,
		"target_drain", a.TargetDrain, "scale_down_delay", a.ScaleDownDelay, "interval", a.Interval, "dry_run", dryRun)
	return c.Run(ctx)
}

// newProvider makes the provider of [autoscale] provider, and what stops
// it when the autoscaler exits.
func newProvider(ctx context.Context, cfg *config.Config, slots int, log *slog.Logger) (autoscale.Provider, func(), error) {
	a := cfg.Autoscale
	nothing := func() {}
	switch a.Provider {
	case "gce":
		g, err := autoscale.NewGCE(ctx, autoscale.GCEConfig{Project: a.GCEProject, Zone: a.GCEZone, Group: a.GCEGroup, Endpoint: a.GCEEndpoint})
		return g, nothing, err
	case "exec":
		e := &autoscale.Exec{ListCmd: a.ExecList, GrowCmd: a.ExecGrow, RemoveCmd: a.ExecRemove}
		if err := e.CheckTemplates(); err != nil {
			return nil, nil, fmt.Errorf("[autoscale] %w", err)
		}
		return e, nothing, nil
	case "local":
		exe, err := os.Executable()
		if err != nil {
			return nil, nil, err
		}
		command := []string{exe}
		if cfg.File() != "" {
			command = append(command, "--config", cfg.File())
		}
		host, _ := os.Hostname()
		if host == "" {
			host = "localhost"
		}
		l := &autoscale.Local{Command: command, Master: cfg.DistTest.Master, Slots: slots, Dir: a.LocalDir,
			Prefix: fmt.Sprintf("%s-slave-%d", host, os.Getpid()), Log: log}
		return l, func() {
			// The slaves' graceful stop: their tasks go back to the queue.
			sctx, cancel := context.WithTimeout(context.Background(), cfg.Slave.KillGrace+30*time.Second)
			defer cancel()
			if err := l.Stop(sctx); err != nil {
				log.Warn("slave processes did not stop", "err", err)
			}
		}, nil
	case "":
		return nil, nil, errors.New("[autoscale] provider is not set: gce, exec or local")
	}
	return nil, nil, fmt.Errorf("[autoscale] provider = %q: use gce, exec or local", a.Provider)
}
