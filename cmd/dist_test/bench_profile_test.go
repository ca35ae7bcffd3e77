package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dist-test/dist_test/client/cli"
)

// BenchmarkProfile runs `dist_test local` inside the test process, so that
// `go test -cpuprofile` (make profile) profiles the master and the slave
// at work: a job of 8,000 no-op tasks through 32 slots. The tasks' inits
// are this test binary too (TestMain calls process.MaybeInit); they are
// children, outside the profile. It reports tasks/s and the process's own
// CPU time per task, which includes the benchmark's few requests.
func BenchmarkProfile(b *testing.B) {
	const tasks = 8000
	dir := reachableDir(b)
	cnf := filepath.Join(dir, "dist_test.cnf")
	if err := os.WriteFile(cnf, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	saved := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer slog.SetDefault(saved)

	ctx, stop := context.WithCancel(context.Background())
	urlFile := filepath.Join(dir, "url")
	env := &cli.Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: os.Getenv, ConfigPath: &cnf,
		IsTerminal: func(io.Writer) bool { return false }}
	cmd := localCmd(env)
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--url-file", urlFile,
		"--data-dir", filepath.Join(dir, "data"), "--slaves", fmt.Sprint(benchSlots)})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			b.Errorf("dist_test local: %v", err)
		}
	}()
	var url string
	waitFor(b, 2*time.Minute, "dist_test local to serve", func() bool {
		raw, err := os.ReadFile(urlFile)
		url = strings.TrimSpace(string(raw))
		return err == nil && url != ""
	})
	c := &cluster{t: b, dir: dir, url: url, env: append(os.Environ(), "DIST_TEST_CNF="+cnf,
		"DIST_TEST_MASTER="+url, "ISOLATE_SERVER="+url)}
	e := &benchEnv{cluster: c}
	hash := e.isolateFor("noop", []string{"true"}, nil)
	job := make([]jobTask, tasks)
	for i := range job {
		job[i] = jobTask{IsolateHash: hash, Description: fmt.Sprintf("noop-%05d", i)}
	}
	var elapsed, cpu time.Duration
	for b.Loop() {
		before := selfCPU(b)
		j := e.wait(e.submit("bench", job), 30*time.Minute)
		cpu += selfCPU(b) - before
		elapsed += j.FinishedAt.Sub(j.SubmittedAt)
	}
	n := float64(tasks * b.N)
	b.ReportMetric(n/elapsed.Seconds(), "tasks/s")
	b.ReportMetric(ms(cpu)/n, "cpu-ms/task")
}

// selfCPU is the CPU time of this process so far, children excluded.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
}
