package lifecycle

import (
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

func TestSetSlave(t *testing.T) {
	cases := []struct {
		old, state model.SlaveState
		ended      time.Time
		kind       model.EventKind // "" when nothing changes
	}{
		{model.SlaveAlive, model.SlaveLost, now, model.EventSlaveLost},
		{model.SlaveAlive, model.SlaveTerminated, now, model.EventSlaveTerminated},
		{model.SlaveLost, model.SlaveAlive, time.Time{}, model.EventSlaveReset},
		{model.SlaveLost, model.SlaveTerminated, now, model.EventSlaveTerminated},
		{model.SlaveLost, model.SlaveLost, time.Time{}, ""},
		{model.SlaveAlive, model.SlaveAlive, time.Time{}, ""},
	}
	for _, c := range cases {
		ended, ev, changed := SetSlave("s1", c.old, c.state, now)
		want := model.Event{}
		if c.kind != "" {
			want = model.Event{At: now, Kind: c.kind, SlaveID: "s1", Attempt: -1, Detail: "was " + string(c.old)}
		}
		if changed != (c.kind != "") || !ended.Equal(c.ended) || ev != want {
			t.Errorf("%s → %s: ended %v, event %+v, changed %v; want %v, %+v", c.old, c.state, ended, ev, changed, c.ended, want)
		}
	}
}
