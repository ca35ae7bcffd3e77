// Package autoscale sizes a fleet of slaves to the master's work: a pure
// policy (Policy.Decide) turns the master's capacity figures into a fleet
// size, and a Controller applies it through a Provider (a GCE managed
// instance group, shell commands, or slave processes on this host),
// shrinking only by draining idle slaves and removing a machine once its
// slave has left, so that no running task is lost.
package autoscale

import (
	"fmt"
	"time"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Policy decides the fleet's size.
type Policy struct {
	MinSize, MaxSize int
	// TargetDrain: enough slaves to finish the unfinished work within it.
	TargetDrain time.Duration
	// ScaleDownDelay: a surplus must last this long before the fleet
	// shrinks, to the most slaves wanted during it.
	ScaleDownDelay time.Duration
	// UnknownRuntime is the work counted for an attempt whose task has no
	// runtime history.
	UnknownRuntime time.Duration
}

// Check refuses settings the policy cannot follow.
func (p Policy) Check() error {
	switch {
	case p.MinSize < 0:
		return fmt.Errorf("min_size must not be negative, got %d", p.MinSize)
	case p.MaxSize < 1 || p.MaxSize < p.MinSize:
		return fmt.Errorf("max_size must be at least 1 and at least min_size (%d), got %d", p.MinSize, p.MaxSize)
	case p.TargetDrain <= 0:
		return fmt.Errorf("target_drain must be positive, got %s", p.TargetDrain)
	case p.ScaleDownDelay < 0:
		return fmt.Errorf("scale_down_delay must not be negative, got %s", p.ScaleDownDelay)
	}
	return nil
}

// Observation is what a decision is made from.
type Observation struct {
	Now      time.Time
	Capacity protocol.Capacity
	// Size is the fleet's machines now, booting ones included, those
	// being drained or removed not.
	Size int
	// SlotsPerSlave: the slots a slave brings (at least 1).
	SlotsPerSlave int
}

// State is what the policy remembers between decisions: the surplus
// being waited out. The zero State is a fresh start.
type State struct {
	surplusSince time.Time // zero: no surplus
	peak         int       // the most slaves wanted since surplusSince
}

// Decision is the policy's answer.
type Decision struct {
	// Wanted is the slaves the work calls for, within [MinSize, MaxSize].
	Wanted int
	// Target is the size to reach now: Wanted when growing, the size
	// while a surplus is waited out, then the most wanted during it.
	Target int
	// Work is the runtime counted: expected remaining of the running and
	// queued attempts, UnknownRuntime for those with no history.
	Work time.Duration
	// SurplusFor is how long the fleet has been larger than wanted.
	SurplusFor time.Duration
}

// Wanted is the number of slaves that finish work of w runtime in
// attempts parallel pieces within TargetDrain, within [MinSize, MaxSize].
func (p Policy) wanted(w time.Duration, attempts, slotsPerSlave int) int {
	if slotsPerSlave < 1 {
		slotsPerSlave = 1
	}
	slots := int((w + p.TargetDrain - 1) / p.TargetDrain)
	// No more slots than attempts: a task runs on one slot however long.
	slots = min(slots, attempts)
	if attempts > 0 {
		slots = max(slots, 1)
	}
	return min(max((slots+slotsPerSlave-1)/slotsPerSlave, p.MinSize), p.MaxSize)
}

// Work is the runtime the capacity figures count.
func (p Policy) Work(c protocol.Capacity) time.Duration {
	return time.Duration(c.QueuedWorkMS+c.RunningWorkMS)*time.Millisecond +
		time.Duration(c.QueuedUnknown+c.RunningUnknown)*p.UnknownRuntime
}

// Decide returns the size the fleet should have now: growth at once,
// shrinking once the surplus has lasted ScaleDownDelay.
func (p Policy) Decide(st *State, o Observation) Decision {
	d := Decision{Work: p.Work(o.Capacity)}
	d.Wanted = p.wanted(d.Work, o.Capacity.Queued+o.Capacity.Running, o.SlotsPerSlave)
	if d.Wanted >= o.Size {
		*st = State{}
		d.Target = d.Wanted
		return d
	}
	if st.surplusSince.IsZero() {
		*st = State{surplusSince: o.Now, peak: d.Wanted}
	}
	st.peak = max(st.peak, d.Wanted)
	d.SurplusFor = o.Now.Sub(st.surplusSince)
	d.Target = o.Size
	if d.SurplusFor >= p.ScaleDownDelay {
		d.Target = st.peak
		*st = State{}
	}
	return d
}
