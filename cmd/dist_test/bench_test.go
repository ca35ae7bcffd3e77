package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// BenchmarkDispatch measures how fast no-op tasks go through a whole
// deployment: submit, queue, start, fetch the inputs, run, report. The
// embedded default with 6 slots in one process is the baseline for 3 slave
// processes of 2 slots over MySQL, beanstalkd and S3.
func BenchmarkDispatch(b *testing.B) {
	const tasks = 300
	setups := []struct {
		name string
		new  func(b *testing.B) *cluster
	}{
		{"local-6-slots", func(b *testing.B) *cluster { return newCluster(b, 6) }},
		{"production-3x2-slots", func(b *testing.B) *cluster { return newStack(b, 3, 2).cluster }},
	}
	for _, s := range setups {
		b.Run(s.name, func(b *testing.B) {
			c := s.new(b)
			c.writeInputs(map[string]string{"noop": "exit 0\n"})
			hash := c.archive("noop", "ARG=")
			var job []jobTask
			for i := range tasks {
				job = append(job, jobTask{IsolateHash: hash, Description: fmt.Sprintf("noop-%d", i)})
			}
			path := c.writeJob("noop.json", job)
			// The master's own clock times each job, from submission to the
			// last result: the client's polling interval does not count.
			var elapsed time.Duration
			for i := 0; b.Loop(); i++ {
				code, stdout, stderr := c.run("submit", "-n", fmt.Sprint("run", i), path)
				if code != 0 || !strings.Contains(stdout, fmt.Sprintf("%d/%d tests complete", tasks, tasks)) {
					b.Fatalf("submit exited %d\n%s\n%s", code, stdout, stderr)
				}
				var j protocol.Job
				c.get("/api/v1/jobs/"+lastJob(b, c), &j)
				elapsed += j.FinishedAt.Sub(j.SubmittedAt)
			}
			b.ReportMetric(float64(tasks*b.N)/elapsed.Seconds(), "tasks/s")
		})
	}
}
