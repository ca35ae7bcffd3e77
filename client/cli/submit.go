package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// fetchOptions are the flags that submit and fetch share.
type fetchOptions struct {
	dir        string
	logs       bool
	artifacts  bool
	failedOnly bool
	maxUnpack  sizeFlag
}

func (o *fetchOptions) flags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.dir, "output-dir", "d", "dist-test-results", "directory into which to download logs and artifacts")
	f.BoolVarP(&o.logs, "logs", "l", false, "download the logs of the tasks")
	f.BoolVarP(&o.artifacts, "artifacts", "a", false, "download and unpack the artifacts of the tasks")
	o.maxUnpack = 2 << 30
	f.Var(&o.maxUnpack, "max-unpack", "largest unpacked size of one artifact archive (KiB, MiB or GiB); larger ones are kept zipped")
}

// sizeFlag is a flag of a number of bytes, such as 2GiB.
type sizeFlag int64

func (s *sizeFlag) String() string { return strconv.FormatInt(int64(*s), 10) }
func (s *sizeFlag) Type() string   { return "size" }
func (s *sizeFlag) Set(v string) error {
	n, err := config.ParseSize(v)
	if err == nil && n < 1 {
		err = fmt.Errorf("must be more than zero")
	}
	if err != nil {
		return err
	}
	*s = sizeFlag(n)
	return nil
}

func submitCmd(env *Env) *cobra.Command {
	var (
		c      conn
		name   string
		noWait bool
		fetch  fetchOptions
		watch  watchOptions
		out    output
	)
	cmd := &cobra.Command{
		Use:   "submit [-n NAME] [-d DIR] [-l] [-a] [--no-wait [--json]] [--fail-fast] JOB.json",
		Short: "Submit a JSON file listing tasks, and watch the job run",
		Long: `Submit a job: a JSON file {"tasks": [...]} of tasks, each with isolate_hash and
description, and optionally "max_failures" (cancel the rest after that many
tasks failed; 0 for no cap) and "hedge". Then watch it (unless --no-wait), say
what failed, download what -l and -a ask for, and print job_id=<id> on stdout.
Exits 0 when every task passed, 88 when some failed, and 1 when the job could
not be submitted. Ctrl-C cancels the job (exit 130); a second Ctrl-C leaves it
running.`,
		Args: cobra.ExactArgs(1),
		PreRunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd, args); err != nil {
				return err
			}
			if j, _ := out.asJSON(); j && !noWait {
				return fmt.Errorf("--json goes with --no-wait: a watched job prints progress")
			}
			return watch.check(cmd, args)
		},
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			data, err := os.ReadFile(args[0])
			if err != nil {
				return fmt.Errorf("reading the job file: %w", err)
			}
			specs, opt, unknown, err := protocol.ParseJobDocumentChecked(data, 0)
			if err != nil {
				return fmt.Errorf("%s: %w", args[0], err)
			}
			for _, u := range unknown {
				env.logf("warning: %s: %s is ignored", args[0], u)
			}
			s, err := env.open(c, false)
			if err != nil {
				return err
			}
			user := s.user()
			id := makeJobID(name, user, env.now(), os.Getpid())
			if _, err := s.api.CreateJob(ctx, protocol.CreateJob{ID: id, Name: name, User: user, Tasks: wireTasks(specs), JobOptions: opt}); err != nil {
				return err
			}
			if err := s.saveJobID(id); err != nil {
				env.logf("warning: cannot keep the job id for later commands: %v", err)
			}
			env.logf("Submitted job %s", id)
			env.logf("Watch your results at %s", s.dashboard(id))
			if noWait {
				if asJSON, _ := out.asJSON(); asJSON {
					return env.printJSON(map[string]string{"job_id": id, "url": s.dashboard(id)})
				}
				fmt.Fprintf(env.Stdout, "job_id=%s\n", id)
				return nil
			}
			watch.cancelOnInterrupt = true
			code, err := s.watch(ctx, id, watch)
			if err != nil {
				return err
			}
			if (fetch.logs || fetch.artifacts) && code != ExitInterrupted {
				// The tests' verdict stands whatever the download does.
				if err := s.fetch(ctx, id, fetch); err != nil {
					env.logf("warning: %v", err)
				}
			}
			fmt.Fprintf(env.Stdout, "job_id=%s\n", id)
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "job name prefix, made unique by the user, time and process id")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "exit after submitting the job, rather than waiting for it to finish")
	fetch.flags(cmd)
	watch.flags(cmd)
	out.flags(cmd)
	c.flags(cmd)
	return cmd
}

// user names the submitter: the configured user, else $USER, else the
// account running this.
func (s *session) user() string {
	if u := s.cfg.DistTest.User; u != "" {
		return u
	}
	if u := s.env.getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// makeJobID builds [<name>.]<user>.<unix time>.<pid>, the original's form,
// with every character a job id may not hold made '_'.
func makeJobID(name, user string, now time.Time, pid int) string {
	id := idSafe(user) + "." + strconv.FormatInt(now.Unix(), 10) + "." + strconv.Itoa(pid)
	if name != "" {
		prefix := idSafe(name)
		if room := 200 - len(id) - 1; len(prefix) > room {
			prefix = prefix[:max(room, 0)]
		}
		id = prefix + "." + id
	}
	if id[0] == '.' {
		id = "_" + id[1:]
	}
	return id
}

// idSafe replaces each character that protocol.ValidJobID refuses by '_'.
func idSafe(s string) string {
	var b strings.Builder
	for _, r := range s {
		if protocol.ValidJobID("a" + string(r)) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

// wireTasks turns checked specs back into the legacy task form of the API.
func wireTasks(specs []model.TaskSpec) []protocol.Task {
	tasks := make([]protocol.Task, len(specs))
	for i, s := range specs {
		tasks[i] = protocol.Task{
			IsolateHash:   s.IsolateHash,
			Description:   s.Description,
			Timeout:       s.Timeout.Seconds(),
			MaxRetries:    s.MaxRetries,
			Attempt:       s.Attempt,
			ArtifactGlobs: s.ArtifactGlobs,
			DockerImage:   s.DockerImage,
		}
	}
	return tasks
}
