package config

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite config.example.ini from the key table")

const examplePath = "../../config.example.ini"

// renderExample writes the example configuration from the key table, so
// that the file lists every key with its default and cannot drift from it.
func renderExample() string {
	var b strings.Builder
	b.WriteString(`# dist_test configuration, read from the file named by --config, else
# $DIST_TEST_CNF, else ~/.dist_test.cnf. Every key is shown commented out with
# its default. Environment variables (named in brackets) override the file,
# and command-line flags override both. Durations take Go syntax (90s, 2m) or
# a number of seconds; sizes take bytes, optionally with KiB, MiB or GiB.
# Keys marked (master) or (slave) matter only to that process.
`)
	section := ""
	for _, k := range keys {
		if k.section != section {
			section = k.section
			fmt.Fprintf(&b, "\n[%s]\n", section)
		}
		doc := k.doc
		if k.env != "" {
			doc += " [$" + k.env + "]"
		}
		fmt.Fprintf(&b, "# %s\n", doc)
		if k.def == "" {
			fmt.Fprintf(&b, "#%s =\n", k.name)
		} else {
			fmt.Fprintf(&b, "#%s = %s\n", k.name, k.def)
		}
	}
	return b.String()
}

func TestExampleFileListsEveryKey(t *testing.T) {
	want := renderExample()
	if *update {
		if err := os.WriteFile(examplePath, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s is out of date with the key table; run go test ./internal/config -run Example -update", examplePath)
	}
}

// The example, uncommented, must load and give the documented defaults.
func TestExampleFileUncommentedLoads(t *testing.T) {
	data, err := os.ReadFile(examplePath)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		if k, ok := strings.CutPrefix(l, "#"); ok && strings.Contains(k, " = ") && !strings.HasPrefix(k, " ") {
			l = k
		}
		lines = append(lines, l)
	}
	path := writeFile(t, strings.Join(lines, "\n"))
	env := envOf(map[string]string{"HOME": t.TempDir()})
	c, err := Load(path, env)
	if err != nil {
		t.Fatalf("the uncommented example does not load: %v", err)
	}
	d, err := Load("", env)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(c.DistTest, c.AWS, c.Master, c.Beanstalk, c.MySQL.Port) != fmt.Sprint(d.DistTest, d.AWS, d.Master, d.Beanstalk, d.MySQL.Port) {
		t.Errorf("uncommented example differs from the defaults:\n%+v\n%+v", c, d)
	}
	if u := c.Unknown(); len(u) != 0 {
		t.Errorf("example has keys nothing reads: %v", u)
	}
}
