package cli

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dist-test/dist_test/client/gotest"
)

func TestParseGoTestFlags(t *testing.T) {
	var o gotest.Options
	err := parseGoTestFlags([]string{"-race", "-tags", "integration,slow", "--cover", "-short", "-count=1", "-run", "TestA|TestB",
		"-timeout", "2m", "-v", "-parallel", "3", "-failfast=false"}, &o)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"-race", "-tags=integration,slow", "-cover"}; !slices.Equal(o.BuildFlags, want) {
		t.Errorf("build flags %q, want %q", o.BuildFlags, want)
	}
	if want := []string{"-test.short", "-test.count=1", "-test.parallel=3", "-test.failfast=false"}; !slices.Equal(o.TestFlags, want) {
		t.Errorf("test flags %q, want %q", o.TestFlags, want)
	}
	if o.ListPattern != "TestA|TestB" || o.Timeout != 2*time.Minute {
		t.Errorf("list pattern %q, timeout %s", o.ListPattern, o.Timeout)
	}

	for args, msg := range map[string]string{
		"./pkg":           "go test flags only",
		"-json":           "go-test --json FILE",
		"-coverprofile=x": "is not one go-test passes on",
		"-timeout=soon":   "want a duration",
		"-tags":           "needs a value",
	} {
		var o gotest.Options
		err := parseGoTestFlags(strings.Fields(args), &o)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: %v, want an error saying %q", args, err, msg)
		}
	}
}

func TestGoTestFlagsChecked(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"go-test", "--target-seconds", "0"}, "--target-seconds 0: must be more than zero"},
		{[]string{"go-test", "--retries", "-1"}, "--retries -1: give 0 to 100"},
		{[]string{"go-test", "--tail", "5000"}, "--tail 5000: give 0 to 1000 lines"},
		{[]string{"go-test", "./...", "--", "-bogus"}, "go test flag -bogus is not one go-test passes on"},
	} {
		h := newHarness(t, "http://master", &http.Client{Transport: inMemory{newFakeMaster()}})
		if code := h.run(tt.args...); code != 1 || !strings.Contains(h.stderr.String(), tt.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tt.args, code, h.stderr.String(), tt.want)
		}
	}
}
