package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/blob/s3"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/beanstalk"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/internal/store/mysql"
	"github.com/dist-test/dist_test/internal/store/sqlite"
)

// Only main knows the concrete backends: it picks them from the
// configuration and hands them to the packages as interfaces. Every error
// names the setting to look at.

// dataDir returns dir, or ~/.dist_test/<name> when it is empty, created.
func dataDir(dir, name string) (string, error) {
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no data folder: set data_dir (%w)", err)
		}
		dir = filepath.Join(home, ".dist_test", name)
	}
	for _, d := range []string{dir, filepath.Join(dir, "tmp")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return "", fmt.Errorf("data folder: %w", err)
		}
	}
	return dir, nil
}

// openStore opens MySQL when [mysql] host is set, else SQLite in dir.
func openStore(ctx context.Context, cfg *config.Config, dir string) (store.Store, error) {
	if cfg.MySQL.Host == "" {
		path := filepath.Join(dir, "dist_test.db")
		release, err := lockSQLite(path)
		if err != nil {
			return nil, err
		}
		st, err := sqlite.Open(ctx, path)
		if err != nil {
			release()
			return nil, fmt.Errorf("[master] data_dir: %w", err)
		}
		return lockedStore{st, release}, nil
	}
	st, err := mysql.Open(ctx, mysql.Config{Host: cfg.MySQL.Host, Port: cfg.MySQL.Port, User: cfg.MySQL.User,
		Password: cfg.MySQL.Password, Database: cfg.MySQL.Database})
	if err != nil {
		return nil, fmt.Errorf("[mysql]: %w", err)
	}
	return st, nil
}

// openQueue opens beanstalkd; processes on several machines cannot share
// the in-process queue.
func openQueue(ctx context.Context, cfg *config.Config, log *slog.Logger) (queue.Queue, error) {
	if cfg.Beanstalk.Host == "" {
		return nil, fmt.Errorf("[beanstalk] host is not set (BEANSTALK_HOST): slaves on other machines need beanstalkd; on one machine, use dist_test local")
	}
	q, err := beanstalk.Open(ctx, cfg.Beanstalk.Host, cfg.Beanstalk.Tube, beanstalk.Options{Logger: log})
	if err != nil {
		return nil, fmt.Errorf("[beanstalk] host: %w", err)
	}
	return q, nil
}

// openBlobs opens S3 when [aws] test_result_bucket is set, else a folder
// under dir.
func openBlobs(ctx context.Context, cfg *config.Config, dir string, log *slog.Logger) (blob.Store, error) {
	if cfg.AWS.TestResultBucket == "" {
		b, err := local.New(filepath.Join(dir, "blobs"))
		if err != nil {
			return nil, fmt.Errorf("data_dir: %w", err)
		}
		return b, nil
	}
	b, err := s3.Open(ctx, s3.Config{
		Bucket: cfg.AWS.TestResultBucket, Endpoint: cfg.AWS.Endpoint, Region: cfg.AWS.Region,
		PathStyle: cfg.AWS.PathStyle, AccessKey: cfg.AWS.AccessKey, SecretKey: cfg.AWS.SecretKey, Logger: log,
		// A master streams several artifact archives at once: keep each
		// upload's buffers small ((2+2) × 8 MiB).
		PartSize: 8 << 20, Concurrency: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("[aws]: %w", err)
	}
	return b, nil
}

// lockedStore holds the lock of its SQLite file until it is closed.
type lockedStore struct {
	store.Store
	release func()
}

func (s lockedStore) Close() error {
	defer s.release()
	return s.Store.Close()
}
