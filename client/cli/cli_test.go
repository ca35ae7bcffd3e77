package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

const hashA = "0123456789abcdef0123456789abcdef01234567"

func writeJobFile(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "job.json")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

const goodJob = `{"tasks": [
  {"isolate_hash": "` + hashA + `", "description": "a test", "timeout": 30, "max_retries": 2,
   "artifact_archive_globs": ["**/*.xml"]},
  {"isolate_hash": "` + hashA + `", "description": "b"}
]}`

func TestMakeJobID(t *testing.T) {
	now := time.Unix(1700000000, 0)
	tests := []struct {
		name, user string
		want       string
	}{
		{"", "alice", "alice.1700000000.42"},
		{"nightly", "alice", "nightly.alice.1700000000.42"},
		{"my job/1", "bob smith", "my_job_1.bob_smith.1700000000.42"},
		{"kudu:asan@x+y-z", "alice", "kudu:asan@x+y-z.alice.1700000000.42"},
		{"..hidden", "alice", "_.hidden.alice.1700000000.42"},
		{"été", "alice", "_t_.alice.1700000000.42"},
		{strings.Repeat("n", 300), "alice", strings.Repeat("n", 200-len(".alice.1700000000.42")) + ".alice.1700000000.42"},
	}
	for _, tt := range tests {
		got := makeJobID(tt.name, tt.user, now, 42)
		if got != tt.want {
			t.Errorf("makeJobID(%q, %q) = %q, want %q", tt.name, tt.user, got, tt.want)
		}
		if !protocol.ValidJobID(got) {
			t.Errorf("makeJobID(%q, %q) = %q, which the master refuses", tt.name, tt.user, got)
		}
	}
}

// Over a real connection: submit --no-wait sends the job, keeps its id and
// says where to watch it, and exits 0 at once.
func TestSubmitNoWait(t *testing.T) {
	fm := newFakeMaster()
	srv := httptest.NewServer(fm)
	defer srv.Close()
	h := newHarness(t, srv.URL, nil)
	h.env.Now = func() time.Time { return time.Unix(1700000000, 0) }

	if code := h.run("submit", "-n", "nightly", "--no-wait", writeJobFile(t, goodJob)); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, h.stderr.String())
	}
	id := fmt.Sprintf("nightly.alice.1700000000.%d", os.Getpid())
	var created []protocol.CreateJob
	fm.locked(func() { created = fm.created })
	if len(created) != 1 {
		t.Fatalf("%d jobs created, want 1", len(created))
	}
	c := created[0]
	if c.ID != id || c.Name != "nightly" || c.User != "alice" {
		t.Errorf("created %+v, want id %s, name nightly, user alice", c, id)
	}
	want := []protocol.Task{
		{IsolateHash: hashA, Description: "a test", Timeout: 30, MaxRetries: 2, ArtifactGlobs: []string{"**/*.xml"}},
		{IsolateHash: hashA, Description: "b"},
	}
	if fmt.Sprintf("%+v", c.Tasks) != fmt.Sprintf("%+v", want) {
		t.Errorf("tasks sent:\n%+v\nwant:\n%+v", c.Tasks, want)
	}
	if b, _ := os.ReadFile(h.lastJobPath()); string(b) != id {
		t.Errorf("last job file holds %q, want %q", b, id)
	}
	wantErr := "Submitted job " + id + "\nWatch your results at " + srv.URL + "/job?job_id=" + url.QueryEscape(id) + "\n"
	if h.stderr.String() != wantErr {
		t.Errorf("stderr = %q, want %q", h.stderr.String(), wantErr)
	}
	if h.stdout.String() != "job_id="+id+"\n" {
		t.Errorf("stdout = %q, want job_id=%s", h.stdout.String(), id)
	}

	// --json (or -o json) says the same as JSON.
	id = fmt.Sprintf("alice.1700000000.%d", os.Getpid())
	for _, flag := range [][]string{{"--json"}, {"-o", "json"}} {
		if code := h.run(append([]string{"submit", "--no-wait"}, append(flag, writeJobFile(t, goodJob))...)...); code != 0 {
			t.Fatalf("%v: exit %d, stderr:\n%s", flag, code, h.stderr.String())
		}
		var got map[string]string
		if err := json.Unmarshal(h.stdout.Bytes(), &got); err != nil || got["job_id"] != id || got["url"] != srv.URL+"/job?job_id="+url.QueryEscape(id) {
			t.Errorf("%v: stdout %q (%v), want job_id and url", flag, h.stdout.String(), err)
		}
	}
	// JSON without --no-wait, or an unknown format, is a usage error.
	for _, args := range [][]string{{"submit", "--json"}, {"submit", "--no-wait", "-o", "yaml"}} {
		if code := h.run(append(args, writeJobFile(t, goodJob))...); code != 1 || len(fm.created) != 3 {
			t.Errorf("%v: exit %d, %d jobs created; want a usage error before any", args, code, len(fm.created))
		}
	}
}

func TestSubmitRefusesBadInputLocally(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"not JSON", "{tasks: [", "malformed JSON"},
		{"no tasks key", `{"jobs": []}`, `missing "tasks"`},
		{"bad hash", `{"tasks": [{"isolate_hash": "xyz", "description": "d"}]}`, `"isolate_hash" must be the hex SHA-1`},
		{"no description", `{"tasks": [{"isolate_hash": "` + hashA + `"}]}`, `task 0: missing "description"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fm := newFakeMaster()
			h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
			path := writeJobFile(t, tt.file)
			if code := h.run("submit", path); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if got := h.stderr.String(); !strings.Contains(got, path+": job JSON: ") || !strings.Contains(got, tt.want) {
				t.Errorf("stderr = %q, want the file name and %q", got, tt.want)
			}
			if len(fm.requests) != 0 {
				t.Errorf("sent %v; a bad job must not reach the master", fm.requests)
			}
			if _, err := os.Stat(h.lastJobPath()); err == nil {
				t.Error("a job that was not submitted became the last job")
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{newFakeMaster()}})
		if code := h.run("submit", "/nonexistent/job.json"); code != 1 || !strings.Contains(h.stderr.String(), "no such file") {
			t.Errorf("exit %d, stderr %q", code, h.stderr.String())
		}
	})
}

func TestSubmitRefusedByTheMaster(t *testing.T) {
	fm := newFakeMaster()
	fm.createErr = model.ErrInvalid
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	if code := h.run("submit", writeJobFile(t, goodJob)); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if got := h.stderr.String(); !strings.Contains(got, "the isolate server does not hold "+hashA) {
		t.Errorf("stderr = %q, want the master's message", got)
	}
	if _, err := os.Stat(h.lastJobPath()); err == nil {
		t.Error("a refused job became the last job")
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"submit"}, "accepts 1 arg"},
		{[]string{"submit", "--bogus", "x.json"}, "unknown flag: --bogus"},
		{[]string{"watch"}, "no job id given, and no job was submitted from here"},
		{[]string{"cancel"}, "usage: dist_test cancel JOB_ID"},
		{[]string{"fetch", "job1"}, "need --logs (-l) or --artifacts (-a)"},
		{[]string{"watch", "--master", "master:8081", "j"}, `--master "master:8081": must be an http:// or https:// URL`},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			h := newHarness(t, "http://master", &http.Client{Transport: inMemory{newFakeMaster()}})
			if code := h.run(tt.args...); code != 1 {
				t.Errorf("exit %d, want 1", code)
			}
			if !strings.Contains(h.stderr.String(), tt.want) {
				t.Errorf("stderr = %q, want %q", h.stderr.String(), tt.want)
			}
		})
	}
}

func TestNoMasterConfigured(t *testing.T) {
	h := newHarness(t, "", nil)
	if code := h.run("watch", "j"); code != 1 || !strings.Contains(h.stderr.String(), "no master to talk to: set DIST_TEST_MASTER") {
		t.Errorf("exit %d, stderr %q", code, h.stderr.String())
	}
}

// The --master flag beats the environment, which beats the file.
func TestMasterPrecedence(t *testing.T) {
	fm := newFakeMaster()
	fm.jobs["j"] = &fakeJob{polls: []model.Counts{counts(1, 1, 0, 0)}}
	srv := httptest.NewServer(fm)
	defer srv.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()

	h := newHarness(t, dead.URL, nil)
	cnf := filepath.Join(h.home, ".dist_test.cnf")
	os.WriteFile(cnf, []byte("[dist_test]\nmaster = "+dead.URL+"\nurl_timeout = 1\n"), 0o644)
	if code := h.run("status", "--master", srv.URL, "j"); code != 0 {
		t.Fatalf("--master over DIST_TEST_MASTER: exit %d, stderr %s", code, h.stderr.String())
	}
	h.vars["DIST_TEST_MASTER"] = srv.URL
	os.WriteFile(cnf, []byte("[dist_test]\nmaster = "+dead.URL+"\n"), 0o644)
	if code := h.run("status", "j"); code != 0 {
		t.Fatalf("DIST_TEST_MASTER over the file: exit %d, stderr %s", code, h.stderr.String())
	}
}

func TestWatchProgress(t *testing.T) {
	polls := []model.Counts{counts(3, 0, 0, 0), counts(3, 1, 0, 1), counts(3, 1, 0, 1), counts(3, 3, 1, 1)}
	tests := []struct {
		name string
		tty  bool
		want string
	}{
		// A bar of passed (=) and failed (x) tests, redrawn at each poll;
		// the ETA extrapolates the pace, as no attempt has an expected
		// runtime; then the summary.
		{"terminal", true, "" +
			"[                        ]  0.0s\t 0/3 tests complete, 0 running\n" +
			"\x1b[F\x1b[2K[\x1b[32m========\x1b[m                ]  0.5s\t 1/3 tests complete\x1b[33m (1 retries)\x1b[m, 0 running, ETA 1s\n" +
			"\x1b[F\x1b[2K[\x1b[32m========\x1b[m                ]  1.0s\t 1/3 tests complete\x1b[33m (1 retries)\x1b[m, 0 running, ETA 2s\n" +
			"\x1b[F\x1b[2K[\x1b[32m================\x1b[m\x1b[31mxxxxxxxx\x1b[m] \x1b[31m 1.5s\t 3/3 tests complete\x1b[m\x1b[31m (1 failed)\x1b[m\x1b[33m (1 retries)\x1b[m\n" +
			"1 of 3 tests failed:\nDetails: http://master/job?job_id=j1\n"},
		// A line when the counts change, none for the poll at 1.0 s.
		{"log", false, "" +
			" 0.0s\t 0/3 tests complete, 0 running\n" +
			" 0.5s\t 1/3 tests complete (1 retries), 0 running, ETA 1s\n" +
			" 1.5s\t 3/3 tests complete (1 failed) (1 retries)\n" +
			"1 of 3 tests failed:\nDetails: http://master/job?job_id=j1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fm := newFakeMaster()
				fm.jobs["j1"] = &fakeJob{polls: polls}
				h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
				h.tty = tt.tty
				if code := h.run("watch", "j1"); code != ExitFailed {
					t.Errorf("exit %d, want 88: a group failed", code)
				}
				if got := h.stdout.String(); got != tt.want {
					t.Errorf("stdout:\n%q\nwant:\n%q", got, tt.want)
				}
				if want := "Watch your results at http://master/job?job_id=j1\n"; h.stderr.String() != want {
					t.Errorf("stderr = %q, want %q", h.stderr.String(), want)
				}
			})
		})
	}
}

func TestWatchPassedIsGreenAndExitsZero(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fm := newFakeMaster()
		fm.jobs["j1"] = &fakeJob{polls: []model.Counts{counts(2, 0, 0, 0), counts(2, 2, 0, 0)}}
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
		h.tty = true
		if code := h.run("watch", "j1"); code != 0 {
			t.Errorf("exit %d, want 0", code)
		}
		want := "[                        ]  0.0s\t 0/2 tests complete, 0 running\n" +
			"\x1b[F\x1b[2K[\x1b[32m========================\x1b[m] \x1b[32m 0.5s\t 2/2 tests complete\x1b[m\n"
		if got := h.stdout.String(); got != want {
			t.Errorf("stdout = %q, want %q", got, want)
		}
	})
}

func TestWatchUnknownJob(t *testing.T) {
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{newFakeMaster()}})
	if code := h.run("watch", "nope"); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if want := "dist_test: job nope is not known to the master at http://master\n"; h.stderr.String() != "Watch your results at http://master/job?job_id=nope\n"+want {
		t.Errorf("stderr = %q, want it to end with %q", h.stderr.String(), want)
	}
}

// submit then watch: the progress, then job_id=<id> last on stdout, and
// the exit code of the result; watch without an id takes the last job.
func TestSubmitWatchesAndPrintsJobID(t *testing.T) {
	for _, tt := range []struct {
		name  string
		final model.Counts
		code  int
	}{
		{"passed", counts(2, 2, 0, 0), 0},
		{"failed", counts(2, 2, 2, 0), ExitFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				fm := newFakeMaster()
				h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
				go func() {
					// The job runs while submit watches it.
					time.Sleep(time.Second + time.Millisecond)
					fm.locked(func() {
						for _, j := range fm.jobs {
							j.polls = append(j.polls, tt.final)
						}
					})
				}()
				id := fmt.Sprintf("alice.%d.%d", time.Now().Unix(), os.Getpid())
				if code := h.run("submit", writeJobFile(t, goodJob)); code != tt.code {
					t.Errorf("exit %d, want %d; stderr %s", code, tt.code, h.stderr.String())
				}
				lines := strings.Split(strings.TrimSuffix(h.stdout.String(), "\n"), "\n")
				if len(lines) < 3 || lines[0] != " 0.0s\t 0/2 tests complete, 0 running" ||
					!strings.HasPrefix(lines[1], " 1.5s\t 2/2 tests complete") {
					t.Fatalf("stdout = %q", h.stdout.String())
				}
				// A failed job is summed up before the job id.
				if summary := tt.code != 0; summary != (len(lines) == 5) || summary && lines[3] != "Details: http://master/job?job_id="+url.QueryEscape(id) {
					t.Errorf("stdout = %q", h.stdout.String())
				}
				if last := lines[len(lines)-1]; last != "job_id="+id {
					t.Errorf("last line %q, want job_id=%s", last, id)
				}

				// A later watch without an id finds the job again.
				if code := h.run("watch"); code != tt.code {
					t.Errorf("watch: exit %d, want %d", code, tt.code)
				}
				if !strings.HasPrefix(h.stderr.String(), "Using most recently submitted job id: "+id+"\n") {
					t.Errorf("watch stderr = %q", h.stderr.String())
				}
			})
		})
	}
}

func TestCancelStatusJobsRetry(t *testing.T) {
	fm := newFakeMaster()
	fm.jobs["j1"] = &fakeJob{polls: []model.Counts{counts(4, 3, 1, 2)}}
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	os.WriteFile(h.lastJobPath(), []byte("j1"), 0o644)

	if code := h.run("cancel"); code != 0 || !strings.Contains(h.stderr.String(), "Canceled job j1: 3/4 tests complete") {
		t.Errorf("cancel: exit %d, stderr %q", code, h.stderr.String())
	}
	if !fm.jobs["j1"].canceled {
		t.Error("the job was not canceled")
	}

	if code := h.run("status", "j1"); code != 0 || h.stdout.String() != "j1: canceled, 3/4 tests complete: 2 passed, 1 failed (2 retries)\n" {
		t.Fatalf("status: exit %d, stdout %q, stderr %q", code, h.stdout.String(), h.stderr.String())
	}
	if code := h.run("status", "--json", "j1"); code != 0 {
		t.Fatalf("status: exit %d, stderr %q", code, h.stderr.String())
	}
	for _, want := range []string{`"total_groups": 4`, `"finished_groups": 3`, `"failed_groups": 1`, `"retried_tasks": 2`, `"status": "running"`, `"id": "j1"`, `"canceled": true`} {
		if !strings.Contains(h.stdout.String(), want) {
			t.Errorf("status output lacks %s:\n%s", want, h.stdout.String())
		}
	}

	if code := h.run("jobs", "--limit", "5"); code != 0 {
		t.Fatalf("jobs: exit %d, stderr %q", code, h.stderr.String())
	}
	submitted := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC).Local().Format("2006-01-02 15:04:05")
	want := "ID  STATUS    GROUPS  FAILED  SUBMITTED\nj1  canceled  3/4     1       " + submitted + "\n"
	if h.stdout.String() != want {
		t.Errorf("jobs:\n%s\nwant:\n%s", h.stdout.String(), want)
	}
	if fm.requests[len(fm.requests)-1] != "GET /api/v1/jobs?limit=5" {
		t.Errorf("jobs asked %s", fm.requests[len(fm.requests)-1])
	}

	if code := h.run("retry", "j1", "t.1", "t.2"); code != 0 || h.stdout.String() != "t.1\nt.2\n" {
		t.Errorf("retry: exit %d, stdout %q", code, h.stdout.String())
	}
	if code := h.run("retry"); code != 0 || h.stdout.String() != "all.0\nall.1\n" {
		t.Errorf("retry of the last job: exit %d, stdout %q", code, h.stdout.String())
	}
}

func TestUnknownConfigKeyWarns(t *testing.T) {
	fm := newFakeMaster()
	fm.jobs["j"] = &fakeJob{polls: []model.Counts{counts(1, 1, 0, 0)}}
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	cnf := filepath.Join(h.home, "my.cnf")
	os.WriteFile(cnf, []byte("[dist_test]\nmastr = http://x\n"), 0o644)
	if code := h.run("status", "--config", cnf, "j"); code != 0 {
		t.Fatalf("exit %d: %s", code, h.stderr.String())
	}
	if want := "warning: " + cnf + ": unknown key [dist_test] mastr is ignored (did you mean master?)\n"; h.stderr.String() != want {
		t.Errorf("stderr = %q, want %q", h.stderr.String(), want)
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{errors.New("usage"), 1},
		{&ExitError{Code: ExitFailed}, 88},
		{fmt.Errorf("wrapped: %w", &ExitError{Code: 3, Err: errors.New("x")}), 3},
	}
	for _, tt := range tests {
		if got := ExitCode(tt.err); got != tt.want {
			t.Errorf("ExitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
