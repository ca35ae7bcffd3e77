package gotest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
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

// toEvents turns the output of a test binary run with -test.v=test2json
// into events, through the go command's own converter (go tool test2json),
// so that they are exactly what go test -json says.
func toEvents(ctx context.Context, goTool, pkg string, stdout []byte) ([]Event, error) {
	// -t, for the tests' Elapsed, which test2json writes only with times;
	// the times, of the conversion rather than of the run, are dropped.
	cmd := exec.CommandContext(ctx, goTool, "tool", "test2json", "-t", "-p", pkg)
	cmd.Stdin = bytes.NewReader(stdout)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go tool test2json: %v: %s", err, stderr.Bytes())
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
