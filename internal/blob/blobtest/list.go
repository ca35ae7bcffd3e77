package blobtest

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
)

// testList: List finds exactly the keys under a prefix, whole or partial
// segment, with their sizes and times, and stops when fn fails.
func testList(t *testing.T, s blob.Store) {
	before := time.Now().Add(-time.Hour)
	for _, k := range []string{"outputs/j1/a.stdout", "outputs/j1/b/c.zip", "outputs/j10/a.stdout", "outputs/j2/x", "cas/1/abc"} {
		put(t, s, k, []byte(k))
	}
	list := func(prefix string) []string {
		t.Helper()
		var got []string
		err := s.List(t.Context(), prefix, func(key string, info blob.Info) error {
			if info.Size != int64(len(key)) || info.ModTime.Before(before) {
				t.Errorf("List(%q): %s has %+v", prefix, key, info)
			}
			got = append(got, key)
			return nil
		})
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		slices.Sort(got)
		return got
	}
	for prefix, want := range map[string][]string{
		"outputs/j1/": {"outputs/j1/a.stdout", "outputs/j1/b/c.zip"},
		"outputs/j1":  {"outputs/j1/a.stdout", "outputs/j1/b/c.zip", "outputs/j10/a.stdout"},
		"outputs/":    {"outputs/j1/a.stdout", "outputs/j1/b/c.zip", "outputs/j10/a.stdout", "outputs/j2/x"},
		"cas/":        {"cas/1/abc"},
		"nothing/":    nil,
		"../":         nil,
	} {
		if got := list(prefix); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", prefix, got, want)
		}
	}
	wantOK(t, "delete", s.Delete(t.Context(), "outputs/j1/b/c.zip"))
	if got := list("outputs/j1/"); !slices.Equal(got, []string{"outputs/j1/a.stdout"}) {
		t.Errorf("List after a delete = %q", got)
	}
	stop := errors.New("stop")
	n := 0
	err := s.List(t.Context(), "outputs/", func(string, blob.Info) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("List with a failing fn: %v after %d calls; want the error after 1", err, n)
	}
}
