package lifecycle

import (
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

// slaveEvents are the events of a slave registration reaching each state.
var slaveEvents = map[model.SlaveState]model.EventKind{
	model.SlaveLost:       model.EventSlaveLost,
	model.SlaveDraining:   model.EventSlaveDraining,
	model.SlaveTerminated: model.EventSlaveTerminated,
	model.SlaveAlive:      model.EventSlaveReset, // a lost slave that is back
}

// SetSlave decides the change of slave registration id from state old to
// state: nothing when it is in that state already (changed is false); else
// when it ended (now, or zero when it is live again) and the event.
func SetSlave(id string, old, state model.SlaveState, now time.Time) (ended time.Time, ev model.Event, changed bool) {
	if old == state {
		return time.Time{}, model.Event{}, false
	}
	if !state.Live() {
		ended = now
	}
	return ended, model.Event{At: now, Kind: slaveEvents[state], SlaveID: id, Attempt: -1, Detail: "was " + string(old)}, true
}
