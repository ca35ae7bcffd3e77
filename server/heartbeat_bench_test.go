package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/testenv"
	"github.com/dist-test/dist_test/server"
)

// BenchmarkHeartbeat measures one heartbeat of a slave with 8 slots: idle,
// and running 8 attempts whose leases the heartbeat names. 1,000 slaves at
// the default 5 s interval make 200 of them a second (docs/scale.md).
func BenchmarkHeartbeat(b *testing.B) {
	for _, name := range []string{"sqlite", "mysql"} {
		for _, running := range []int{0, 8} {
			b.Run(fmt.Sprintf("%s/running=%d", name, running), func(b *testing.B) {
				ctx := context.Background()
				st := benchStores[name](b)
				defer st.Close()
				m, q := benchMaster(b, st)
				slave, err := m.Register(ctx, protocol.Register{Hostname: "h", Slots: 8})
				if err != nil {
					b.Fatal(err)
				}
				var hb protocol.Heartbeat
				if running > 0 {
					if _, err := m.Submit(ctx, server.Submission{ID: "hb", Tasks: benchTasks(running)}); err != nil {
						b.Fatal(err)
					}
					if _, err := m.FeedOnce(ctx); err != nil {
						b.Fatal(err)
					}
					c, err := q.NewConsumer(ctx)
					if err != nil {
						b.Fatal(err)
					}
					for slot := range running {
						res, err := c.Reserve(ctx, time.Second)
						if err != nil {
							b.Fatal(err)
						}
						var e protocol.Entry
						if err := json.Unmarshal(res.Body, &e); err != nil {
							b.Fatal(err)
						}
						a, _, err := m.Start(ctx, protocol.Start{SlaveID: slave.ID, Slot: slot, EntryID: res.ID, Entry: e})
						if err != nil {
							b.Fatal(err)
						}
						hb.Running = append(hb.Running, a.Lease)
					}
				}
				var cpu testenv.CPUMeter
				cpu.Start()
				defer func() { cpu.Stop(); cpu.Report(b) }()
				for b.Loop() {
					reply, err := m.Heartbeat(ctx, slave.ID, hb)
					if err != nil || reply.Reset || len(reply.Kill) != 0 {
						b.Fatalf("heartbeat: %+v, %v", reply, err)
					}
				}
			})
		}
	}
}
