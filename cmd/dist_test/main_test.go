package main

import (
	"slices"
	"testing"
)

func TestAsInvoked(t *testing.T) {
	for _, tt := range []struct {
		argv0 string
		args  []string
		want  []string
	}{
		{"/usr/bin/dist_test", []string{"submit", "j.json"}, []string{"submit", "j.json"}},
		{"/opt/dt/bin/client", []string{"submit", "--no-wait", "j.json"}, []string{"submit", "--no-wait", "j.json"}},
		{"isolate", []string{"batcharchive", "-isolate-server=http://h", "-dump-json=d", "--", "-x.gen.json"},
			[]string{"isolate", "batcharchive", "--isolate-server=http://h", "--dump-json=d", "--", "-x.gen.json"}},
		{"/opt/dt/isolate.exe", []string{"archive", "-i", "x.isolate"}, []string{"isolate", "archive", "-i", "x.isolate"}},
	} {
		if got := asInvoked(tt.argv0, tt.args); !slices.Equal(got, tt.want) {
			t.Errorf("asInvoked(%q, %q) = %q, want %q", tt.argv0, tt.args, got, tt.want)
		}
	}
}
