package cli

import (
	"context"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/internal/protocol"
)

func cancelCmd(env *Env) *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "cancel [JOB_ID]",
		Short: "Cancel a submitted job",
		Long:  "Cancel a job (by default the last one submitted from here): queued tasks will not run and running ones are stopped.",
		Args:  cobra.MaximumNArgs(1),
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(c, false)
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
	c.flags(cmd)
	return cmd
}

func statusCmd(env *Env) *cobra.Command {
	var (
		c   conn
		out output
	)
	cmd := &cobra.Command{
		Use:   "status [JOB_ID] [--json]",
		Short: "Print the state and counters of a job",
		Long: `Print the state and counters of a job (by default the last one submitted from
here). With --json: the job as /api/v1/jobs/{id} gives it, whose counters
have the names of the original /job_status.`,
		Args:    cobra.MaximumNArgs(1),
		PreRunE: out.check,
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			asJSON, _ := out.asJSON()
			s, err := env.open(c, true)
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
			if asJSON {
				return env.printJSON(job)
			}
			fmt.Fprintf(env.Stdout, "%s: %s, %s\n", job.ID, jobState(job), countsLine(job))
			return nil
		}),
	}
	out.flags(cmd)
	c.flags(cmd)
	return cmd
}

// jobState is running, finished or canceled.
func jobState(j protocol.Job) string {
	if j.Canceled {
		return "canceled"
	}
	return j.Status
}

// countsLine sums up a job's groups in words.
func countsLine(j protocol.Job) string {
	line := fmt.Sprintf("%d/%d tests complete: %d passed, %d failed", j.FinishedGroups, j.TotalGroups, j.SucceededGroups, j.FailedGroups)
	if j.FlakyGroups > 0 {
		line += fmt.Sprintf(", %d flaky", j.FlakyGroups)
	}
	if j.CanceledGroups > 0 {
		line += fmt.Sprintf(", %d canceled", j.CanceledGroups)
	}
	if j.RetriedTasks > 0 {
		line += fmt.Sprintf(" (%d retries)", j.RetriedTasks)
	}
	return line
}

func jobsCmd(env *Env) *cobra.Command {
	var (
		c     conn
		out   output
		limit int
	)
	cmd := &cobra.Command{
		Use:     "jobs [--limit N] [--json]",
		Short:   "List the newest jobs",
		Args:    cobra.NoArgs,
		PreRunE: out.check,
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			asJSON, _ := out.asJSON()
			s, err := env.open(c, true)
			if err != nil {
				return err
			}
			jobs, err := s.api.ListJobs(ctx, limit)
			if err != nil {
				return err
			}
			if asJSON {
				if jobs == nil {
					jobs = []protocol.Job{}
				}
				return env.printJSON(protocol.JobList{Jobs: jobs})
			}
			printJobs(env, jobs)
			return nil
		}),
	}
	cmd.Flags().IntVar(&limit, "limit", 20, "how many jobs to list")
	out.flags(cmd)
	c.flags(cmd)
	return cmd
}

func printJobs(env *Env, jobs []protocol.Job) {
	tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tGROUPS\tFAILED\tSUBMITTED")
	for _, j := range jobs {
		fmt.Fprintf(tw, "%s\t%s\t%d/%d\t%d\t%s\n", printable(j.ID, 200), jobState(j), j.FinishedGroups, j.TotalGroups, j.FailedGroups,
			j.SubmittedAt.Local().Format("2006-01-02 15:04:05"))
	}
	tw.Flush()
}

func tasksCmd(env *Env) *cobra.Command {
	var (
		c      conn
		out    output
		status string
	)
	cmd := &cobra.Command{
		Use:   "tasks [JOB_ID] [--status STATUS] [--json]",
		Short: "List the attempts of a job's tasks",
		Long: `List the attempts of the tasks of a job (by default the last one submitted from
here), in task order. --status keeps those of one status: failed (failed,
timed out, canceled or infra failures), succeeded, finished, or a state:
queued, running, passed, timed_out, canceled, infra_failed.`,
		Args:    cobra.MaximumNArgs(1),
		PreRunE: out.check,
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			asJSON, _ := out.asJSON()
			s, err := env.open(c, true)
			if err != nil {
				return err
			}
			id, err := s.jobID(args, "tasks")
			if err != nil {
				return err
			}
			tasks, err := s.api.Tasks(ctx, id, status)
			if err != nil {
				return err
			}
			if asJSON {
				if tasks == nil {
					tasks = []protocol.Attempt{}
				}
				return env.printJSON(protocol.AttemptList{Tasks: tasks})
			}
			tw := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
			fmt.Fprintln(tw, "TASK\tATTEMPT\tSTATE\tEXIT\tRUNTIME\tDESCRIPTION")
			for _, t := range tasks {
				exit := "-"
				if t.ExitCode != nil {
					exit = strconv.Itoa(*t.ExitCode)
				}
				runtime := (time.Duration(t.DurationSeconds*10) * time.Second / 10).String()
				fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", printable(t.TaskID, 200), t.Attempt, printable(t.State, 20), exit, runtime,
					printable(t.Description, 200))
			}
			return tw.Flush()
		}),
	}
	cmd.Flags().StringVar(&status, "status", "", "list only the attempts of this status (failed, succeeded, finished, queued, running, passed, timed_out, canceled, infra_failed)")
	out.flags(cmd)
	c.flags(cmd)
	return cmd
}

func retryCmd(env *Env) *cobra.Command {
	var c conn
	cmd := &cobra.Command{
		Use:   "retry [JOB_ID] [TASK_ID...]",
		Short: "Run failed tasks of a job once more",
		Long: `Run the named tasks of a job (by default the last one submitted from here)
once more, or every failed task when none is named. Prints the ids of the
tasks queued again.`,
		RunE: quiet(func(ctx context.Context, cmd *cobra.Command, args []string) error {
			s, err := env.open(c, false)
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
	c.flags(cmd)
	return cmd
}
