package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/httpserver"
	"github.com/dist-test/dist_test/internal/metrics"
	"github.com/dist-test/dist_test/internal/metrics/slavemetrics"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/requestid"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/server"
	"github.com/dist-test/dist_test/server/api"
	"github.com/dist-test/dist_test/slave"
	"github.com/dist-test/dist_test/slave/process"
	"github.com/dist-test/dist_test/slave/taskuser"
	"github.com/dist-test/dist_test/web"
)

// listener serves a handler until stopped.
type listener struct {
	url string
	srv *httpserver.Server
}

// serve starts serving h on addr within the [server] bounds, over https
// when tc is set, and writes the URL to urlFile if set.
func serve(addr string, h http.Handler, cfg *config.Config, urlFile string, tc *tls.Config) (*listener, error) {
	srv, err := httpserver.Serve(addr, h, serverLimits(cfg), tc)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w (choose another address with --listen)", addr, err)
	}
	l := &listener{url: srv.URL, srv: srv}
	if urlFile != "" {
		if err := os.WriteFile(urlFile, []byte(l.url+"\n"), 0o644); err != nil {
			l.stop()
			return nil, fmt.Errorf("--url-file: %w", err)
		}
	}
	return l, nil
}

func serverLimits(cfg *config.Config) httpserver.Limits {
	return httpserver.Limits{
		IdleTimeout: cfg.Server.IdleTimeout, ReadTimeout: cfg.Server.ReadTimeout,
		WriteTimeout: cfg.Server.WriteTimeout, MinRate: cfg.Server.MinRate, MaxConns: cfg.Server.MaxConnections,
	}
}

// casOptions are the [isolate] bounds of a CAS handler.
func casOptions(cfg *config.Config, tmp string, log *slog.Logger) cas.Options {
	return cas.Options{TempDir: tmp, Logger: log, MaxBlobSize: cfg.Isolate.MaxBlobBytes,
		MaxGzipRatio: cfg.Isolate.MaxGzipRatio, MaxTempBytes: cfg.Isolate.MaxTempBytes,
		RetentionDays: cfg.Isolate.RetentionDays}
}

// startSweeper runs sweepCAS until the returned stop is called, which
// waits for it to end.
func startSweeper(ctx context.Context, c *cas.Service, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); sweepCAS(ctx, c, log) }()
	return func() { cancel(); <-done }
}

// sweepCAS deletes, at start and then every hour until ctx ends, the
// inputs that [isolate] retention_days lets go. It returns when ctx ends.
func sweepCAS(ctx context.Context, c *cas.Service, log *slog.Logger) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := c.Sweep(ctx); err != nil && ctx.Err() == nil {
			log.Warn("deleting old inputs failed; will try again", "err", err)
		} else if n > 0 {
			log.Info("old inputs deleted", "blobs", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// stop lets requests in flight finish (up to 10 s), then closes.
func (l *listener) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return l.srv.Stop(ctx)
}

// serverFlags are the flags the server commands share.
type serverFlags struct {
	listen, dataDir, urlFile string
}

func (f *serverFlags) add(cmd *cobra.Command, listenDefault string) {
	cmd.Flags().StringVar(&f.listen, "listen", listenDefault, "address to serve on (port 0 picks a free port)")
	cmd.Flags().StringVar(&f.dataDir, "data-dir", "", "folder of the SQLite store and local blobs, when MySQL and S3 are not configured")
	cmd.Flags().StringVar(&f.urlFile, "url-file", "", "write the URL served to this file once serving")
}

// serverSection says where a server command's listen address and data folder
// stand in the configuration.
type serverSection func(*config.Config) (listen, dataDir string)

// load reads the configuration and fills the flags the user did not set
// from it.
func (f *serverFlags) load(cmd *cobra.Command, env *cli.Env, where serverSection) (*config.Config, error) {
	cfg, err := loadConfig(env)
	if err != nil {
		return nil, err
	}
	listen, dir := where(cfg)
	if !cmd.Flags().Changed("listen") {
		f.listen = listen
	}
	if f.dataDir == "" {
		f.dataDir = dir
	}
	return cfg, nil
}

func loadConfig(env *cli.Env) (*config.Config, error) {
	return env.LoadConfig()
}

func masterConfig(cfg *config.Config) server.Config {
	return server.Config{
		HeartbeatInterval: cfg.Master.HeartbeatInterval, HeartbeatTimeout: cfg.Master.HeartbeatTimeout,
		QueueWindow: cfg.Master.QueueWindow, MaxTasksPerJob: cfg.Master.MaxTasksPerJob,
		TTR: cfg.Master.TTR, LinkTTL: cfg.AWS.LinkTTL,
		ReconcileInterval: cfg.Master.ReconcileInterval, MaxRuns: cfg.Master.MaxRuns,
		MaxFailures: cfg.Master.MaxFailures, Hedge: cfg.Master.Hedge,
		Retention:     time.Duration(cfg.Master.RetentionDays) * 24 * time.Hour,
		IsolateServer: cfg.Isolate.Server,
	}
}

func slaveConfig(cfg *config.Config, slots int, scratch string, users []taskuser.User) slave.Config {
	return slave.Config{
		Slots: slots, ScratchDir: scratch, Version: buildVersion(), KillGrace: cfg.Slave.KillGrace,
		LogLimits:        process.Limits{Head: cfg.Slave.LogHeadBytes, Tail: cfg.Slave.LogTailBytes},
		MaxArtifactBytes: cfg.Slave.MaxArtifactBytes,
		Users:            users, Namespaces: cfg.Slave.Namespaces, KeepPassedLogs: cfg.Slave.KeepPassedLogs, TaskEnv: cfg.Slave.TaskEnvironment(os.LookupEnv),
		MemoryLimit: cfg.Slave.MemoryLimit,
		Containers: slave.ContainerConfig{Runtime: cfg.Slave.ContainerRuntime, Network: cfg.Slave.TaskNetwork,
			Memory: cfg.Slave.TaskMemory, CPUs: cfg.Slave.TaskCPUs, AllowedImages: cfg.Slave.AllowedImages},
	}
}

func masterCmd(env *cli.Env) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "master",
		Short: "Run the master: the API, the dashboard, and the scheduling of tasks",
		Long: `Run the master. It keeps jobs in MySQL ([mysql] host; SQLite under --data-dir
when unset), queues tasks in beanstalkd ([beanstalk] host, required), and keeps
logs and artifacts in S3 ([aws] test_result_bucket; a folder under --data-dir
when unset). When [isolate] server is unset the master serves the isolate
server itself, on the same listener and the same blob store.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.load(cmd, env, serverSection(func(c *config.Config) (string, string) { return c.Master.Listen, c.Master.DataDir }))
			if err != nil {
				return err
			}
			return runMaster(cmd.Context(), env, cfg, f)
		},
	}
	f.add(cmd, "127.0.0.1:8081")
	return cmd
}

func runMaster(ctx context.Context, env *cli.Env, cfg *config.Config, f serverFlags) error {
	log := slog.Default()
	guard, err := newGuard(cfg, cfg.Slave.Token, log)
	if err != nil {
		return err
	}
	if !guard.HasSlaveCredentials() {
		return &cli.ExitError{Code: 1, Err: errNoSlaveCredentials}
	}
	tc, err := tlsConfig("master", cfg.Master.TLSCert, cfg.Master.TLSKey)
	if err != nil {
		return err
	}
	dir, err := dataDir(f.dataDir, "master")
	if err != nil {
		return err
	}
	st, err := openStore(ctx, cfg, dir)
	if err != nil {
		return err
	}
	defer st.Close()
	key, err := linkKey(ctx, st)
	if err != nil {
		return err
	}
	q, err := openQueue(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer q.Close()
	blobs, err := openBlobs(ctx, cfg, dir, log)
	if err != nil {
		return err
	}
	obs := newObserved()
	blobs = metrics.NewBlobs(obs.reg).Wrap(blobs)
	var inputs server.Inputs
	var casHandler http.Handler
	if cfg.Isolate.Server != "" {
		// The master asks the isolate server which inputs it lacks, a read,
		// with the slaves' credentials, else the [dist_test] account.
		cred := slaveCredentials(cfg)
		if cred.Empty() {
			cred = userCredentials(cfg)
		}
		hc, err := casHTTPClient(cfg.Isolate.Server, cfg, cred)
		if err != nil {
			return err
		}
		inputs = cas.NewClient(cfg.Isolate.Server, hc)
	} else {
		c := cas.NewService(blobs, cfg.Isolate.RetentionDays, time.Now)
		inputs = c
		casHandler = cas.NewHandler(blobs, casOptions(cfg, filepath.Join(dir, "tmp"), log))
		defer startSweeper(ctx, c, log)()
	}
	m, err := server.New(st, q, blobs, inputs, server.Options{Logger: log, Config: masterConfig(cfg), LinkKey: key,
		Metrics: obs.masterMetrics(), Version: buildVersion()})
	if err != nil {
		return err
	}
	obs.watchFleet(m, log)
	l, err := serve(f.listen, api.New(m, api.Options{Guard: guard, OwnersOnly: cfg.Master.OwnersOnly,
		CAS: casHandler, Pages: web.New(m, log), Logger: log, MaxLargeBodies: cfg.Master.MaxLargeBodies,
		Ops: obs.ops(log, storeCheck(st), queueCheck(q), blobCheck(blobs))}), cfg, f.urlFile, tc)
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stderr, "dist_test master: serving %s\n", l.url)
	stopAdmin, err := startAdmin(cfg, obs.reg, func(s string) { fmt.Fprintf(env.Stderr, "  %s\n", s) })
	if err != nil {
		return errors.Join(err, l.stop())
	}
	defer stopAdmin()
	runCtx, stopRun := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(runCtx) }()
	<-ctx.Done()
	err = l.stop()
	stopRun()
	return errors.Join(err, <-done)
}

func slaveCmd(env *cli.Env) *cobra.Command {
	var slots int
	var scratch, master, hostname string
	cmd := &cobra.Command{
		Use:   "slave",
		Short: "Run a slave: run tasks from the queue, report to the master",
		Long: `Run a slave with --slots task slots. It needs the master ([dist_test] master),
beanstalkd ([beanstalk] host) and the isolate server ([isolate] server; the
master's URL when unset), and no database or S3 credentials: its outputs go
through the master. SIGTERM stops it cleanly: running tasks are killed and
given back to the queue without counting as failures.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := slave.CheckPlatform(); err != nil {
				return &cli.ExitError{Code: 1, Err: err}
			}
			cfg, err := loadConfig(env)
			if err != nil {
				return err
			}
			if master == "" {
				master = cfg.DistTest.Master
			}
			if master == "" {
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("no master: set [dist_test] master, DIST_TEST_MASTER or --master")}
			}
			if !cmd.Flags().Changed("slots") && cfg.Slave.Slots > 0 {
				slots = cfg.Slave.Slots
			}
			if scratch == "" {
				scratch = cfg.Slave.ScratchDir
			}
			return runSlave(cmd.Context(), cfg, master, slots, scratch, hostname)
		},
	}
	cmd.Flags().StringVar(&hostname, "hostname", "", "name the slave registers with (default: the host's); an autoscaler removes the machine of this name")
	cmd.Flags().IntVar(&slots, "slots", runtime.NumCPU(), "tasks to run at once")
	cmd.Flags().StringVar(&scratch, "scratch-dir", "", "folder for the tasks' sandboxes (default [slave] scratch_dir)")
	cmd.Flags().StringVar(&master, "master", "", "URL of the master (default [dist_test] master)")
	return cmd
}

func runSlave(ctx context.Context, cfg *config.Config, master string, slots int, scratch, hostname string) error {
	if slots < 1 {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("--slots must be at least 1, got %d", slots)}
	}
	log := slog.Default()
	// Said before anything can stop the start, so that an operator sees it.
	warnSlaveConfig(cfg, log)
	if slaveCredentials(cfg).Empty() {
		return &cli.ExitError{Code: 1, Err: errors.New("no credentials for the master: set [slave] token (the master's), or [slave] user and password (an account of the master's [master] slave_accounts)")}
	}
	users, err := taskUsers(cfg, slots)
	if err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	defer users.Release()
	q, err := openQueue(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer q.Close()
	inputsURL := cfg.Isolate.Server
	if inputsURL == "" {
		inputsURL = master
	}
	cred := slaveCredentials(cfg)
	mc, err := masterClient(master, cfg, cred)
	if err != nil {
		return err
	}
	inputs, err := openInputs(cfg, inputsURL, scratch, cred)
	if err != nil {
		return err
	}
	defer inputs.Close()
	scfg := slaveConfig(cfg, slots, scratch, users.Users)
	scfg.CacheSize = inputs.cacheSize
	scfg.Hostname = hostname
	if cfg.Slave.MetricsListen != "" {
		obs := newObserved()
		scfg.Metrics = slavemetrics.NewSlave(obs.reg, slots)
		l, err := serveSlaveOps(cfg, obs, log, queueCheck(q))
		if err != nil {
			return err
		}
		defer l.stop()
	}
	return slave.New(mc, q, inputs, scfg, log).Run(ctx)
}

func isolateServerCmd(env *cli.Env) *cobra.Command {
	var f serverFlags
	cmd := &cobra.Command{
		Use:   "isolate-server",
		Short: "Run the isolate server: the content-addressed store of task inputs",
		Long: `Run the isolate server on its own. It keeps inputs in S3 ([aws]
test_result_bucket, under cas/) or in a folder under --data-dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := f.load(cmd, env, serverSection(func(c *config.Config) (string, string) { return c.Isolate.Listen, c.Isolate.DataDir }))
			if err != nil {
				return err
			}
			log := slog.Default()
			guard, err := newGuard(cfg, cfg.Slave.Token, log)
			if err != nil {
				return err
			}
			if cfg.Master.ReadAuth && !guard.HasSlaveCredentials() {
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("[master] read_auth is on and slaves could not read inputs: %w", errNoSlaveCredentials)}
			}
			tc, err := tlsConfig("isolate", cfg.Isolate.TLSCert, cfg.Isolate.TLSKey)
			if err != nil {
				return err
			}
			dir, err := dataDir(f.dataDir, "isolate")
			if err != nil {
				return err
			}
			blobs, err := openBlobs(cmd.Context(), cfg, dir, log)
			if err != nil {
				return err
			}
			obs := newObserved()
			blobs = metrics.NewBlobs(obs.reg).Wrap(blobs)
			ops := obs.ops(log, blobCheck(blobs))
			defer startSweeper(cmd.Context(), cas.NewService(blobs, cfg.Isolate.RetentionDays, time.Now), log)()
			r := chi.NewRouter()
			ops.Use(r)
			ops.Mount(r, guard.Require(auth.Read))
			r.Mount(protocol.PathCAS, guard.CAS(cas.NewHandler(blobs, casOptions(cfg, filepath.Join(dir, "tmp"), log))))
			r.Get(protocol.PathWhoAmI, guard.WhoAmI)
			l, err := serve(f.listen, requestid.Middleware(http.NewCrossOriginProtection().Handler(r)), cfg, f.urlFile, tc)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "dist_test isolate-server: serving %s\n", l.url)
			<-cmd.Context().Done()
			return l.stop()
		},
	}
	f.add(cmd, "127.0.0.1:4242")
	return cmd
}
