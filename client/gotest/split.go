package gotest

import (
	"cmp"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
)

// Task is one task of the run: a package's binary run on some of its
// tests (Tests), or on all the tests its list missed (Unlisted).
type Task struct {
	Pkg         *Package
	Tests       []string // run with -test.run; nil for the unlisted task
	Unlisted    bool     // run with -test.skip of every listed test
	Expected    float64  // seconds, from the history; 0 when unknown
	Description string
}

// runFlags are the -test.run and -test.skip flags of the task. The
// unlisted task keeps to the tests the user selected (listPattern, "."
// for all) that are not listed.
func (t Task) runFlags(listPattern string) []string {
	if !t.Unlisted {
		return []string{"-test.run=" + anchored(t.Tests)}
	}
	var flags []string
	if listPattern != "." {
		flags = append(flags, "-test.run="+listPattern)
	}
	if len(t.Pkg.Tests) > 0 {
		flags = append(flags, "-test.skip="+anchored(t.Pkg.Tests))
	}
	return flags
}

// anchored is a -test.run pattern that matches exactly the named
// top-level tests (and their subtests).
func anchored(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = regexp.QuoteMeta(n)
	}
	return "^(" + strings.Join(q, "|") + ")$"
}

// split packs the tests of each package into tasks of about target
// seconds each, by the longest-first rule over the runtimes of the
// history. A package none of whose tests has a history is one task; a
// test new to a package with a history counts the mean of the others.
// Every package also gets its unlisted task.
func split(pkgs []*Package, h History, target float64) []Task {
	var tasks []Task
	for _, p := range pkgs {
		if p.Failed() {
			continue
		}
		var groups [][]string
		var loads []float64
		known := h[p.ImportPath]
		sum, n := 0.0, 0
		for _, t := range p.Tests {
			if s, ok := known[t]; ok {
				sum += s
				n++
			}
		}
		switch {
		case len(p.Tests) == 0:
		case n == 0:
			groups, loads = [][]string{p.Tests}, []float64{0}
		default:
			mean := sum / float64(n)
			secs := func(t string) float64 {
				if s, ok := known[t]; ok {
					return s
				}
				return mean
			}
			total := 0.0
			for _, t := range p.Tests {
				total += secs(t)
			}
			k := int(math.Ceil(total / target))
			k = min(max(k, 1), len(p.Tests))
			order := slices.Clone(p.Tests)
			slices.SortStableFunc(order, func(a, b string) int { return cmp.Compare(secs(b), secs(a)) })
			groups, loads = make([][]string, k), make([]float64, k)
			for _, t := range order {
				i := slices.Index(loads, slices.Min(loads))
				groups[i] = append(groups[i], t)
				loads[i] += secs(t)
			}
			// Each task runs its tests in the package's order, as go test
			// would.
			pos := map[string]int{}
			for i, t := range p.Tests {
				pos[t] = i
			}
			for _, g := range groups {
				slices.SortFunc(g, func(a, b string) int { return pos[a] - pos[b] })
			}
		}
		for i, g := range groups {
			tasks = append(tasks, Task{Pkg: p, Tests: g, Expected: loads[i],
				Description: fmt.Sprintf("go-test %s %d/%d", p.ImportPath, i+1, len(groups))})
		}
		tasks = append(tasks, Task{Pkg: p, Unlisted: true, Description: "go-test " + p.ImportPath + " unlisted"})
	}
	// Longest first, so that the fleet starts the long ones first.
	slices.SortStableFunc(tasks, func(a, b Task) int { return cmp.Compare(b.Expected, a.Expected) })
	return tasks
}
