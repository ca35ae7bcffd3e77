package cli

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/protocol"
)

func fetchCmd(env *Env) *cobra.Command {
	var (
		c    conn
		opts fetchOptions
	)
	cmd := &cobra.Command{
		Use:   "fetch [-d DIR] [-l] [-a] [-f] [JOB_ID]",
		Short: "Fetch test logs and artifacts of a job",
		Long: `Download the logs (-l) and artifacts (-a) of the finished tasks of a job (by
default the last one submitted from here) into DIR, as
<task_id>.<attempt>.<description>.{stdout,stderr,zip}, and unpack each zip
into a folder of its name. Files already there are kept.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !opts.logs && !opts.artifacts {
				return fmt.Errorf("need --logs (-l) or --artifacts (-a), or both")
			}
			cmd.SilenceUsage = true
			s, err := env.open(c, true)
			if err != nil {
				return err
			}
			id, err := s.jobID(args, "fetch")
			if err != nil {
				return err
			}
			return s.fetch(cmd.Context(), id, opts)
		},
	}
	opts.flags(cmd)
	cmd.Flags().BoolVarP(&opts.failedOnly, "failed-only", "f", false, "download only from failed tasks")
	c.flags(cmd)
	return cmd
}

// download is one file to fetch.
type download struct{ link, path string }

// fetch downloads the logs and artifacts of a job's finished (or failed)
// tasks and unpacks the artifacts. Failed downloads are an error; archives
// that cannot be unpacked are reported but, as in the original, are not.
func (s *session) fetch(ctx context.Context, id string, o fetchOptions) error {
	status := "finished"
	if o.failedOnly {
		status = "failed"
	}
	tasks, err := s.api.Tasks(ctx, id, status)
	if err != nil {
		return err
	}
	if len(tasks) == 0 {
		s.env.logf("No %s tasks in job %s", status, id)
		return nil
	}
	if err := os.MkdirAll(o.dir, 0o755); err != nil {
		return fmt.Errorf("making the output directory: %w", err)
	}

	var logs, zips []download
	noStdout, noStderr := 0, 0
	for _, t := range tasks {
		prefix := filepath.Join(o.dir, fileStem(t))
		if o.logs {
			if t.StdoutLink != "" {
				logs = append(logs, download{t.StdoutLink, prefix + ".stdout"})
			} else {
				noStdout++
			}
			if t.StderrLink != "" {
				logs = append(logs, download{t.StderrLink, prefix + ".stderr"})
			} else {
				noStderr++
			}
		}
		if o.artifacts && t.ArtifactArchiveLink != "" {
			zips = append(zips, download{t.ArtifactArchiveLink, prefix + ".zip"})
		}
	}

	var errs []error
	if o.logs {
		if noStdout+noStderr > 0 {
			s.env.logf("No stdout for %d tasks, no stderr for %d", noStdout, noStderr)
		}
		s.env.logf("Fetching %d logs into %s", len(logs), o.dir)
		errs = append(errs, s.downloadAll(ctx, logs)...)
	}
	if o.artifacts {
		s.env.logf("Fetching %d artifacts into %s", len(zips), o.dir)
		zerrs := s.downloadAll(ctx, zips)
		errs = append(errs, zerrs...)
		var fetched []string
		for i, z := range zips {
			if zerrs[i] == nil {
				fetched = append(fetched, z.path)
			}
		}
		s.env.logf("Extracting %d artifacts into %s", len(fetched), o.dir)
		for _, err := range extractAll(fetched, int64(o.maxUnpack)) {
			s.env.logf("Error extracting %v", err)
		}
	}
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d downloads failed: %w", len(failed), errors.Join(failed...))
	}
	return nil
}

// downloadAll fetches files in parallel and returns the error of each
// (nil for success), in the order of files.
func (s *session) downloadAll(ctx context.Context, files []download) []error {
	errs := make([]error, len(files))
	var g errgroup.Group
	g.SetLimit(2 * runtime.NumCPU())
	for i, f := range files {
		g.Go(func() error {
			errs[i] = s.api.Download(ctx, f.link, f.path)
			return nil
		})
	}
	g.Wait()
	return errs
}

// extractAll unpacks archives in parallel, each up to max bytes unpacked;
// it returns the problems found.
func extractAll(zips []string, max int64) []error {
	var (
		mu   sync.Mutex
		errs []error
		g    errgroup.Group
	)
	g.SetLimit(runtime.NumCPU())
	for _, z := range zips {
		g.Go(func() error {
			if err := extract(z, max); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	return errs
}

// maxStem keeps file names within the 255 bytes file systems allow, with
// room for the longest suffix.
const maxStem = 255 - len(".stdout")

// fileStem names a task's files: <task_id>.<attempt>.<description>, each
// part with every character but ASCII letters and digits made '_', as the
// original named them. A description too long for a file name is cut and
// marked with a hash of it, so that names stay distinct.
func fileStem(t protocol.Attempt) string {
	head := safeName(t.TaskID) + "." + strconv.Itoa(t.Attempt) + "."
	desc := safeName(t.Description)
	if len(head)+len(desc) > maxStem {
		sum := sha1.Sum([]byte(t.Description))
		mark := "_" + hex.EncodeToString(sum[:4])
		desc = desc[:max(maxStem-len(head)-len(mark), 0)] + mark
	}
	return head + desc
}

// safeName keeps ASCII letters and digits and makes every other byte '_',
// as the original's Python 2 str.isalnum test did.
func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			b[i] = '_'
		}
	}
	return string(b)
}
