package server

import (
	"cmp"
	"maps"
	"slices"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/store"
)

// The feeding policy: which queued attempts enter the queue, and in which
// order they are put. It is all here, in pure functions.
//
// Retries and runs queued again after a lost slave come first and ignore
// the window: they are late already, and a full window must not hold them
// back. Then jobs are served oldest first, each with at most window
// entries in the queue at once, which is what shares the slaves between
// jobs: a new job's tasks enter the queue beside an older job's instead of
// behind all of it. Within a job, attempts go in priority order (longest
// expected runtime first), which the queue keeps; puts alternate between
// jobs, so that equal priorities alternate in the queue too.
//
// Fair share between users: the queue's priorities put long tasks first,
// whoever they belong to, so a window per job alone lets a user's big job
// of long tasks take every slot while another user's small job waits. When
// the jobs waiting belong to several users, each user gets a share of the
// slaves' slots (fairShares: even, and what a user cannot use goes to the
// others), and the feeder keeps no more of a user's attempts running or in
// the queue than its share (userRoom); within a user,
// the jobs take turns, each within its window.

// feedTake is how many of a job's waiting attempts one round puts, the
// first in the job's priority order.
type feedTake struct {
	JobID string
	N     int
}

// planFeed decides one round of the feeder from the backlog of every job
// with attempts waiting for a queue entry: at most limit attempts in all,
// and, retries aside, at most window of each job in the queue.
//
// room, when not nil, bounds the attempts of each user's jobs put in this
// round (userRoom); retries count against it, though they are put anyway.
// The jobs then take turns, one attempt at a time, oldest first.
func planFeed(backlog []store.JobBacklog, window, limit int, room map[string]int) []feedTake {
	jobs := slices.Clone(backlog)
	slices.SortStableFunc(jobs, func(a, b store.JobBacklog) int { return cmp.Compare(a.Oldest, b.Oldest) })
	take := make([]int, len(jobs))
	left := limit
	room = maps.Clone(room)
	for i, j := range jobs {
		n := min(j.Retries, left)
		take[i] += n
		left -= n
		if room != nil {
			room[j.User] -= n
		}
	}
	// firsts is how many first attempts each job may have put: its room
	// in its window.
	firsts := make([]int, len(jobs))
	for i, j := range jobs {
		firsts[i] = max(0, min(window-j.InQueue, j.Waiting-j.Retries))
	}
	if room == nil {
		for i := range jobs {
			n := min(firsts[i], left)
			take[i] += n
			left -= n
		}
	}
	for more := room != nil; more && left > 0; {
		more = false
		for i, j := range jobs {
			if left > 0 && room[j.User] > 0 && firsts[i] > 0 {
				take[i]++
				firsts[i]--
				left--
				room[j.User]--
				more = true
			}
		}
	}
	var plan []feedTake
	for i, j := range jobs {
		if take[i] > 0 {
			plan = append(plan, feedTake{JobID: j.JobID, N: take[i]})
		}
	}
	return plan
}

// fairShares divides slots between users by max-min fairness: each user
// gets an even share, and what a user does not need (demand: its attempts
// running, in the queue or waiting) goes evenly to the others.
func fairShares(demand map[string]int, slots int) map[string]int {
	share := make(map[string]int, len(demand))
	users := slices.Sorted(maps.Keys(demand))
	for left := slots; left > 0; {
		var hungry []string
		for _, u := range users {
			if share[u] < demand[u] {
				hungry = append(hungry, u)
			}
		}
		if len(hungry) == 0 {
			break
		}
		each := max(1, left/len(hungry))
		for _, u := range hungry {
			n := min(each, demand[u]-share[u], left)
			share[u] += n
			left -= n
		}
	}
	return share
}

// userRoom is how many more attempts of each user the feeder may put: its
// share of the slots less what it has running or in the queue (load). No
// entry is kept ready beyond the share: the queue takes the best priority
// first, so a user's spare entry would take the next free slot from a user
// below its share. A freed slot waits instead for the feeder, which each
// finish wakes while users share.
func userRoom(share, load map[string]int) map[string]int {
	room := make(map[string]int, len(share))
	for u, s := range share {
		room[u] = max(0, s-load[u])
	}
	return room
}

// orderFeed orders the attempts of one round for putting: round-robin
// over the jobs, in the order of perJob, each job's in its own order.
func orderFeed(perJob [][]model.Attempt) []model.Attempt {
	var out []model.Attempt
	for more := true; more; {
		more = false
		for i, q := range perJob {
			if len(q) > 0 {
				out = append(out, q[0])
				perJob[i] = q[1:]
				more = true
			}
		}
	}
	return out
}
