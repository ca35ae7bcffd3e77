package cli

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

type zipEntry struct {
	name string
	mode fs.FileMode
	body string
}

func makeZip(t *testing.T, entries []zipEntry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		h.SetMode(e.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(e.body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestFileStem(t *testing.T) {
	tests := []struct {
		task protocol.Attempt
		want string
	}{
		{protocol.Attempt{TaskID: hashA + ".0", Attempt: 0, Description: "foo/bar test"}, hashA + "_0.0.foo_bar_test"},
		{protocol.Attempt{TaskID: "t.12", Attempt: 3, Description: "TestX.testY[param=1]"}, "t_12.3.TestX_testY_param_1_"},
		{protocol.Attempt{TaskID: "t.1", Attempt: 0, Description: "été"}, "t_1.0.__t__"}, // a '_' per byte, as Python 2 did
	}
	for _, tt := range tests {
		if got := fileStem(tt.task); got != tt.want {
			t.Errorf("fileStem(%+v) = %q, want %q", tt.task, got, tt.want)
		}
	}
	long := protocol.Attempt{TaskID: "t.1", Description: strings.Repeat("d", 900)}
	long2 := protocol.Attempt{TaskID: "t.1", Description: strings.Repeat("d", 899) + "e"}
	a, b := fileStem(long), fileStem(long2)
	if len(a+".stdout") != 255 || len(b+".stdout") != 255 {
		t.Errorf("long names are %d and %d bytes with .stdout, want 255", len(a+".stdout"), len(b+".stdout"))
	}
	if a == b {
		t.Error("two long descriptions that differ got the same file name")
	}
}

func TestFetch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fm := newFakeMaster()
		link := "http://master/files/"
		fm.jobs["j1"] = &fakeJob{polls: []model.Counts{counts(2, 2, 1, 0)}, tasks: []protocol.Attempt{
			{TaskID: hashA + ".0", Attempt: 0, Description: "foo/bar test", State: "failed",
				StdoutLink: link + "out0", StderrLink: link + "err0", ArtifactArchiveLink: link + "zip0"},
			{TaskID: hashA + ".1", Attempt: 2, Description: "ok", State: "passed", StdoutLink: link + "out1"},
		}}
		fm.files["out0"] = "stdout of 0"
		fm.files["err0"] = "stderr of 0"
		fm.files["out1"] = "stdout of 1"
		fm.busy["out1"] = 2 // the store is busy twice, then answers
		fm.files["zip0"] = makeZip(t, []zipEntry{
			{"logs/", fs.ModeDir | 0o755, ""},
			{"logs/TEST-foo.xml", 0o644, "<testsuite/>"},
			{"bin/run.sh", 0o755, "#!/bin/sh\n"},
			{"../evil.txt", 0o644, "escaped"},
			{"/abs.txt", 0o644, "escaped"},
			{"link", fs.ModeSymlink | 0o777, "/etc/passwd"},
		})
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
		work := t.TempDir()
		dir := filepath.Join(work, "results")
		stem := filepath.Join(dir, hashA+"_0.0.foo_bar_test")
		// Already there from an earlier fetch: must be kept as it is.
		os.MkdirAll(dir, 0o755)
		os.WriteFile(stem+".stderr", []byte("old"), 0o644)

		if code := h.run("fetch", "-l", "-a", "-d", dir, "j1"); code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, h.stderr.String())
		}
		wantFiles := map[string]string{
			stem + ".stdout": "stdout of 0",
			stem + ".stderr": "old",
			filepath.Join(dir, hashA+"_1.2.ok.stdout"):  "stdout of 1",
			filepath.Join(stem, "logs", "TEST-foo.xml"): "<testsuite/>",
			filepath.Join(stem, "bin", "run.sh"):        "#!/bin/sh\n",
		}
		for p, want := range wantFiles {
			if b, err := os.ReadFile(p); err != nil || string(b) != want {
				t.Errorf("%s holds %q (%v), want %q", p, b, err, want)
			}
		}
		for p, want := range map[string]fs.FileMode{
			filepath.Join(stem, "bin", "run.sh"):        0o755,
			filepath.Join(stem, "logs", "TEST-foo.xml"): 0o644,
			stem: 0o755,
		} {
			if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != want {
				t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode(), err, want)
			}
		}
		for _, p := range []string{filepath.Join(dir, "evil.txt"), filepath.Join(work, "evil.txt"), filepath.Join(stem, "link"), "/abs.txt"} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s was written: a refused entry", p)
			}
		}
		if slices.Contains(fm.requests, "GET /files/err0") {
			t.Error("downloaded a file that was already there")
		}
		for _, want := range []string{
			"No stdout for 0 tasks, no stderr for 1\n",
			"Fetching 3 logs into " + dir + "\n",
			"Fetching 1 artifacts into " + dir + "\n",
			"Extracting 1 artifacts into " + dir + "\n",
			`refused 3 entries: "../evil.txt" (outside the folder), "/abs.txt" (outside the folder), "link" (a symbolic link, not a file)`,
		} {
			if !strings.Contains(h.stderr.String(), want) {
				t.Errorf("stderr lacks %q:\n%s", want, h.stderr.String())
			}
		}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), ".") {
				t.Errorf("left a temporary %s behind", e.Name())
			}
		}

		// A second fetch unpacks nothing into a folder that exists.
		os.Remove(filepath.Join(stem, "bin", "run.sh"))
		if code := h.run("fetch", "-a", "-f", "-d", dir, "j1"); code != 0 {
			t.Fatalf("second fetch: exit %d, stderr:\n%s", code, h.stderr.String())
		}
		if _, err := os.Stat(filepath.Join(stem, "bin", "run.sh")); err == nil {
			t.Error("unpacked again into an existing folder")
		}
		if !slices.Contains(fm.requests, "GET /api/v1/jobs/j1/tasks?status=failed") {
			t.Errorf("-f did not ask for failed tasks: %v", fm.requests)
		}
	})
}

func TestFetchFailedDownloadExits1(t *testing.T) {
	fm := newFakeMaster()
	fm.jobs["j1"] = &fakeJob{polls: []model.Counts{counts(1, 1, 1, 0)}, tasks: []protocol.Attempt{
		{TaskID: "t.0", Description: "d", State: "failed", StdoutLink: "http://master/files/gone", StderrLink: "http://master/files/here"},
	}}
	fm.files["here"] = "x"
	h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
	dir := t.TempDir()
	if code := h.run("fetch", "-l", "-d", dir, "j1"); code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	if !strings.Contains(h.stderr.String(), "1 downloads failed") {
		t.Errorf("stderr = %q", h.stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "t_0.0.d.stderr")); string(b) != "x" {
		t.Error("the other download did not complete")
	}
}

// submit -l downloads after the job ends, and a job with no finished
// tasks just says so.
func TestSubmitFetchesLogs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fm := newFakeMaster()
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{fm}})
		go func() {
			time.Sleep(time.Second) // submit has created the job by then
			fm.locked(func() {
				for _, j := range fm.jobs {
					j.polls = append(j.polls, counts(2, 2, 0, 0))
					j.tasks = []protocol.Attempt{{TaskID: "t.0", Description: "a test", State: "passed", StdoutLink: "http://master/files/o"}}
				}
				fm.files["o"] = "out"
			})
		}()
		dir := filepath.Join(t.TempDir(), "res")
		if code := h.run("submit", "-l", "-d", dir, writeJobFile(t, goodJob)); code != 0 {
			t.Fatalf("exit %d, stderr:\n%s", code, h.stderr.String())
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "t_0.0.a_test.stdout")); string(b) != "out" {
			t.Errorf("log not fetched; stderr:\n%s", h.stderr.String())
		}
		if !strings.HasPrefix(h.stdout.String(), " 0.0s") || !strings.HasSuffix(h.stdout.String(), "\njob_id="+fm.created[0].ID+"\n") {
			t.Errorf("stdout = %q", h.stdout.String())
		}
	})
}
