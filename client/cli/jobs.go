package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

func cancelCmd(env *Env) *cobra.Command {
	var master string
	cmd := &cobra.Command{
		Use:   "cancel [JOB_ID]",
		Short: "Cancel a submitted job",
		Long:  "Cancel a job (by default the last one submitted from here): queued tasks will not run and running ones are stopped.",
		Args:  cobra.MaximumNArgs(1),
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(master)
			if err != nil {
				return err
			}
			id, err := s.jobID(args, "cancel")
			if err != nil {
				return err
			}
			job, err := s.api.Cancel(ctx, id)
			if err != nil {
				return err
			}
			env.logf("Canceled job %s: %d/%d tests complete", job.ID, job.FinishedGroups, job.TotalGroups)
			return nil
		}),
	}
	masterFlag(cmd, &master)
	return cmd
}

func statusCmd(env *Env) *cobra.Command {
	var master string
	cmd := &cobra.Command{
		Use:   "status [JOB_ID]",
		Short: "Print the counters of a job as JSON",
		Long:  "Print the counters of a job (by default the last one submitted from here) as JSON, with the fields of the original /job_status.",
		Args:  cobra.MaximumNArgs(1),
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(master)
			if err != nil {
				return err
			}
			id, err := s.jobID(args, "status")
			if err != nil {
				return err
			}
			job, err := s.api.GetJob(ctx, id)
			if err != nil {
				return err
			}
			out, err := json.MarshalIndent(struct {
				model.Counts
				Status string `json:"status"`
			}{job.Counts, job.Status}, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "%s\n", out)
			return nil
		}),
	}
	masterFlag(cmd, &master)
	return cmd
}

func jobsCmd(env *Env) *cobra.Command {
	var (
		master string
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "jobs [--limit N]",
		Short: "List the newest jobs",
		Args:  cobra.NoArgs,
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(master)
			if err != nil {
				return err
			}
			jobs, err := s.api.ListJobs(ctx, limit)
			if err != nil {
				return err
			}
			printJobs(env, jobs)
			return nil
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many jobs to list")
	masterFlag(cmd, &master)
	return cmd
}

func printJobs(env *Env, jobs []protocol.Job) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tGROUPS\tFAILED\tSUBMITTED")
	for _, j := range jobs {
		status := j.Status
		if j.Canceled {
			status = "canceled"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\n", j.ID, status, j.FinishedGroups, j.TotalGroups, j.FailedGroups,
			j.SubmittedAt.Local().Format("2006-01-02 15:04:05"))
	}
	tw.Flush()
}

func retryCmd(env *Env) *cobra.Command {
	var master string
	cmd := &cobra.Command{
		Use:   "retry [JOB_ID] [TASK_ID...]",
		Short: "Run failed tasks of a job once more",
		Long: `Run the named tasks of a job (by default the last one submitted from here)
once more, or every failed task when none is named. Prints the ids of the
tasks queued again.`,
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(master)
			if err != nil {
				return err
			}
			id, err := s.jobID(args, "retry")
			if err != nil {
				return err
			}
			var tasks []string
			if len(args) > 1 {
				tasks = args[1:]
			}
			res, err := s.api.Retry(ctx, id, protocol.Retry{TaskIDs: tasks})
			if err != nil {
				return err
			}
			for _, t := range res.Retried {
				fmt.Fprintln(env.Stdout, t)
			}
			env.logf("Queued %d tasks of job %s again", len(res.Retried), id)
			return nil
		}),
	}
	masterFlag(cmd, &master)
	return cmd
}
