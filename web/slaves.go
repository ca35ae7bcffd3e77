package web

import (
	"net/http"
	"sort"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// slotRow is what one slot of a slave runs now.
type slotRow struct {
	Slot    int
	Attempt *model.Attempt
}

// slaveRow is one slave on the slaves page.
type slaveRow struct {
	model.Slave
	SlotRows []slotRow // alive slaves only
	Cache    *model.CacheStats
}

// recentlyGone is how long a slave that left stays on the slaves page.
const recentlyGone = time.Hour

// maxSlaveLookups bounds the slaves whose runs the page reads (a query
// each): past it, the page gives counts only.
const maxSlaveLookups = 500

// Slaves shows every slave that is alive, lost, or left within the last
// hour (host, slots used of total, version, heartbeat age, state and what
// each slot runs now), and the queue: ready, reserved, delayed, buried
// entries and the one waiting longest.
func (p *Pages) Slaves(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	all, err := p.src.Slaves(ctx, false)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	stats, err := p.src.QueueStats(ctx)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	oldest, waiting, err := p.src.OldestQueued(ctx)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	now := p.src.Now()
	var rows []slaveRow
	gone, alive, slots, busy := 0, 0, 0, 0
	for _, s := range all {
		if s.State == model.SlaveTerminated && now.Sub(s.LastHeartbeat) > recentlyGone {
			gone++
			continue
		}
		row := slaveRow{Slave: s}
		if c, ok := p.src.SlaveCache(s.ID); ok && s.State.Live() {
			row.Cache = &c
		}
		if s.State.Live() {
			alive++
			slots += s.Slots
			if alive <= maxSlaveLookups {
				runs, err := p.src.RunningOn(ctx, s.ID)
				if err != nil {
					p.fail(w, r, err)
					return
				}
				row.SlotRows = slotRows(s.Slots, runs)
				row.Running = len(runs)
			}
			busy += row.Running
		}
		rows = append(rows, row)
	}
	// Alive first, then draining, lost, gone; by host within each.
	rank := map[model.SlaveState]int{model.SlaveAlive: 0, model.SlaveDraining: 1, model.SlaveLost: 2, model.SlaveTerminated: 3}
	sort.SliceStable(rows, func(i, j int) bool {
		if a, b := rank[rows[i].State], rank[rows[j].State]; a != b {
			return a < b
		}
		return rows[i].Hostname < rows[j].Hostname
	})
	data := map[string]any{"Slaves": rows, "Gone": gone, "Alive": alive, "Slots": slots, "Busy": busy,
		"Stats": stats, "Waiting": waiting, "Lookups": maxSlaveLookups}
	if waiting {
		data["Oldest"] = oldest
		data["OldestAge"] = now.Sub(oldest.SubmittedAt).Round(time.Second).String()
	}
	p.render(w, r, "slaves.html", data)
}

// slotRows places a slave's runs in its slots; a run in a slot past the
// count the slave registered with gets a row of its own.
func slotRows(n int, runs []model.Attempt) []slotRow {
	rows := make([]slotRow, n)
	for i := range rows {
		rows[i].Slot = i
	}
	for i := range runs {
		a := &runs[i]
		if a.Slot >= 0 && a.Slot < n && rows[a.Slot].Attempt == nil {
			rows[a.Slot].Attempt = a
		} else {
			rows = append(rows, slotRow{Slot: a.Slot, Attempt: a})
		}
	}
	return rows
}
