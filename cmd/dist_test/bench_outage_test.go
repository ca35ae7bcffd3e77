package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
)

// BenchmarkResumeAfterOutage: the database of a production stack stops
// while a slave's 4 slots run tasks of 2 s; they finish during the outage
// (their results wait in the spool) and 4 more tasks wait for a slot. It
// reports resume-ms, from the master's first answer after the database is
// back (the first 200 of GET /api/v1/jobs/{id}, polled every 10 ms) to the
// start of the first of the waiting tasks (its started_at; one host, one
// clock). With DIST_TEST_BASELINE, the same on that build.
func BenchmarkResumeAfterOutage(b *testing.B) {
	forEachBuild(b, func(b *testing.B) {
		db := testenv.OwnMariaDB(b)
		s := newStackWith(b, stackOptions{slaves: 1, slots: 4, mysql: db})
		s.writeInputs(map[string]string{"sleep": "sleep $1\n"})
		hash := s.archive("sleep", "ARG=2")
		var total time.Duration
		for i := 0; b.Loop(); i++ {
			var tasks []jobTask
			for k := range 8 {
				tasks = append(tasks, jobTask{IsolateHash: hash, Description: fmt.Sprintf("outage-%d-%d", i, k), Timeout: 60})
			}
			if code, _, stderr := s.run("submit", "--no-wait", s.writeJob(fmt.Sprintf("outage-%d.json", i), tasks)); code != 0 {
				b.Fatalf("submit: %s", stderr)
			}
			job := lastJob(b, s.cluster)
			attempts := func() []protocol.Attempt {
				var l protocol.AttemptList
				s.get("/api/v1/jobs/"+job+"/tasks", &l)
				return l.Tasks
			}
			waitFor(b, time.Minute, "4 tasks to run", func() bool {
				n := 0
				for _, a := range attempts() {
					if a.State == "running" {
						n++
					}
				}
				return n == 4
			})
			stopped := time.Now()
			db.Stop()
			time.Sleep(5 * time.Second) // the 4 finish; their results wait
			db.Start()
			var back time.Time
			waitFor(b, time.Minute, "the master to answer again", func() bool {
				resp, err := http.Get(s.url + "/api/v1/jobs/" + job)
				if err != nil {
					return false
				}
				resp.Body.Close()
				back = time.Now()
				return resp.StatusCode == http.StatusOK
			})
			var first time.Time
			waitFor(b, time.Minute, "a waiting task to start", func() bool {
				for _, a := range attempts() {
					// Nothing starts while the database is down.
					if a.StartedAt != nil && a.StartedAt.After(stopped) && (first.IsZero() || a.StartedAt.Before(first)) {
						first = *a.StartedAt
					}
				}
				return !first.IsZero()
			})
			// A start may beat the poll that saw the master back.
			total += max(first.Sub(back), 0)
			if code, _, stderr := s.run("watch", job); code != 0 {
				b.Fatalf("watch: %d %s", code, stderr)
			}
		}
		b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "resume-ms")
	})
}
