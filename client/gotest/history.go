package gotest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// History is the last runtime of each test, in seconds, by package import
// path (which holds the module's path) and test name. It is kept on the
// client, in the user's cache folder, rather than asked of the master:
// the master keeps runtimes per task description, and the tasks change
// whenever the split does.
type History map[string]map[string]float64

// DefaultHistoryFile is where the history is kept unless told otherwise.
func DefaultHistoryFile() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no cache folder for the test history (give --history FILE): %w", err)
	}
	return filepath.Join(dir, "dist_test", "go-test-history.json"), nil
}

// LoadHistory reads a history file; a missing one is an empty history,
// and so is one that does not parse (it is only a hint for the split).
func LoadHistory(path string) (History, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return History{}, nil
	}
	if err != nil {
		return nil, err
	}
	h := History{}
	if json.Unmarshal(data, &h) != nil {
		return History{}, nil
	}
	return h, nil
}

// Save writes the history atomically, so that two runs at once leave one
// of their histories whole.
func (h History) Save(path string) error {
	data, err := json.Marshal(h)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".go-test-history-*")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// set records a test's runtime: the mean of the last one and the one
// kept, so that one run on a busy machine does not undo the split.
func (h History) set(pkg, test string, seconds float64) {
	if h[pkg] == nil {
		h[pkg] = map[string]float64{}
	}
	if old, ok := h[pkg][test]; ok {
		seconds = (old + seconds) / 2
	}
	h[pkg][test] = seconds
}
