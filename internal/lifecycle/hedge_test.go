package lifecycle

import (
	"errors"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/model"
)

func TestHedgeAfter(t *testing.T) {
	for _, c := range []struct{ p90, want time.Duration }{
		{0, 0}, {time.Second, 31 * time.Second}, {30 * time.Second, time.Minute}, {10 * time.Minute, 20 * time.Minute},
	} {
		if got := HedgeAfter(c.p90); got != c.want {
			t.Errorf("HedgeAfter(%v) = %v, want %v", c.p90, got, c.want)
		}
	}
}

// The two runs of a hedged attempt: the hedge starts from its own token on
// another slave, and whichever run finishes first is the attempt's.
func TestHedgeAndResolve(t *testing.T) {
	a := running(0)
	if _, _, err := Hedge(queuedAttempt(0), ids(), t0); !errors.Is(err, model.ErrConflict) {
		t.Errorf("hedge of a queued attempt: %v", err)
	}
	h, ev, err := Hedge(a, ids(), t0)
	if err != nil || h.Hedge.Token != "id-1" || ev.Kind != model.EventAttemptHedged {
		t.Fatalf("Hedge = %+v, %+v, %v", h, ev, err)
	}
	if _, _, err := Hedge(h, ids(), t0); !errors.Is(err, model.ErrConflict) {
		t.Errorf("second hedge: %v", err)
	}
	req := StartRequest{AttemptID: 7, Token: "id-1", EntryID: 9, SlaveID: "s1", Slot: 2}
	if _, _, _, err := StartAny(h, req, ids(), t0); !errors.As(err, new(*AvoidError)) {
		t.Errorf("hedge beside its first run: %v; want an AvoidError", err)
	}
	req.SlaveID = "s2"
	stored, view, _, err := StartAny(h, req, ids(), t0.Add(time.Minute))
	if err != nil || view.Lease != "id-1" || view.SlaveID != "s2" || stored.Lease != "lease-1" || stored.SlaveID != "s1" ||
		stored.Hedge.Lease != "id-1" || stored.Runs != a.Runs {
		t.Fatalf("hedge start: stored %+v, view %+v, %v", stored, view, err)
	}
	if _, _, _, err := StartAny(stored, req, ids(), t0); !errors.Is(err, model.ErrConflict) {
		t.Errorf("hedge started twice: %v", err)
	}
	// The hedge finishes first: it becomes the attempt's run.
	won, sup := Resolve(stored, "id-1", "other finished", t0)
	if won.Lease != "id-1" || won.SlaveID != "s2" || won.Hedge != (model.HedgeRun{}) || sup == nil ||
		sup.Kind != model.EventRunSuperseded || sup.SlaveID != "s1" {
		t.Errorf("hedge wins: %+v, %+v", won, sup)
	}
	// The first run finishes first: the hedge goes.
	won, sup = Resolve(stored, "lease-1", "other finished", t0)
	if won.Lease != "lease-1" || won.SlaveID != "s1" || won.Hedge != (model.HedgeRun{}) || sup == nil || sup.SlaveID != "s2" {
		t.Errorf("first run wins: %+v, %+v", won, sup)
	}
	// A hedge never started is dropped without a word.
	if won, sup := Resolve(h, "lease-1", "", t0); won.Hedge.Token != "" || sup != nil {
		t.Errorf("unstarted hedge: %+v, %+v", won, sup)
	}
	// A forged lease changes nothing.
	if got, sup := Resolve(stored, "forged", "", t0); got.Hedge != stored.Hedge || sup != nil {
		t.Errorf("forged lease: %+v, %+v", got, sup)
	}
	if got, ev := Unhedge(stored, "lost", t0); got.Hedge != (model.HedgeRun{}) || ev.SlaveID != "s2" || got.Lease != "lease-1" {
		t.Errorf("Unhedge = %+v, %+v", got, ev)
	}
}
