package autoscale

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func execFixture(t *testing.T) (*Exec, string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hosts"), []byte("slave-a\nslave-b\n\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e := &Exec{
		ListCmd:   `cat "$DIR/hosts"`,
		GrowCmd:   `printf '%s\n' {n} {size} > "$DIR/grow.args"`,
		RemoveCmd: `printf '%s\n' {hosts} > "$DIR/remove.args"`,
		Env:       []string{"DIR=" + dir},
	}
	if err := e.CheckTemplates(); err != nil {
		t.Fatal(err)
	}
	return e, dir
}

func lines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func TestExecProvider(t *testing.T) {
	e, dir := execFixture(t)
	ctx := context.Background()
	hosts, err := e.Instances(ctx)
	if err != nil || !slices.Equal(hosts, []string{"slave-a", "slave-b"}) {
		t.Fatalf("Instances = %q, %v", hosts, err)
	}
	if err := e.Grow(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, filepath.Join(dir, "grow.args")); !slices.Equal(got, []string{"3", "5"}) {
		t.Errorf("grow ran with %q, want n=3 size=5", got)
	}
	if err := e.Remove(ctx, []string{"slave-a", "slave_b.example.com"}); err != nil {
		t.Fatal(err)
	}
	if got := lines(t, filepath.Join(dir, "remove.args")); !slices.Equal(got, []string{"slave-a", "slave_b.example.com"}) {
		t.Errorf("remove ran with %q: each host must be one word", got)
	}
	e.RemoveCmd = "exit 3"
	if err := e.Remove(ctx, []string{"slave-a"}); err == nil {
		t.Error("a failing remove command was not an error")
	}
}

// Host names that a shell or a command would read as more than a name
// are refused before any command runs.
func TestExecProviderRefusesHostileHosts(t *testing.T) {
	e, dir := execFixture(t)
	ctx := context.Background()
	for _, h := range []string{"a; touch pwned", "$(touch pwned)", "`touch pwned`", "a b", "-rf", "x'y", "", "a\nb",
		"../etc", "a|b", strings.Repeat("a", 300), "\u00e9t\u00e9"} {
		if err := e.Remove(ctx, []string{"slave-a", h}); err == nil {
			t.Errorf("Remove(%q) accepted", h)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "remove.args")); !os.IsNotExist(err) {
		t.Errorf("the remove command ran for a hostile name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); !os.IsNotExist(err) {
		t.Error("a hostile name ran a command")
	}
	// A listing that prints something else than hostnames is refused too.
	os.WriteFile(filepath.Join(dir, "hosts"), []byte("slave-a\nError: $(reboot)\n"), 0o644)
	if hosts, err := e.Instances(ctx); err == nil {
		t.Errorf("Instances accepted %q", hosts)
	}
}

func TestExecTemplatesChecked(t *testing.T) {
	for _, e := range []Exec{
		{GrowCmd: "grow {n}", RemoveCmd: "rm {hosts}"},
		{ListCmd: "ls", GrowCmd: "grow", RemoveCmd: "rm {hosts}"},
		{ListCmd: "ls", GrowCmd: "grow {size}", RemoveCmd: "rm"},
	} {
		if e.CheckTemplates() == nil {
			t.Errorf("%+v accepted", e)
		}
	}
}
