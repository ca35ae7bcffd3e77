package model

import "testing"

func TestClosest(t *testing.T) {
	fields := []string{"isolate_hash", "description", "timeout", "max_retries", "attempt", "artifact_archive_globs", "docker_image"}
	tests := []struct{ word, want string }{
		{"timout", "timeout"},
		{"max_retires", "max_retries"},
		{"TimeOut", "timeout"},
		{"descripton", "description"},
		{"isolate-hash", "isolate_hash"},
		{"artifact_globs", ""}, // too far to be a typo
		{"color", ""},
		{"", ""},
		{"x", ""},
	}
	for _, tt := range tests {
		if got := Closest(tt.word, fields); got != tt.want {
			t.Errorf("Closest(%q) = %q, want %q", tt.word, got, tt.want)
		}
	}
}
