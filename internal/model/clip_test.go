package model

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestClip(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"0123456789abc", 10, "0123456…"},
		{"ééééé", 8, "éé…"},        // 10 bytes; "ééé" would leave no room for the mark
		{"a\xffb", 10, "a\uFFFDb"}, // invalid bytes replaced
	} {
		got := Clip(tc.in, tc.n)
		if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
	if got := Clip(strings.Repeat("x", 60<<20), MaxErrorBytes); len(got) > MaxErrorBytes {
		t.Errorf("a 60 MB text clipped to %d bytes", len(got))
	}
}
