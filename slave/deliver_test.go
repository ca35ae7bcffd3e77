package slave

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// A slave stopped while the master is away keeps its result in the spool;
// the next slave on the same scratch folder sends it, outputs and all,
// and removes what a save cut short left there.
func TestSpoolReplayAfterRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		upload := h.master.upload
		h.master.upload = func(lease, name string, body []byte) error {
			h.master.setDown(unreachableMaster)
			return unreachableMaster
		}
		a := h.task("a", sh(`echo out; echo err >&2; exit 3`), nil)
		h.start()
		h.waitFor("a heartbeat", func() bool { return len(h.master.made("heartbeat")) > 0 })
		h.stop()

		lease := h.master.answered("start")[0].lease
		if got := h.q.history(a); !slices.Equal(got, []string{"reserve", fmt.Sprintf("release(%d, 0s)", model.RetryBase)}) {
			t.Errorf("entry: %q, want given back at once", got)
		}
		if n := len(h.master.made("upload")); n < 2 {
			t.Errorf("%d uploads tried while the master was away, want it retried", n)
		}
		if hb := h.master.made("heartbeat"); !slices.Equal(hb[0].hb.Pending, []string{lease}) {
			t.Errorf("heartbeat: %+v, want the result pending", hb[0].hb)
		}
		dir := filepath.Join(h.spoolDir(), lease)
		if got := names(t, dir); !slices.Equal(got, []string{"report.json", "stderr", "stdout"}) {
			t.Errorf("spooled %q", got)
		}
		for name, want := range map[string]string{"stdout": "out\n", "stderr": "err\n"} {
			if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
				t.Errorf("spooled %s = %q, %v; want %q", name, b, err, want)
			}
		}
		var r report
		if b, err := os.ReadFile(filepath.Join(dir, "report.json")); err != nil || json.Unmarshal(b, &r) != nil {
			t.Fatalf("report.json: %s %v", b, err)
		}
		want := report{Lease: lease, Finish: protocol.Finish{ExitCode: 3, Inputs: protocol.Inputs{FetchSeconds: 1.5}},
			Outputs: map[string]string{"stdout": "stdout", "stderr": "stderr"}}
		r.Finish.DurationMS = 0
		if !reflect.DeepEqual(r, want) {
			t.Errorf("report = %+v, want %+v", r, want)
		}

		// What a save cut short, or a foreign hand, leaves in the spool.
		junk := map[string]map[string]string{
			"half-saved":     {"stdout": "x"},
			"lease-other":    {"report.json": `{"lease":"lease-else","finish":{"exit_code":1}}`},
			"lease-garbled":  {"report.json": `{"lease":`},
			"lease-tmp-only": {"report.json.tmp": `{}`},
		}
		for d, files := range junk {
			for name, content := range files {
				if err := os.MkdirAll(filepath.Join(h.spoolDir(), d), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(h.spoolDir(), d, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}
		// And what a killed run left in the sandboxes.
		left := filepath.Join(h.sandboxesDir(), "task-left", "sandbox", "ro")
		if err := os.MkdirAll(left, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(left, "f"), nil, 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(left, 0o500); err != nil {
			t.Fatal(err)
		}
		// And what the remover had not removed yet.
		trashed := filepath.Join(h.sandboxesDir(), ".trash", "task-trashed", "sandbox")
		if err := os.MkdirAll(trashed, 0o700); err != nil {
			t.Fatal(err)
		}

		// The master is back, and has queued the run again under a new
		// token: the old entry is stale.
		h.master.setDown(nil)
		h.master.upload = upload
		h.master.start = func(protocol.Start) (protocol.Started, error) {
			return protocol.Started{}, fmt.Errorf("%w: stale entry", model.ErrConflict)
		}
		h.master.mu.Lock()
		before := len(h.master.calls)
		h.master.mu.Unlock()
		h.start()
		h.waitFor("the spooled result", func() bool { return len(h.master.answered("finish")) == 1 })
		h.waitFor("the stale entry", func() bool { return !h.exists(a) })
		h.stop()

		h.master.mu.Lock()
		after := slices.Clone(h.master.calls[before:])
		h.master.mu.Unlock()
		var sent []string
		for _, c := range after {
			switch c.method {
			case "upload":
				sent = append(sent, fmt.Sprintf("upload %s %s %q", c.lease, c.output, c.body))
			case "finish":
				sent = append(sent, fmt.Sprintf("finish %s %+v", c.lease, c.finish))
			}
		}
		wantSent := []string{
			fmt.Sprintf("upload %s stderr %q", lease, "err\n"),
			fmt.Sprintf("upload %s stdout %q", lease, "out\n"),
			fmt.Sprintf("finish %s %+v", lease, protocol.Finish{ExitCode: 3, Outputs: []string{"stderr", "stdout"},
				Inputs: protocol.Inputs{FetchSeconds: 1.5}}),
		}
		if !slices.Equal(sent, wantSent) {
			t.Errorf("the next slave sent\n %q, want\n %q", sent, wantSent)
		}
		h.checkTidy()
	})
}

// The master goes down as a result is reported, and comes back two
// minutes later, past the entry's TTR. Meanwhile the result waits in the
// spool and is sent again and again, with capped backoff, its entry held;
// the other slot cannot start a task (its start is given back). Once the
// master is back the result lands, once, as it was, and the other task
// runs.
func TestMasterDownThenBack(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 2)
		finish := h.master.finish
		var downAt time.Duration
		wentDown := false
		h.master.finish = func(lease string, f protocol.Finish) (protocol.Finished, error) {
			if !wentDown {
				wentDown, downAt = true, h.now()
				h.master.setDown(unreachableMaster)
				return protocol.Finished{}, unreachableMaster
			}
			return finish(lease, f)
		}
		a := h.task("a", sh(`echo out; echo err >&2; exit 3`), nil)
		h.start()
		h.waitFor("the master to go down", func() bool { return len(h.master.made("finish")) > 0 })
		h.waitFor("ten seconds", func() bool { return h.now() >= downAt+10*time.Second })
		b := h.task("b", sh(`exit 0`), nil)
		h.waitFor("two minutes", func() bool { return h.now() >= downAt+2*time.Minute })

		lease := h.master.answered("start")[0].lease
		spooled := h.spooled()
		if !slices.Equal(spooled, []string{lease}) {
			t.Fatalf("spool holds %q, want the result of %s", spooled, lease)
		}
		rep, err := os.ReadFile(filepath.Join(h.spoolDir(), lease, "report.json"))
		if err != nil {
			t.Fatal(err)
		}
		var r report
		if err := json.Unmarshal(rep, &r); err != nil || r.Lease != lease || r.Finish.ExitCode != 3 {
			t.Errorf("spooled report %s (%v)", rep, err)
		}
		pending := false
		for _, hb := range h.master.made("heartbeat") {
			pending = pending || slices.Equal(hb.hb.Pending, []string{lease})
		}
		if !pending {
			t.Error("no heartbeat listed the spooled result as pending")
		}
		if got := h.q.history(b); !slices.Contains(got, fmt.Sprintf("release(%d, 0s)", entryPrio)) || slices.Contains(got, "delete") {
			t.Errorf("the other entry while the master is down: %q; want its starts given back", got)
		}
		if n := len(h.master.answered("start")); n != 1 {
			t.Errorf("%d starts answered while the master was down, want only the first task's, before", n)
		}

		h.master.setDown(nil)
		backAt := h.now()
		h.waitFor("both tasks", func() bool { return !h.exists(a) && !h.exists(b) })
		h.stop()

		// Work resumes within a second of the master's return, not at the
		// next step of each loop's backoff (up to 10 s): the heartbeat
		// loop asks the silent master often, and its first answer ends
		// the waits of the slot and of the result.
		starts := h.master.answered("start")
		if len(starts) != 2 || starts[1].at > backAt+time.Second {
			t.Errorf("the next task started at %v, the master was back at %v; want within 1 s", starts[len(starts)-1].at, backAt)
		}
		for _, c := range h.master.answered("finish") {
			if c.lease == lease && c.at > backAt+time.Second {
				t.Errorf("the spooled result landed at %v, the master was back at %v; want within 1 s", c.at, backAt)
			}
		}

		tries := h.master.made("finish")
		var at []time.Duration
		for i, c := range tries {
			if c.lease != lease {
				continue
			}
			if !reflect.DeepEqual(c.finish, tries[0].finish) {
				t.Errorf("try %d sent %+v, the first %+v", i+1, c.finish, tries[0].finish)
			}
			at = append(at, c.at)
		}
		checkRetries(t, "tries of the result in two minutes down", at, 12, 10*time.Second)
		var landed []string
		for _, c := range h.master.answered("finish") {
			landed = append(landed, c.lease)
		}
		slices.Sort(landed)
		if other := h.master.answered("start")[1].lease; !slices.Equal(landed, []string{lease, other}) {
			t.Errorf("results landed for %q; want %s and %s, once each", landed, lease, other)
		}
		if got := h.q.history(a); !slices.Equal(got, []string{"reserve", "delete"}) {
			t.Errorf("entry of the spooled result: %q; want held until the result landed, then deleted", got)
		}
		if up := h.uploads(); !slices.Equal(up, []string{"stderr: err\n", "stdout: out\n"}) {
			t.Errorf("uploads = %q", up)
		}
		h.checkTidy()
	})
}

// The spool is read, and what a save cut short left there removed, before
// any run of this slave saves a result: a result being saved at that
// moment was taken for such debris, and its outputs lost.
func TestSpoolIsReadBeforeAnyRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		half := filepath.Join(h.spoolDir(), "lease-half-saved")
		if err := os.MkdirAll(half, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(half, "stdout"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		var atRegister []string
		register := h.master.register
		h.master.register = func(r protocol.Register) (protocol.Registered, error) {
			atRegister = names(t, h.spoolDir())
			return register(r)
		}
		id := h.task("nocmd", inputs{}, nil)
		h.start()
		h.waitFor("the run", func() bool { return h.q.settled(id) })
		h.stop()

		if len(atRegister) != 0 {
			t.Errorf("the spool held %q when the slave registered, ready to run tasks; want it cleaned first", atRegister)
		}
		if f := h.master.made("finish"); len(f) != 1 || !slices.Equal(f[0].finish.Outputs, []string{"stderr"}) {
			t.Errorf("finishes: %+v; want one, its stderr uploaded", f)
		}
		h.checkTidy()
	})
}

// A result held up on its way (its uploads cannot get through for a
// minute: the master's blob store is down) does not hold up its slot: the
// slot runs its next tasks meanwhile, and every result lands once.
func TestSlotGoesOnWhileAResultIsHeldUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(t, 1)
		var heldLease string
		var mu sync.Mutex
		h.master.upload = func(lease, name string, body []byte) error {
			mu.Lock()
			defer mu.Unlock()
			if heldLease == "" {
				heldLease = lease
			}
			if lease == heldLease && h.now() < time.Minute {
				return unreachableMaster
			}
			return nil
		}
		ids := []uint64{
			h.task("held", sh(`echo out; exit 1`), nil), // failed: its logs go up
			h.task("b", sh(`exit 0`), nil),
			h.task("c", sh(`exit 0`), nil),
			h.task("d", sh(`exit 0`), nil),
		}
		h.start()
		h.waitFor("all four tasks", func() bool {
			for _, id := range ids {
				if h.exists(id) {
					return false
				}
			}
			return true
		})
		h.stop()

		starts := h.master.answered("start")
		if len(starts) != 4 {
			t.Fatalf("%d starts answered, want 4", len(starts))
		}
		var heldAt time.Duration
		for _, f := range h.master.answered("finish") {
			if f.lease == heldLease {
				heldAt = f.at
			}
		}
		if heldAt < time.Minute {
			t.Fatalf("the held result landed at %v, before its uploads could", heldAt)
		}
		for _, st := range starts[1:] {
			if st.at >= heldAt {
				t.Errorf("task of lease %s started at %v, after the held result landed (%v): the slot waited for it", st.lease, st.at, heldAt)
			}
		}
		if n := len(h.master.answered("finish")); n != 4 {
			t.Errorf("%d results landed, want 4", n)
		}
		h.checkTidy()
	})
}
