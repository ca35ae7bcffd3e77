package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/metrics"
	"github.com/dist-test/dist_test/internal/metrics/slavemetrics"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/internal/store/sqlite"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/server"
	"github.com/dist-test/dist_test/server/api"
	"github.com/dist-test/dist_test/slave"
	"github.com/dist-test/dist_test/web"
)

type localOptions struct {
	slots     int
	listen    string
	dataDir   string
	urlFile   string
	heartbeat time.Duration
}

func localCmd(env *cli.Env) *cobra.Command {
	var o localOptions
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run a master, an isolate server and slave slots in this one process",
		Long: `Run the whole of dist_test in one process on the embedded backends: an
SQLite database, an in-process queue and a folder of blobs under --data-dir.
Nothing else needs to be installed. The master, its dashboard and the isolate
server share one listener, so DIST_TEST_MASTER and ISOLATE_SERVER may both be
the URL it prints. State survives a restart with the same --data-dir.
Stop it with Ctrl-C (SIGINT) or SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// Its slots are a slave's.
			if err := slave.CheckPlatform(); err != nil {
				return &cli.ExitError{Code: 1, Err: err}
			}
			cfg, err := env.LoadConfig()
			if err != nil {
				return err
			}
			if !cmd.Flags().Changed("listen") && cfg.Master.Listen != "" {
				o.listen = cfg.Master.Listen
			}
			if !cmd.Flags().Changed("data-dir") && cfg.Master.DataDir != "" {
				o.dataDir = cfg.Master.DataDir
			}
			if !cmd.Flags().Changed("heartbeat-interval") {
				o.heartbeat = cfg.Master.HeartbeatInterval
			}
			return runLocal(cmd.Context(), env, cfg, o)
		},
	}
	home, _ := os.UserHomeDir()
	f := cmd.Flags()
	f.IntVar(&o.slots, "slaves", runtime.NumCPU(), "task slots: how many tasks run at once")
	f.StringVar(&o.listen, "listen", "127.0.0.1:8081", "address to serve on (port 0 picks a free port)")
	f.StringVar(&o.dataDir, "data-dir", filepath.Join(home, ".dist_test", "local"), "folder for the database, logs, artifacts and inputs")
	f.StringVar(&o.urlFile, "url-file", "", "write the master's URL to this file once it serves")
	f.DurationVar(&o.heartbeat, "heartbeat-interval", 5*time.Second, "how often the slave heartbeats")
	return cmd
}

func runLocal(ctx context.Context, env *cli.Env, cfg *config.Config, o localOptions) error {
	if o.slots < 1 {
		return &cli.ExitError{Code: 1, Err: fmt.Errorf("--slaves must be at least 1, got %d", o.slots)}
	}
	log := slog.Default()
	if err := privateDataDir(o.dataDir); err != nil {
		return err
	}
	users, err := taskUsers(cfg, o.slots)
	if err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	defer users.Release()
	release, err := lockSQLite(filepath.Join(o.dataDir, "dist_test.db"))
	if err != nil {
		return &cli.ExitError{Code: 1, Err: err}
	}
	defer release()
	st, err := sqlite.Open(ctx, filepath.Join(o.dataDir, "dist_test.db"))
	if err != nil {
		return err
	}
	defer st.Close()
	if err := privateDatabase(filepath.Join(o.dataDir, "dist_test.db")); err != nil {
		return err
	}
	rawBlobs, err := local.New(filepath.Join(o.dataDir, "blobs"))
	if err != nil {
		return err
	}
	q := mem.New()
	defer q.Close()
	// One registry for the master, the isolate server and the slave of
	// this process: one /metrics shows them all.
	obs := newObserved()
	blobs := metrics.NewBlobs(obs.reg).Wrap(rawBlobs)

	// The slave is in this process: its token is made here and known to
	// nothing else.
	token := randomToken()
	guard, err := newGuard(cfg, token, log)
	if err != nil {
		return err
	}
	tc, err := tlsConfig("master", cfg.Master.TLSCert, cfg.Master.TLSKey)
	if err != nil {
		return err
	}
	key, err := linkKey(ctx, st)
	if err != nil {
		return err
	}
	mcfg := masterConfig(cfg)
	mcfg.HeartbeatInterval = o.heartbeat
	casService := cas.NewService(blobs, cfg.Isolate.RetentionDays, time.Now)
	m, err := server.New(st, q, blobs, casService, server.Options{Logger: log, Config: mcfg, LinkKey: key,
		Metrics: obs.masterMetrics(), Version: buildVersion()})
	if err != nil {
		return err
	}
	obs.watchFleet(m, log)
	defer startSweeper(ctx, casService, log)()
	handler := api.New(m, api.Options{
		Guard:          guard,
		OwnersOnly:     cfg.Master.OwnersOnly,
		CAS:            cas.NewHandler(blobs, casOptions(cfg, filepath.Join(o.dataDir, "tmp"), log)),
		Pages:          web.New(m, log),
		Logger:         log,
		MaxLargeBodies: cfg.Master.MaxLargeBodies,
		Ops:            obs.ops(log, storeCheck(st), queueCheck(q), blobCheck(blobs)),
	})
	// The slaves of an earlier run of this process are gone with it: their
	// runs go back to the queue now rather than after a heartbeat timeout.
	if n, err := m.EndSlaves(ctx, "the local master restarted"); err != nil {
		return err
	} else if n > 0 {
		log.Info("runs of the previous local session queued again", "runs", n)
	}

	stopAdmin, err := startAdmin(cfg, obs.reg, func(s string) { fmt.Fprintf(env.Stderr, "dist_test local: %s\n", s) })
	if err != nil {
		return err
	}
	defer stopAdmin()
	l, err := serve(o.listen, handler, cfg, o.urlFile, tc)
	if err != nil {
		return err
	}
	url := l.url
	masterCtx, stopMaster := context.WithCancel(context.Background())
	defer stopMaster()
	masterDone := make(chan error, 1)
	go func() { masterDone <- m.Run(masterCtx) }()

	scratch := filepath.Join(o.dataDir, "scratch")
	cred := httpclient.Credentials{Token: token}
	inputs, err := openInputs(cfg, url, scratch, cred)
	if err != nil {
		return err
	}
	defer inputs.Close()
	// The slave calls the master in this process directly, without HTTP
	// and JSON; it fetches inputs from the isolate server over HTTP.
	scfg := slaveConfig(cfg, o.slots, scratch, users.Users)
	scfg.CacheSize = inputs.cacheSize
	scfg.Metrics = slavemetrics.NewSlave(obs.reg, o.slots)
	sl := slave.New(server.Direct{M: m}, q, inputs, scfg, log)
	fmt.Fprintf(env.Stderr, "dist_test local: serving %s with %d slots; data in %s\n", url, o.slots, o.dataDir)
	fmt.Fprintf(env.Stderr, "  dashboard:  %s/\n  submit with: DIST_TEST_MASTER=%s ISOLATE_SERVER=%s dist_test submit JOB.json\n", url, url, url)

	// The slave stops first, while the master still serves, so that it can
	// give its runs back; then the master and the listener.
	slaveErr := sl.Run(ctx)
	err = l.stop()
	stopMaster()
	err = errors.Join(slaveErr, err, <-masterDone)
	fmt.Fprintln(env.Stderr, "dist_test local: stopped")
	return err
}
