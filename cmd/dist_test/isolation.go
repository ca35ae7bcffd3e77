package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/slave/taskuser"
)

// taskUsers claims the users that the slots' tasks run as. Only a slave
// running as root has them; one running as any other user runs tasks as
// itself (and says so at start).
func taskUsers(cfg *config.Config, slots int) (*taskuser.Claim, error) {
	if os.Geteuid() != 0 {
		if len(cfg.Slave.TaskUsers) > 0 {
			return nil, fmt.Errorf("[slave] task_users (from %s): only a slave running as root can run tasks as other users",
				cfg.Source("slave.task_users"))
		}
		return &taskuser.Claim{}, nil
	}
	return taskuser.Options{}.Claim(cfg.Slave.TaskUsers, slots)
}

// warnSlaveConfig tells what a slave's configuration holds that it should
// not: database and S3 credentials, which a slave never uses nor passes on
// (give slaves a file of their own), and a secret in a file that tasks
// running as other users may read.
func warnSlaveConfig(cfg *config.Config, log *slog.Logger) {
	if secrets := cfg.SlaveSecrets(); len(secrets) > 0 {
		log.Warn("this slave's configuration holds database or S3 credentials, which slaves never need: "+
			"give slaves a configuration of their own without them", "secrets", strings.Join(secrets, ", "))
	}
	f := cfg.File()
	if f == "" || os.Geteuid() != 0 {
		return
	}
	secret := cfg.DistTest.Password != "" || len(cfg.SlaveSecrets()) > 0
	if fi, err := os.Stat(f); err == nil && secret && fi.Mode().Perm()&0o004 != 0 {
		log.Warn("the configuration file holds a password and anyone may read it, tasks included: chmod o-r it", "file", f)
	}
}

// privateDataDir lays out the data folder of `dist_test local` so that
// tasks, which may be given sandboxes inside it, reach nothing else: the
// folder may be passed, not listed, and the database, the blobs and the
// temporary files are the process's alone.
func privateDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return fmt.Errorf("data folder: %w", err)
	}
	for _, d := range []string{"tmp", "blobs"} {
		p := filepath.Join(dir, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return fmt.Errorf("data folder: %w", err)
		}
		if err := os.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("data folder: %w", err)
		}
	}
	return nil
}

// privateDatabase makes the SQLite files the process's alone. SQLite makes
// its journal files later with the database's mode.
func privateDatabase(path string) error {
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("database: %w", err)
		}
	}
	return nil
}
