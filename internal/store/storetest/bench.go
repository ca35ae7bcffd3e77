package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/lifecycle"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
	"github.com/dist-test/dist_test/internal/testenv"
)

// BenchTaskLife measures the store's share of one task on the master's hot
// path, as the master calls it: the feeder records the queue entry, the
// start checks the slave and starts the attempt, the finish reads the run
// and records its result (with a runtime for the history). One in ten
// tasks fails and queues its retry. s is an empty store.
func BenchTaskLife(b *testing.B, s store.Store) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	if err := s.RegisterSlave(ctx, model.Slave{ID: "bench-slave", Hostname: "h", Slots: 32, RegisteredAt: now}); err != nil {
		b.Fatal(err)
	}
	var todo []model.Attempt
	jobs := 0
	var cpu testenv.CPUMeter
	refill := func() {
		b.StopTimer()
		cpu.Stop()
		defer b.StartTimer()
		defer cpu.Start()
		jobs++
		id := fmt.Sprintf("bench-%d", jobs)
		j := benchJob(id, hash)
		if err := s.CreateJob(ctx, j, now); err != nil {
			b.Fatal(err)
		}
		var err error
		if todo, err = s.Waiting(ctx, id, 1000); err != nil || len(todo) != 1000 {
			b.Fatalf("waiting: %d, %v", len(todo), err)
		}
	}
	b.ResetTimer()
	cpu.Start()
	for i := 0; i < b.N; i++ {
		if len(todo) == 0 {
			refill()
		}
		a := todo[0]
		todo = todo[1:]
		entry := uint64(i + 1)
		if err := s.MarkEnqueued(ctx, a.ID, a.Token, entry); err != nil {
			b.Fatal(err)
		}
		if _, err := s.GetSlave(ctx, "bench-slave"); err != nil {
			b.Fatal(err)
		}
		run, _, err := s.StartAttempt(ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: entry,
			SlaveID: "bench-slave", Slot: i % 32, Hostname: "h"}, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := s.RunningByLease(ctx, run.Lease); err != nil {
			b.Fatal(err)
		}
		out, err := s.FinishAttempt(ctx, run.Lease, model.Result{ExitCode: boolExit(i%10 == 9), Duration: 20 * time.Millisecond}, now)
		if err != nil || out.Attempt.State == model.Running {
			b.Fatalf("finish: %+v, %v", out, err)
		}
	}
	cpu.Stop()
	cpu.Report(b)
}

func boolExit(fail bool) int {
	if fail {
		return 1
	}
	return 0
}

// BenchTaskLifeParallel is BenchTaskLife with 32 slots at once, as a
// master with 32 slots sees it: starts and finishes arrive together.
func BenchTaskLifeParallel(b *testing.B, s store.Store) {
	ctx := context.Background()
	now := time.UnixMilli(1_700_000_000_000)
	if err := s.RegisterSlave(ctx, model.Slave{ID: "bench-slave", Hostname: "h", Slots: 32, RegisteredAt: now}); err != nil {
		b.Fatal(err)
	}
	var todo []model.Attempt
	for j := 0; len(todo) < b.N; j++ {
		id := fmt.Sprintf("bench-%d", j)
		job := benchJob(id, hash)
		if err := s.CreateJob(ctx, job, now); err != nil {
			b.Fatal(err)
		}
		as, err := s.Waiting(ctx, id, 1000)
		if err != nil {
			b.Fatal(err)
		}
		todo = append(todo, as...)
	}
	var mu sync.Mutex
	next := 0
	b.SetParallelism(16) // 32 goroutines on 2 CPUs
	var cpu testenv.CPUMeter
	b.ResetTimer()
	cpu.Start()
	defer func() { cpu.Stop(); cpu.Report(b) }()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			mu.Lock()
			i := next
			next++
			mu.Unlock()
			a := todo[i]
			entry := uint64(i + 1)
			if err := s.MarkEnqueued(ctx, a.ID, a.Token, entry); err != nil {
				b.Error(err)
				return
			}
			run, _, err := s.StartAttempt(ctx, lifecycle.StartRequest{AttemptID: a.ID, Token: a.Token, EntryID: entry,
				SlaveID: "bench-slave", Slot: i % 32, Hostname: "h"}, now)
			if err != nil {
				b.Error(err)
				return
			}
			if _, err := s.FinishAttempt(ctx, run.Lease, model.Result{ExitCode: boolExit(i%10 == 9), Duration: 20 * time.Millisecond}, now); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchJob is a job of 1,000 tasks of one input, over 300 descriptions.
func benchJob(id, hash string) model.NewJob {
	j := model.NewJob{ID: id, User: "u"}
	for i := range 1000 {
		j.Tasks = append(j.Tasks, model.NewTask{TaskID: fmt.Sprintf("%s.%d", hash, i), Index: i,
			Spec: model.TaskSpec{IsolateHash: hash, Description: fmt.Sprintf("test-%d", i%300), Timeout: time.Minute,
				MaxRetries: 1, ArtifactGlobs: []string{"out/**"}}, Priority: model.NormalBase - 1})
	}
	return j
}
