package slave

import (
	"context"
	"fmt"
	"github.com/dist-test/dist_test/internal/testenv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
	"github.com/dist-test/dist_test/internal/queue/mem"
	"github.com/dist-test/dist_test/slave/process"
	"github.com/dist-test/dist_test/slave/taskuser"
)

// benchMaster answers at once, or after latency (the time a master takes
// to record a start or a finish), and counts the results.
type benchMaster struct {
	latency  time.Duration
	finished atomic.Int64
	leases   atomic.Int64
	done     chan struct{}
	want     int64
	once     sync.Once
}

func (m *benchMaster) wait() {
	if m.latency > 0 {
		time.Sleep(m.latency)
	}
}

func (m *benchMaster) Register(context.Context, protocol.Register) (protocol.Registered, error) {
	return protocol.Registered{SlaveID: "bench", HeartbeatIntervalMS: 5000, TouchIntervalMS: 10000}, nil
}

func (m *benchMaster) Heartbeat(context.Context, string, protocol.Heartbeat) (protocol.HeartbeatReply, error) {
	return protocol.HeartbeatReply{}, nil
}

func (m *benchMaster) Deregister(context.Context, string) error { return nil }

func (m *benchMaster) Start(_ context.Context, s protocol.Start) (protocol.Started, error) {
	m.wait()
	return protocol.Started{Lease: fmt.Sprintf("lease-%d", m.leases.Add(1)),
		Spec: protocol.Spec{JobID: s.Entry.JobID, TaskID: s.Entry.TaskID, IsolateHash: "h", TimeoutMS: 60_000}}, nil
}

func (m *benchMaster) Upload(context.Context, string, string, io.Reader, int64) error { return nil }

func (m *benchMaster) Finish(context.Context, string, protocol.Finish) (protocol.Finished, error) {
	m.wait()
	if m.finished.Add(1) == m.want {
		m.once.Do(func() { close(m.done) })
	}
	return protocol.Finished{State: "passed"}, nil
}

func (m *benchMaster) Abort(context.Context, string, string) error { return nil }

// benchInputs lays out nothing: every task runs /bin/true.
type benchInputs struct{}

func (benchInputs) Fetch(context.Context, string, string, Placement) (Tree, error) {
	return Tree{Command: []string{"/bin/true"}}, nil
}

// BenchmarkSlave measures a slave's cost per task: b.N no-op tasks through
// a slave of 4 slots, on the in-process queue, real processes and a
// master that answers at once or after 2 ms.
func BenchmarkSlave(b *testing.B) {
	for _, latency := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run(fmt.Sprintf("master=%s", latency), func(b *testing.B) {
			const slots = 4
			scratch := b.TempDir()
			var users []taskuser.User
			if os.Geteuid() == 0 {
				for d := filepath.Dir(scratch); d != filepath.Dir(d) && d != os.TempDir(); d = filepath.Dir(d) {
					if err := os.Chmod(d, 0o711); err != nil {
						b.Fatal(err)
					}
				}
				for n := range slots {
					id := uint32(2_050_000_000 + os.Getpid()%100_000*slots + n)
					users = append(users, taskuser.User{Name: fmt.Sprintf("bench%d", n), User: process.User{UID: id, GID: id}})
				}
			}
			q := mem.New()
			defer q.Close()
			m := &benchMaster{latency: latency, done: make(chan struct{}), want: int64(b.N)}
			for i := range b.N {
				body := fmt.Sprintf(`{"attempt_id":%d,"job_id":"job","task_id":"t%d","attempt":0,"token":"tok%d"}`, i+1, i, i)
				if _, err := q.Put(context.Background(), queue.Entry{Body: []byte(body), Priority: 1000, TTR: time.Minute}); err != nil {
					b.Fatal(err)
				}
			}
			log := slog.New(slog.DiscardHandler)
			s := New(m, q, benchInputs{}, Config{Slots: slots, ScratchDir: scratch, Hostname: "bench", Users: users}, log)
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			cpu := testenv.CPUTimeWithChildren()
			go func() { done <- s.Run(ctx) }()
			select {
			case <-m.done:
			case err := <-done:
				b.Fatalf("slave stopped: %v", err)
			}
			b.StopTimer()
			testenv.ReportChildCPU(b, cpu)
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tasks/s")
		})
	}
}
