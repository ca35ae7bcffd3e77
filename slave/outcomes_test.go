package slave

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/queue"
)

// Each way one queue entry can end on a slot: what the master is sent
// (uploads and the finish of the run's lease), what becomes of the entry,
// and that the slave keeps nothing of it (spool, sandbox, fetched tree).
func TestRunOutcomes(t *testing.T) {
	retryBase := fmt.Sprint(model.RetryBase)
	for _, tc := range []struct {
		name string
		// setup queues the entry, and may change the master.
		setup func(h *harness) uint64
		// finish is the finish the master is sent (nil: none); a zero
		// DurationMS is not compared (the clock stands still while a real
		// process runs).
		finish  *protocol.Finish
		uploads []string // accepted, as "output: content" in order
		history []string // of the entry, touches left out
		stats   queue.Stats
		runs    int // commands run
		check   func(t *testing.T, h *harness, id uint64)
	}{{
		name: "pass: the artifacts are kept, the logs are not",
		setup: func(h *harness) uint64 {
			in := sh(`echo out; echo err >&2; mkdir -p out; cat data.txt > out/a.txt`)
			in.files = map[string]string{"data.txt": "artifact\n"}
			return h.task("pass", in, func(s *protocol.Spec) { s.ArtifactGlobs = []string{"out/*.txt"} })
		},
		finish:  &protocol.Finish{ExitCode: 0, Outputs: []string{"artifacts"}, Inputs: protocol.Inputs{ColdItems: 1, FetchSeconds: 1.5}},
		uploads: []string{`artifacts: zip out/a.txt="artifact\n"`},
		history: []string{"reserve", "delete"},
		runs:    1,
	}, {
		name: "pass with keep_passed_logs: the logs are kept too",
		setup: func(h *harness) uint64 {
			h.cfg.KeepPassedLogs = true
			return h.task("passkeep", sh(`echo out; echo err >&2`), nil)
		},
		finish:  &protocol.Finish{ExitCode: 0, Outputs: []string{"stderr", "stdout"}, Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		uploads: []string{"stderr: err\n", "stdout: out\n"},
		history: []string{"reserve", "delete"},
		runs:    1,
	}, {
		name:    "fail: both logs are kept",
		setup:   func(h *harness) uint64 { return h.task("fail", sh(`echo out; echo err >&2; exit 3`), nil) },
		finish:  &protocol.Finish{ExitCode: 3, Outputs: []string{"stderr", "stdout"}, Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		uploads: []string{"stderr: err\n", "stdout: out\n"},
		history: []string{"reserve", "delete"},
		runs:    1,
	}, {
		name:    "killed by a signal: the exit code is minus the signal; empty logs are not sent",
		setup:   func(h *harness) uint64 { return h.task("killed", sh(`kill -KILL $$`), nil) },
		finish:  &protocol.Finish{ExitCode: -9, Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		history: []string{"reserve", "delete"},
		runs:    1,
	}, {
		name: "timeout: reported as timed out, with the logs; the entry is touched throughout",
		setup: func(h *harness) uint64 {
			return h.task("slow", inputs{command: []string{"block"}}, func(s *protocol.Spec) { s.TimeoutMS = 300_000 })
		},
		finish: &protocol.Finish{ExitCode: -15, TimedOut: true, DurationMS: 300_000, Outputs: []string{"stderr", "stdout"},
			Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		uploads: []string{"stderr: still blocking\n\n------\nKilling task after 300 seconds\n", "stdout: blocking\n"},
		history: []string{"reserve", "delete"},
		runs:    1,
		check: func(t *testing.T, h *harness, id uint64) {
			// A run five times the entry's TTR never lets it go back to
			// the queue: it is touched every touch interval.
			if n := h.q.touches(id); n < 29 || n > 31 {
				t.Errorf("%d touches in 300s, want one every %s", n, touchEvery)
			}
			if starts := h.master.made("start"); len(starts) != 1 {
				t.Errorf("%d starts, want 1", len(starts))
			}
		},
	}, {
		name: "a silent timeout still leaves a stderr, which says so; the empty stdout is not sent",
		setup: func(h *harness) uint64 {
			return h.task("silent", inputs{command: []string{"block", "quiet"}}, func(s *protocol.Spec) { s.TimeoutMS = 1500 })
		},
		finish: &protocol.Finish{ExitCode: -15, TimedOut: true, DurationMS: 1500, Outputs: []string{"stderr"},
			Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		uploads: []string{"stderr: \n------\nKilling task after 1.5 seconds\n"},
		history: []string{"reserve", "delete"},
		runs:    1,
	}, {
		name:  "a command that cannot start is the task's failure, said in its stderr",
		setup: func(h *harness) uint64 { return h.task("nostart", inputs{command: []string{"./no-such-program"}}, nil) },
		finish: &protocol.Finish{ExitCode: -1, Outputs: []string{"stderr"}, Inputs: protocol.Inputs{FetchSeconds: 1.5},
			Error: "(compared below)"},
		history: []string{"reserve", "delete"},
		runs:    1,
		check: func(t *testing.T, h *harness, id uint64) {
			f := h.master.made("finish")[0].finish
			up := h.master.answered("upload")
			if !strings.Contains(f.Error, "no-such-program") || len(up) != 1 ||
				!strings.Contains(up[0].body, "[dist_test] the task could not run: ") || !strings.Contains(up[0].body, "no-such-program") {
				t.Errorf("finish error %q, uploads %+v: want both to name the program", f.Error, up)
			}
		},
	}, {
		name: "invalid manifest: fails at once, not an infrastructure failure",
		setup: func(h *harness) uint64 {
			return h.task("invalid", inputs{err: InvalidInputs(errors.New("path ../x leads out of the sandbox"))}, nil)
		},
		finish: &protocol.Finish{ExitCode: -1, Outputs: []string{"stderr"},
			Error: "inputs hash-invalid: path ../x leads out of the sandbox"},
		uploads: []string{"stderr: \n[dist_test] the task could not run: inputs hash-invalid: path ../x leads out of the sandbox\n"},
		history: []string{"reserve", "delete"},
	}, {
		name:  "inputs that name no command fail at once",
		setup: func(h *harness) uint64 { return h.task("nocmd", inputs{}, nil) },
		finish: &protocol.Finish{ExitCode: -1, Outputs: []string{"stderr"}, Error: "inputs hash-nocmd name no command to run",
			Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		uploads: []string{"stderr: \n[dist_test] the task could not run: inputs hash-nocmd name no command to run\n"},
		history: []string{"reserve", "delete"},
	}, {
		name: "inputs cannot be fetched: an infrastructure failure, queued again for another slave",
		setup: func(h *harness) uint64 {
			h.master.finish = func(_ string, f protocol.Finish) (protocol.Finished, error) {
				return protocol.Finished{State: "queued", Requeued: f.Infra}, nil
			}
			return h.task("infra", inputs{err: errors.New("isolate server: 503 Service Unavailable")}, nil)
		},
		finish: &protocol.Finish{ExitCode: -1, Infra: true, Outputs: []string{"stderr"},
			Error: "fetching inputs hash-infra: isolate server: 503 Service Unavailable"},
		uploads: []string{"stderr: \n[dist_test] the task could not run: fetching inputs hash-infra: isolate server: 503 Service Unavailable\n"},
		history: []string{"reserve", "release(" + retryBase + ", 1s)"},
		stats:   queue.Stats{Delayed: 1},
	}, {
		name: "superseded: the master refuses the result, which is dropped",
		setup: func(h *harness) uint64 {
			h.master.finish = func(string, protocol.Finish) (protocol.Finished, error) {
				return protocol.Finished{}, fmt.Errorf("%w: not the current lease", model.ErrConflict)
			}
			return h.task("superseded", sh(`exit 1`), nil)
		},
		finish:  &protocol.Finish{ExitCode: 1, Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		history: []string{"reserve", "delete"},
		runs:    1,
	}, {
		name: "superseded before the finish: the master refuses an output; nothing more is sent",
		setup: func(h *harness) uint64 {
			h.master.upload = func(string, string, []byte) error { return fmt.Errorf("%w: not the current lease", model.ErrConflict) }
			return h.task("refused", sh(`echo out; echo err >&2; exit 1`), nil)
		},
		history: []string{"reserve", "delete"},
		runs:    1,
		check: func(t *testing.T, h *harness, id uint64) {
			if up := h.master.made("upload"); len(up) != 1 {
				t.Errorf("%d uploads tried, want 1 (the first refused)", len(up))
			}
		},
	}, {
		name: "the master cannot store the outputs: tried four times each, then reported missing",
		setup: func(h *harness) uint64 {
			h.master.upload = func(string, string, []byte) error { return fmt.Errorf("%w: S3 is down", model.ErrUnavailable) }
			return h.task("nos3", sh(`echo out; echo err >&2; exit 1`), nil)
		},
		finish:  &protocol.Finish{ExitCode: 1, Missing: []string{"stderr", "stdout"}, Inputs: protocol.Inputs{FetchSeconds: 1.5}},
		history: []string{"reserve", "delete"},
		runs:    1,
		check: func(t *testing.T, h *harness, id uint64) {
			if up := h.master.made("upload"); len(up) != 8 {
				t.Errorf("%d uploads tried, want 4 per output", len(up))
			}
		},
	}, {
		name: "a stale entry (canceled, or queued again under a new token) is deleted unrun",
		setup: func(h *harness) uint64 {
			e := h.define("stale", sh(`exit 0`), nil)
			e.Token = "old-token"
			return h.put(e)
		},
		history: []string{"reserve", "delete"},
		check: func(t *testing.T, h *harness, id uint64) {
			if f, _ := h.inputs.counts(); f != 0 {
				t.Errorf("%d fetches for a stale entry", f)
			}
		},
	}, {
		name: "an entry that keeps crashing slaves is buried",
		setup: func(h *harness) uint64 {
			h.master.start = func(protocol.Start) (protocol.Started, error) {
				return protocol.Started{}, fmt.Errorf("%w: started 5 times without a result", model.ErrPoison)
			}
			return h.task("poison", sh(`exit 0`), nil)
		},
		history: []string{"reserve", fmt.Sprintf("bury(%d)", entryPrio)},
		stats:   queue.Stats{Buried: 1},
	}, {
		// The slot, not the entry, waits for a silent master: the entry
		// is ready for whichever slot the master answers first.
		name: "the master does not answer the start: the entry goes back at once, with its priority",
		setup: func(h *harness) uint64 {
			h.master.start = func(protocol.Start) (protocol.Started, error) {
				return protocol.Started{}, fmt.Errorf("%w: database restarting", model.ErrUnavailable)
			}
			return h.task("nostart", sh(`exit 0`), nil)
		},
		history: []string{"reserve", fmt.Sprintf("release(%d, 0s)", entryPrio)},
		stats:   queue.Stats{Ready: 1},
	}, {
		name: "the master refuses the start: the entry goes back, delayed, with its priority",
		setup: func(h *harness) uint64 {
			h.master.start = func(protocol.Start) (protocol.Started, error) {
				return protocol.Started{}, fmt.Errorf("%w: no such slave", model.ErrInvalid)
			}
			return h.task("refused", sh(`exit 0`), nil)
		},
		history: []string{"reserve", fmt.Sprintf("release(%d, 2s)", entryPrio)},
		stats:   queue.Stats{Delayed: 1},
	}, {
		name:    "an entry that is not a dist_test task is buried",
		setup:   func(h *harness) uint64 { return h.putRaw([]byte("hello")) },
		history: []string{"reserve", "bury(0)"},
		stats:   queue.Stats{Buried: 1},
	}, {
		name:    "an entry without attempt or token is buried",
		setup:   func(h *harness) uint64 { return h.putRaw([]byte(`{"job_id":"job-1","task_id":"x"}`)) },
		history: []string{"reserve", "bury(0)"},
		stats:   queue.Stats{Buried: 1},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(t, 1)
				id := tc.setup(h)
				h.start()
				h.waitFor("the slot to let the entry go", func() bool { return h.q.settled(id) })
				h.stop()

				fins := h.master.made("finish")
				switch {
				case tc.finish == nil && len(fins) != 0:
					t.Errorf("finish sent: %+v", fins)
				case tc.finish != nil && len(fins) != 1:
					t.Errorf("%d finishes sent, want 1: %+v", len(fins), fins)
				case tc.finish != nil:
					got, want := fins[0].finish, *tc.finish
					if want.DurationMS == 0 {
						got.DurationMS = 0
					}
					if want.Error == "(compared below)" {
						got.Error = want.Error
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("finish =\n %+v, want\n %+v", got, want)
					}
					if lease := h.master.answered("start")[0].lease; fins[0].lease != lease {
						t.Errorf("finish for lease %q, want the run's, %q", fins[0].lease, lease)
					}
				}
				if up := h.uploads(); (tc.uploads != nil || tc.check == nil) && !slices.Equal(up, tc.uploads) {
					t.Errorf("uploads = %q, want %q", up, tc.uploads)
				}
				if got := h.q.history(id); !slices.Equal(got, tc.history) {
					t.Errorf("entry: %q, want %q", got, tc.history)
				}
				if got := h.stats(); got != tc.stats {
					t.Errorf("queue: %+v, want %+v", got, tc.stats)
				}
				if cmds, _ := h.runner.ran(); len(cmds) != tc.runs {
					t.Errorf("%d commands run, want %d", len(cmds), tc.runs)
				}
				if a := h.master.made("abort"); len(a) != 0 {
					t.Errorf("aborts: %+v", a)
				}
				if tc.check != nil {
					tc.check(t, h, id)
				}
				h.checkTidy()
			})
		})
	}
}
