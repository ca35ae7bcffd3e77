package autoscale

import (
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

func TestPolicyWanted(t *testing.T) {
	p := Policy{MinSize: 1, MaxSize: 10, TargetDrain: 10 * time.Minute, UnknownRuntime: time.Minute}
	for _, c := range []struct {
		name string
		c    protocol.Capacity
		want int
	}{
		{"nothing to do: min_size", protocol.Capacity{}, 1},
		{"80 slot-minutes in 10: 8 slots, 2 slaves of 4", protocol.Capacity{Queued: 80, QueuedWorkMS: 80 * 60000}, 2},
		{"running work counts", protocol.Capacity{Queued: 40, Running: 40, QueuedWorkMS: 40 * 60000, RunningWorkMS: 40 * 60000}, 2},
		{"no more slots than attempts", protocol.Capacity{Queued: 3, QueuedWorkMS: 3 * 3600000}, 1},
		{"unknown runtimes count UnknownRuntime", protocol.Capacity{Queued: 90, QueuedUnknown: 90}, 3},
		{"capped at max_size", protocol.Capacity{Queued: 10000, QueuedWorkMS: 10000 * 60000}, 10},
	} {
		d := p.Decide(&State{}, Observation{Capacity: c.c, Size: 0, SlotsPerSlave: 4})
		if d.Wanted != c.want || d.Target != c.want {
			t.Errorf("%s: wanted %d target %d, want %d", c.name, d.Wanted, d.Target, c.want)
		}
	}
	if d := (Policy{MinSize: 0, MaxSize: 5, TargetDrain: time.Minute}).Decide(&State{}, Observation{}); d.Target != 0 {
		t.Errorf("min_size 0 with no work: target %d", d.Target)
	}
}

// Growth is at once; a surplus waits scale_down_delay, then the fleet
// shrinks to the most slaves wanted during the wait.
func TestPolicyScaleDownDelay(t *testing.T) {
	p := Policy{MinSize: 1, MaxSize: 10, TargetDrain: time.Minute, ScaleDownDelay: 5 * time.Minute}
	t0 := time.Unix(1000, 0)
	busy := func(slots int) protocol.Capacity {
		return protocol.Capacity{Queued: slots, QueuedWorkMS: int64(slots) * 60000}
	}
	var st State
	step := func(at time.Duration, c protocol.Capacity, size int) Decision {
		return p.Decide(&st, Observation{Now: t0.Add(at), Capacity: c, Size: size, SlotsPerSlave: 1})
	}
	if d := step(0, busy(6), 2); d.Target != 6 {
		t.Fatalf("grow: target %d, want 6 at once", d.Target)
	}
	if d := step(time.Minute, busy(3), 6); d.Target != 6 || d.SurplusFor != 0 {
		t.Fatalf("surplus starts: %+v", d)
	}
	if d := step(3*time.Minute, busy(4), 6); d.Target != 6 || d.SurplusFor != 2*time.Minute {
		t.Fatalf("surplus waits: %+v", d)
	}
	if d := step(6*time.Minute, busy(0), 6); d.Target != 4 {
		t.Fatalf("after the delay: target %d, want the peak 4", d.Target)
	}
	// A need for more ends the surplus: its wait starts over.
	step(7*time.Minute, busy(1), 4)
	step(8*time.Minute, busy(5), 4)
	if d := step(9*time.Minute, busy(1), 5); d.Target != 5 || d.SurplusFor != 0 {
		t.Fatalf("new surplus: %+v", d)
	}
	if d := step(14*time.Minute, busy(0), 5); d.Target != 1 {
		t.Fatalf("idle after the delay: target %d, want min_size 1", d.Target)
	}
}

func TestPolicyCheck(t *testing.T) {
	good := Policy{MinSize: 0, MaxSize: 4, TargetDrain: time.Minute}
	if err := good.Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []Policy{
		{MinSize: -1, MaxSize: 4, TargetDrain: time.Minute},
		{MinSize: 5, MaxSize: 4, TargetDrain: time.Minute},
		{MinSize: 0, MaxSize: 0, TargetDrain: time.Minute},
		{MinSize: 0, MaxSize: 4},
		{MinSize: 0, MaxSize: 4, TargetDrain: time.Minute, ScaleDownDelay: -1},
	} {
		if p.Check() == nil {
			t.Errorf("%+v accepted", p)
		}
	}
}
