package slave

import (
	"context"
	"sort"
)

// run is one attempt running in a slot.
type run struct {
	cancel context.CancelFunc
	// dropped: the master no longer counts this run (canceled, handed to
	// another slave, or this slave was declared lost). It is killed and
	// nothing about it is reported.
	dropped bool
	// logs are the run's stdout and stderr files, once its folder is
	// made; sent is how much of each the master has (see tails).
	logs [2]string
	sent [2]int64
}

func (s *Slave) add(lease string, cancel context.CancelFunc) *run {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &run{cancel: cancel}
	s.runs[lease] = r
	return r
}

func (s *Slave) remove(lease string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.runs, lease)
}

func (s *Slave) isDropped(r *run) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return r.dropped
}

// leases lists the runs to report in a heartbeat.
func (s *Slave) leases() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.runs))
	for l, r := range s.runs {
		if !r.dropped {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

func (s *Slave) drop(lease, why string) {
	s.mu.Lock()
	r := s.runs[lease]
	if r != nil {
		r.dropped = true
	}
	s.mu.Unlock()
	if r != nil {
		s.log.Info("stopping a run", "lease", leaseTag(lease), "why", why)
		r.cancel()
	}
}

// leaseTag names a run in the logs by the start of its lease, which is
// enough to tell runs apart without writing down the secret. A lease is
// the master's to choose: a short one is shown whole rather than crash
// the slave.
func leaseTag(lease string) string { return lease[:min(len(lease), 8)] }

func (s *Slave) dropAll() {
	for _, l := range s.leases() {
		s.drop(l, "reset by the master")
	}
}
