package gotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Event is a test2json event, as go test -json writes it.
type Event struct {
	Time        *time.Time `json:",omitempty"`
	Action      string
	Package     string  `json:",omitempty"`
	Test        string  `json:",omitempty"`
	Elapsed     float64 `json:",omitempty"`
	Output      string  `json:",omitempty"`
	FailedBuild string  `json:",omitempty"`
}

// test2json finds the go command's own converter of test output, run
// directly rather than through go tool, which would start the go command
// once per task attempt.
func test2json(ctx context.Context, goTool string) (string, error) {
	out, err := exec.CommandContext(ctx, goTool, "tool", "-n", "test2json").Output()
	if err != nil {
		return "", fmt.Errorf("go tool -n test2json: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

// toEvents turns the output of a test binary run with -test.v=test2json
// into events, through test2json (the path test2json found), so that they
// are exactly what go test -json says.
func toEvents(ctx context.Context, t2j, pkg string, stdout []byte) ([]Event, error) {
	// -t, for the tests' Elapsed, which test2json writes only with times;
	// the times, of the conversion rather than of the run, are dropped.
	cmd := exec.CommandContext(ctx, t2j, "-t", "-p", pkg)
	cmd.Stdin = bytes.NewReader(stdout)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("test2json: %v: %s", err, stderr.Bytes())
	}
	var events []Event
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, fmt.Errorf("go tool test2json wrote %q: %w", sc.Bytes(), err)
		}
		e.Time = nil
		events = append(events, e)
	}
	return events, sc.Err()
}
