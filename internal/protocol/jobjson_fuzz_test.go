package protocol

import (
	"encoding/json"
	"path"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dist-test/dist_test/internal/model"
)

// fuzzMaxTasks is the job size bound the fuzz target parses with, small so
// that the bound itself is reached.
const fuzzMaxTasks = 50

// maxErrorLen bounds what an error about a submission may say: errors go
// back to the submitter and into logs, so they quote hostile input clipped.
const maxErrorLen = 1024

// FuzzJobJSON parses job_json documents as the master and the client do.
// What it accepts must be bounded as the store's columns are, and must come
// back unchanged after the trip the client makes it take: checked specs,
// then the API's task form, then ParseTasks on the master.
func FuzzJobJSON(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		specs, err := ParseJobJSON(data, fuzzMaxTasks)
		if err != nil {
			if specs != nil {
				t.Fatalf("error %v with %d specs", err, len(specs))
			}
			if n := len(err.Error()); n > maxErrorLen {
				t.Fatalf("error of %d bytes: %.200s...", n, err)
			}
			return
		}
		if len(specs) == 0 || len(specs) > fuzzMaxTasks {
			t.Fatalf("accepted %d tasks (bound %d)", len(specs), fuzzMaxTasks)
		}
		for i, s := range specs {
			checkSpec(t, i, s)
		}

		// The client sends what it checked in the API's task form; the
		// master must read the very same specs from it.
		wire := make([]Task, len(specs))
		for i, s := range specs {
			wire[i] = Task{IsolateHash: s.IsolateHash, Description: s.Description, Timeout: s.Timeout.Seconds(),
				MaxRetries: s.MaxRetries, Attempt: s.Attempt, ArtifactGlobs: s.ArtifactGlobs, DockerImage: s.DockerImage}
		}
		body, err := json.Marshal(wire)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseTasks(body, fuzzMaxTasks)
		if err != nil {
			t.Fatalf("the API form of accepted tasks is refused: %v\n%s", err, body)
		}
		for i := range specs {
			if len(specs[i].ArtifactGlobs) == 0 && len(again[i].ArtifactGlobs) == 0 {
				again[i].ArtifactGlobs = specs[i].ArtifactGlobs // omitted when empty
			}
		}
		if !reflect.DeepEqual(specs, again) {
			t.Fatalf("specs changed on their way to the master:\n sent %+v\n read %+v", specs, again)
		}
	})
}

// checkSpec asserts what every accepted task promises the store and the slave.
func checkSpec(t *testing.T, i int, s model.TaskSpec) {
	t.Helper()
	if !IsDigest(s.IsolateHash) {
		t.Fatalf("task %d: isolate_hash %q is not a lowercase hex digest", i, s.IsolateHash)
	}
	d := s.Description
	if strings.TrimSpace(d) == "" || len(d) > MaxDescription || !utf8.ValidString(d) || strings.ContainsAny(d, "\x00\r\n") {
		t.Fatalf("task %d: description %q accepted", i, d)
	}
	if s.Timeout < 0 || s.Timeout > MaxTimeout {
		t.Fatalf("task %d: timeout %v accepted (0 to %v)", i, s.Timeout, MaxTimeout)
	}
	if s.MaxRetries < 0 || s.MaxRetries > MaxRetries || s.Attempt < 0 || s.Attempt > MaxRetries {
		t.Fatalf("task %d: max_retries %d, attempt %d accepted", i, s.MaxRetries, s.Attempt)
	}
	if len(s.DockerImage) > MaxDockerImage || !utf8.ValidString(s.DockerImage) || strings.HasPrefix(s.DockerImage, "-") ||
		strings.ContainsAny(s.DockerImage, " \t\n\x00") {
		t.Fatalf("task %d: docker_image of %d bytes accepted", i, len(s.DockerImage))
	}
	if len(s.ArtifactGlobs) > MaxGlobs {
		t.Fatalf("task %d: %d globs accepted", i, len(s.ArtifactGlobs))
	}
	for _, g := range s.ArtifactGlobs {
		if g == "" || len(g) > MaxGlobLength || path.IsAbs(g) || !utf8.ValidString(g) {
			t.Fatalf("task %d: glob %q accepted", i, g)
		}
		for _, seg := range strings.Split(g, "/") {
			if seg == ".." {
				t.Fatalf("task %d: glob %q leading out of the task's folder accepted", i, g)
			}
		}
	}
}

// FuzzTaskFastPath holds parseTask's fast path to the slow one: a task the
// fast path takes, the slow path takes too, with no unknown field, as the
// very same spec.
func FuzzTaskFastPath(f *testing.F) {
	for _, s := range []string{
		`{"isolate_hash": "0123456789abcdef0123456789abcdef01234567", "description": "a", "timeout": 1.5, "max_retries": 2}`,
		`{"isolate_hash": "0123456789ABCDEF0123456789abcdef01234567", "description": "b", "artifact_archive_globs": ["**/*.xml"], "docker_image": "busybox:1"}`,
		`{"isolate_hash": "0123456789abcdef0123456789abcdef01234567", "Description": "c", "description": "d"}`,
		`{"isolate_hash": "0123456789abcdef0123456789abcdef01234567", "description": "e", "attempt": 1.0, "timeout": null}`,
		`{"isolate_hash": "0123456789abcdef0123456789abcdef01234567", "description": "f\u00e9", "max_retries": 1e0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		fast, ok := parseTaskFast(data)
		if !ok {
			return
		}
		var unknown []string
		slow, err := parseTaskSlow(data, 0, func(_ int, field string) { unknown = append(unknown, field) })
		if err != nil || len(unknown) > 0 {
			t.Fatalf("the fast path took %q, the slow one says %v (unknown %q)", data, err, unknown)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %+v, slow %+v", data, fast, slow)
		}
	})
}
