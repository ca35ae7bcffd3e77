package autoscale

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// The simulation runs a day of bursty submissions on a simulated clock, in
// steps of a second, against a fleet sizing policy: machines of simSlots
// slots that take simBoot to boot and register; FIFO dispatch to free
// slots; the scaler looks every 10 s, as gce-autoscale.py did.
const (
	simSlots = 4
	simBoot  = 90 * time.Second
	simTick  = 10 * time.Second
	simDay   = 24 * time.Hour
)

type simTask struct {
	submit, start     time.Duration
	runtime, expected time.Duration
}

type simMachine struct {
	up       time.Duration // when it registers
	busy     []int         // task index per slot, -1 when free
	draining bool
}

// simWorkload is a day of CI: jobs of 50 to 300 tasks, one in five of
// 1000, arriving every 4 minutes on average from 9:00 to 18:00 and every
// 40 outside; tasks of 20 s on average, one in twenty of 3 to 10 minutes;
// each task's history predicts its runtime within ±20 %.
func simWorkload(seed uint64) []simTask {
	r := rand.New(rand.NewPCG(seed, 1))
	var tasks []simTask
	for t := time.Duration(0); t < simDay; {
		gap := 40 * time.Minute
		if h := t / time.Hour; h >= 9 && h < 18 {
			gap = 4 * time.Minute
		}
		t += time.Duration(r.ExpFloat64() * float64(gap))
		if t >= simDay {
			break
		}
		n := 50 + r.IntN(251)
		if r.IntN(5) == 0 {
			n = 1000
		}
		for range n {
			run := time.Duration(1+r.ExpFloat64()*19) * time.Second
			if r.IntN(20) == 0 {
				run = time.Duration(180+r.IntN(421)) * time.Second
			}
			exp := time.Duration(float64(run) * (0.8 + 0.4*r.Float64()))
			tasks = append(tasks, simTask{submit: t, runtime: run, expected: exp.Round(time.Millisecond)})
		}
	}
	return tasks
}

// scaler is a sizing policy under simulation: given the capacity figures
// and the fleet, it returns the size wanted and may mark machines to drain.
type scaler interface {
	tick(now time.Duration, c protocol.Capacity, fleet []*simMachine) (target int)
}

// ours is Policy with the Controller's way of shrinking: idle machines
// only, drained (an idle one leaves at once).
type ours struct {
	p  Policy
	st State
}

func (o *ours) tick(now time.Duration, c protocol.Capacity, fleet []*simMachine) int {
	size := 0
	for _, m := range fleet {
		if !m.draining {
			size++
		}
	}
	d := o.p.Decide(&o.st, Observation{Now: time.Unix(0, 0).Add(now), Capacity: c, Size: size, SlotsPerSlave: simSlots})
	return d.Target
}

// original is gce-autoscale.py: +10 machines while anything is queued (at
// most 100); all but one go once nothing was queued or running for 10
// minutes.
type original struct {
	idle  bool
	since time.Duration
}

func (o *original) tick(now time.Duration, c protocol.Capacity, fleet []*simMachine) int {
	size := len(fleet)
	switch {
	case c.Queued > 0:
		o.idle = false
		return min(size+10, 100)
	case c.Running > 0:
		o.idle = false
		return size
	case !o.idle:
		o.idle, o.since = true, now
	}
	if now-o.since >= 10*time.Minute {
		return 1
	}
	return size
}

type simResult struct {
	slaveSeconds float64
	p95Wait      time.Duration
	maxFleet     int
	unfinished   int
}

// simulate runs tasks against s from a fleet of start machines, until
// the day and the work are over.
func simulate(tasks []simTask, s scaler, start int) simResult {
	tasks = slices.Clone(tasks)
	var fleet []*simMachine
	add := func(now time.Duration, n int) {
		for range n {
			m := &simMachine{up: now + simBoot, busy: make([]int, simSlots)}
			for i := range m.busy {
				m.busy[i] = -1
			}
			fleet = append(fleet, m)
		}
	}
	add(-simBoot, start)
	var res simResult
	next, queued := 0, []int{} // next task to arrive; queued task indexes, FIFO
	done := 0
	for now := time.Duration(0); now < simDay || done < len(tasks); now += time.Second {
		if now > 3*simDay {
			break
		}
		for next < len(tasks) && tasks[next].submit <= now {
			queued = append(queued, next)
			next++
		}
		// Finish runs, then fill free slots in FIFO order.
		for _, m := range fleet {
			if m.up > now {
				continue
			}
			for i, ti := range m.busy {
				if ti >= 0 && tasks[ti].start+tasks[ti].runtime <= now {
					m.busy[i] = -1
					done++
				}
			}
			for i := range m.busy {
				if m.busy[i] < 0 && len(queued) > 0 && !m.draining {
					ti := queued[0]
					queued = queued[1:]
					tasks[ti].start = now
					m.busy[i] = ti
				}
			}
		}
		// Drained machines leave once idle.
		fleet = slices.DeleteFunc(fleet, func(m *simMachine) bool { return m.draining && idle(m) })
		if now%simTick == 0 {
			var c protocol.Capacity
			c.Queued = len(queued)
			for _, ti := range queued {
				c.QueuedWorkMS += tasks[ti].expected.Milliseconds()
			}
			for _, m := range fleet {
				for _, ti := range m.busy {
					if ti >= 0 {
						c.Running++
						c.RunningWorkMS += max(tasks[ti].expected-(now-tasks[ti].start), 0).Milliseconds()
					}
				}
			}
			size := 0
			for _, m := range fleet {
				if !m.draining {
					size++
				}
			}
			switch target := s.tick(now, c, fleet); {
			case target > size:
				add(now, target-size)
			case target < size:
				shrink(now, fleet, size-target, s)
			}
		}
		res.slaveSeconds += float64(len(fleet))
		res.maxFleet = max(res.maxFleet, len(fleet))
	}
	res.unfinished = len(tasks) - done
	waits := make([]time.Duration, 0, len(tasks))
	for _, t := range tasks {
		waits = append(waits, t.start-t.submit)
	}
	slices.Sort(waits)
	if len(waits) > 0 {
		res.p95Wait = waits[int(math.Ceil(0.95*float64(len(waits))))-1]
	}
	return res
}

func idle(m *simMachine) bool {
	for _, ti := range m.busy {
		if ti >= 0 {
			return false
		}
	}
	return true
}

// shrink takes n machines away: ours drains idle registered ones only (a
// booting machine's slave is not there to drain); the original deleted
// VMs from the group's end, which it only did with nothing running.
func shrink(now time.Duration, fleet []*simMachine, n int, s scaler) {
	if _, orig := s.(*original); orig {
		for i := len(fleet) - 1; i >= 0 && n > 0; i-- {
			if !fleet[i].draining {
				fleet[i].draining = true
				n--
			}
		}
		return
	}
	for _, m := range fleet {
		if n == 0 {
			return
		}
		if !m.draining && m.up <= now && idle(m) {
			m.draining = true
			n--
		}
	}
}

var simPolicy = Policy{MinSize: 1, MaxSize: 100, TargetDrain: 10 * time.Minute, ScaleDownDelay: 10 * time.Minute, UnknownRuntime: time.Minute}

// simPolicies are the policy with the default target_drain, with a short
// one, and the original.
func simPolicies() []struct {
	name string
	new  func() scaler
} {
	short := simPolicy
	short.TargetDrain = 2 * time.Minute
	return []struct {
		name string
		new  func() scaler
	}{
		{"policy", func() scaler { return &ours{p: simPolicy} }},
		{"policy-drain-2m", func() scaler { return &ours{p: short} }},
		{"original", func() scaler { return &original{} }},
	}
}

// TestSimulatedDay compares the policy with the original's on the same
// day: every task runs, and the policy pays for fewer slave-seconds.
func TestSimulatedDay(t *testing.T) {
	tasks := simWorkload(13)
	res := map[string]simResult{}
	for _, c := range simPolicies() {
		r := simulate(tasks, c.new(), 1)
		res[c.name] = r
		t.Logf("%-16s %d tasks: %.0f slave-seconds (%.1f slave-hours), p95 queue wait %s, at most %d slaves",
			c.name, len(tasks), r.slaveSeconds, r.slaveSeconds/3600, r.p95Wait.Round(time.Second), r.maxFleet)
		if r.unfinished != 0 {
			t.Errorf("%s: %d tasks never ran", c.name, r.unfinished)
		}
	}
	if o, g := res["policy"], res["original"]; o.slaveSeconds >= g.slaveSeconds {
		t.Errorf("policy used %.0f slave-seconds, the original %.0f", o.slaveSeconds, g.slaveSeconds)
	}
	if o := res["policy"]; o.p95Wait > simPolicy.TargetDrain+simBoot+simTick {
		t.Errorf("policy: p95 queue wait %s, over target_drain %s and a boot", o.p95Wait, simPolicy.TargetDrain)
	}
}

// BenchmarkSimulatedDay reports the policies' slave-seconds and 95th
// percentile queue wait on the same simulated day.
func BenchmarkSimulatedDay(b *testing.B) {
	tasks := simWorkload(13)
	for _, c := range simPolicies() {
		b.Run(c.name, func(b *testing.B) {
			var r simResult
			for b.Loop() {
				r = simulate(tasks, c.new(), 1)
			}
			b.ReportMetric(r.slaveSeconds, "slave-s")
			b.ReportMetric(r.p95Wait.Seconds(), "p95-wait-s")
			b.ReportMetric(float64(r.maxFleet), "max-slaves")
		})
	}
}
