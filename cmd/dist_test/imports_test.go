package main

import (
	"os/exec"
	"strings"
	"testing"
)

// The client and the slave talk to the master over HTTP only; they must
// never link the master's code (nor its database and blob backends, whose
// credentials slaves must not hold).
//
// Within isolate/, the format packages are leaves, and archive and fetch
// reach the CAS through their own small interfaces: neither links the CAS
// server (nor its blob store) nor the other's side of the inputs' life.
func TestImportBoundaries(t *testing.T) {
	const mod = "github.com/dist-test/dist_test/"
	rules := map[string][]string{
		"client/...":              {"server", "internal/store", "slave"},
		"slave/...":               {"server", "internal/store", "internal/blob"},
		"isolate/...":             {"server", "slave", "client"},
		"web/...":                 {"server", "internal/store"},
		"server/...":              {"slave", "client"},
		"isolate":                 {"isolate/isolatefile", "isolate/archive", "isolate/cas", "isolate/fetch", "isolate/cache", "internal/blob", "internal/protocol"},
		"isolate/isolatefile/...": {"isolate/archive", "isolate/cas", "isolate/fetch", "isolate/cache", "internal/blob", "internal/protocol"},
		"isolate/archive/...":     {"isolate/cas", "isolate/fetch", "isolate/cache", "internal/blob", "internal/protocol"},
		"isolate/fetch/...":       {"isolate/cas", "isolate/archive", "isolate/isolatefile", "internal/blob", "internal/protocol"},
		"isolate/cas/...":         {"isolate/archive", "isolate/fetch", "isolate/isolatefile", "isolate/cache"},
	}
	for pkgs, banned := range rules {
		out, err := exec.Command("go", "list", "-deps", "-test=false", "./../../"+pkgs).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkgs, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			for _, b := range banned {
				if dep == mod+b || strings.HasPrefix(dep, mod+b+"/") {
					t.Errorf("%s depends on %s", pkgs, dep)
				}
			}
		}
	}
}
