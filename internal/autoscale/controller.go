package autoscale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// Provider adds and removes the fleet's machines. A machine is named by
// the hostname its slave registers with.
type Provider interface {
	// Instances lists the fleet's machines, booting ones included.
	Instances(ctx context.Context) ([]string, error)
	// Grow adds n machines.
	Grow(ctx context.Context, n int) error
	// Remove deletes exactly these machines, whose slaves have left.
	Remove(ctx context.Context, hosts []string) error
}

// Master is what the controller asks of the master (client.Client).
type Master interface {
	Capacity(ctx context.Context) (protocol.Capacity, error)
	Slaves(ctx context.Context) ([]protocol.Slave, error)
	Drain(ctx context.Context, slaveID string) (protocol.Slave, error)
}

// Controller applies the policy to a fleet every Interval.
type Controller struct {
	Policy   Policy
	Master   Master
	Provider Provider
	// SlaveSlots is the slots of a slave, used while no slave is alive to
	// tell the master's figure.
	SlaveSlots int
	Interval   time.Duration
	// DryRun logs and prints each decision and changes nothing.
	DryRun bool
	Log    *slog.Logger

	state    State
	draining map[string][]string // host → the ids of its slaves told to drain
}

// Run decides and acts every Interval until ctx ends. A failed round is
// logged and the next one tries again.
func (c *Controller) Run(ctx context.Context) error {
	t := time.NewTicker(c.Interval)
	defer t.Stop()
	for {
		if err := c.Step(ctx); err != nil && ctx.Err() == nil {
			c.log().Warn("autoscale round failed; trying again", "err", err, "in", c.Interval)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (c *Controller) log() *slog.Logger {
	if c.Log == nil {
		return slog.Default()
	}
	return c.Log
}

// Step is one round: read the master and the fleet, remove the machines
// whose drained slaves have left, decide, then grow or drain idle slaves.
func (c *Controller) Step(ctx context.Context) error {
	if c.draining == nil {
		c.draining = map[string][]string{}
	}
	capa, err := c.Master.Capacity(ctx)
	if err != nil {
		return err
	}
	slaves, err := c.Master.Slaves(ctx)
	if err != nil {
		return err
	}
	hosts, err := c.Provider.Instances(ctx)
	if err != nil {
		return fmt.Errorf("list the fleet: %w", err)
	}
	removed, err := c.removeDrained(ctx, hosts, slaves)
	if err != nil {
		return err
	}
	hosts = slices.DeleteFunc(hosts, func(h string) bool { return slices.Contains(removed, h) })
	size := 0
	for _, h := range hosts {
		if _, ok := c.draining[h]; !ok {
			size++
		}
	}
	per := capa.SlotsPerSlave
	if per < 1 {
		per = max(c.SlaveSlots, 1)
	}
	d := c.Policy.Decide(&c.state, Observation{Now: time.Now(), Capacity: capa, Size: size, SlotsPerSlave: per})
	action := "none"
	switch {
	case d.Target > size:
		action = fmt.Sprintf("grow by %d", d.Target-size)
	case d.Target < size:
		action = fmt.Sprintf("drain %d idle", size-d.Target)
	}
	c.log().Info("autoscale decision", "action", action, "size", size, "wanted", d.Wanted, "target", d.Target,
		"queued", capa.Queued, "running", capa.Running, "no_history", capa.QueuedUnknown+capa.RunningUnknown,
		"work", d.Work.Round(time.Second), "slots_per_slave", per, "slaves_alive", capa.SlavesAlive,
		"slaves_draining", capa.SlavesDraining, "surplus_for", d.SurplusFor.Round(time.Second),
		"removing", len(c.draining), "dry_run", c.DryRun)
	switch {
	case d.Target > size && !c.DryRun:
		if err := c.Provider.Grow(ctx, d.Target-size); err != nil {
			return fmt.Errorf("grow by %d: %w", d.Target-size, err)
		}
		c.log().Info("fleet grown", "by", d.Target-size, "to", d.Target)
	case d.Target < size:
		return c.shrink(ctx, size-d.Target, hosts, slaves)
	}
	return nil
}

// shrink drains up to n idle slaves of the fleet's machines. Busy slaves
// are left alone: the next rounds take them once idle.
func (c *Controller) shrink(ctx context.Context, n int, hosts []string, slaves []protocol.Slave) error {
	idle := IdleSlaves(slaves, hosts, c.draining)
	if len(idle) > n {
		idle = idle[:n]
	}
	if len(idle) < n {
		c.log().Info("fewer idle slaves than the surplus; the rest wait until idle", "surplus", n, "idle", len(idle))
	}
	var errs []error
	for _, s := range idle {
		if c.DryRun {
			c.log().Info("would drain", "slave", s.ID, "host", s.Hostname)
			continue
		}
		if _, err := c.Master.Drain(ctx, s.ID); err != nil {
			errs = append(errs, err)
			continue
		}
		c.draining[s.Hostname] = append(c.draining[s.Hostname], s.ID)
		c.log().Info("draining", "slave", s.ID, "host", s.Hostname)
	}
	return errors.Join(errs...)
}

// IdleSlaves are the alive slaves that run nothing, on machines of the
// fleet not already being removed, oldest registration first: the newest
// machines may still be within a billing minimum.
func IdleSlaves(slaves []protocol.Slave, hosts []string, removing map[string][]string) []protocol.Slave {
	var out []protocol.Slave
	for _, s := range slaves {
		if _, gone := removing[s.Hostname]; gone || s.State != string(model.SlaveAlive) || s.Running > 0 || !slices.Contains(hosts, s.Hostname) {
			continue
		}
		out = append(out, s)
	}
	slices.SortStableFunc(out, func(a, b protocol.Slave) int { return a.RegisteredAt.Compare(b.RegisteredAt) })
	return out
}

// removeDrained deletes the machines whose drained slaves are no longer
// live (they deregistered, or were lost), and those whose slave left on
// its own; it forgets the machines that left the fleet by themselves.
func (c *Controller) removeDrained(ctx context.Context, hosts []string, slaves []protocol.Slave) (removed []string, err error) {
	live := map[string]bool{}
	for _, s := range slaves {
		if model.SlaveState(s.State).Live() {
			live[s.ID] = true
		}
	}
	var done []string
	for host, ids := range c.draining {
		if !slices.Contains(hosts, host) {
			delete(c.draining, host)
			continue
		}
		if !slices.ContainsFunc(ids, func(id string) bool { return live[id] }) {
			done = append(done, host)
		}
	}
	for _, host := range LeftOnTheirOwn(slaves, hosts) {
		if _, ok := c.draining[host]; !ok {
			c.log().Info("the slave of this machine left on its own (drained by hand, or stopped); removing it", "host", host)
			done = append(done, host)
		}
	}
	if len(done) == 0 {
		return nil, nil
	}
	slices.Sort(done)
	if c.DryRun {
		c.log().Info("would remove", "hosts", done)
		return done, nil
	}
	if err := c.Provider.Remove(ctx, done); err != nil {
		return nil, fmt.Errorf("remove %v: %w", done, err)
	}
	for _, h := range done {
		delete(c.draining, h)
	}
	c.log().Info("machines removed; their slaves had left", "hosts", done)
	return done, nil
}

// LeftOnTheirOwn are the machines of the fleet whose newest slave
// registration has ended by deregistering (drained by an operator, by an
// autoscaler that has since restarted, or stopped), with none live: they
// run nothing and will not, as a slave unit restarts only on failure. A
// machine whose slave has not registered yet is booting, and one whose
// slave was lost may come back; both are left alone.
func LeftOnTheirOwn(slaves []protocol.Slave, hosts []string) []string {
	newest := map[string]protocol.Slave{}
	live := map[string]bool{}
	for _, s := range slaves {
		if model.SlaveState(s.State).Live() {
			live[s.Hostname] = true
		}
		if n, ok := newest[s.Hostname]; !ok || s.RegisteredAt.After(n.RegisteredAt) {
			newest[s.Hostname] = s
		}
	}
	var out []string
	for _, h := range hosts {
		if n, ok := newest[h]; ok && !live[h] && n.State == string(model.SlaveTerminated) {
			out = append(out, h)
		}
	}
	return out
}
