package isolatefile

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// kuduCondIsolate is Python's pprint.pformat of a .isolate dict with
// conditions, as a Kudu-style build would write it into build/isolate/:
// nested lists, a long string and a long condition wrapped as adjacent
// literals, path and extra variables.
const kuduCondIsolate = `{'conditions': [['OS=="linux"',
                 {'variables': {'command': ['../../build-support/run_dist_test.py',
                                            '-e',
                                            'GTEST_SHARD_INDEX=0',
                                            '-e',
                                            'KUDU_TEST_ARGS=--never_fsync '
                                            '--log_dir=/tmp/kudu-test-logs '
                                            '--unlock_experimental_flags '
                                            '--some_long_flag=42',
                                            '--',
                                            '<(PRODUCT_DIR)/bin/client-test',
                                            '--gtest_filter=<(GTEST_FILTER)'],
                                'files': ['<(PRODUCT_DIR)/bin/client-test']}}],
                ['OS=="linux" and CHROMEOS==1',
                 {'variables': {'files': ['../../chromeos/']}}],
                ['OS=="mac" or (OS=="linux" and not asan==1) or (OS=="linux" '
                 'and KUDU_FLAVOR=="tsan" and CHROMEOS!=1)',
                 {'variables': {'files': ['../../src/kudu/client/testdata/']}}],
                ['OS=="mac"',
                 {'variables': {'command': ['open'],
                                'files': ['../../mac-only/']}}]],
 'variables': {'files': ['../../build-support/', '../../build/latest/lib/'],
               'read_only': 1}}
`

// grindCondIsolate is the JSON form, as grind writes it.
const grindCondIsolate = `{
  "conditions": [
    [
      "OS==\"linux\"",
      {
        "variables": {
          "files": [
            "native/linux-x86_64/"
          ]
        }
      }
    ],
    [
      "OS==\"mac\"",
      {
        "variables": {
          "files": [
            "native/mac/"
          ],
          "read_only": 2
        }
      }
    ],
    [
      "JDK==8 or JDK==\"1.8\"",
      {
        "variables": {
          "files": [
            "jdk8-extras/",
            "<(PRODUCT_DIR)/hadoop-common.jar"
          ]
        }
      }
    ]
  ],
  "variables": {
    "command": [
      "bash",
      "run_test.sh",
      "-Dtest=<(TEST)"
    ],
    "files": [
      "run_test.sh",
      "hadoop-common/target/"
    ],
    "read_only": 0
  }
}
`

func TestLoadIsolateConditionsKudu(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "build/latest"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "build/isolate/client-test.0.isolate", kuduCondIsolate, 0o644)
	vars := Variables{
		Extra:  map[string]string{"GTEST_FILTER": "ClientTest.*"},
		Path:   map[string]string{"PRODUCT_DIR": "build/latest"},
		Config: map[string]string{"CHROMEOS": "0", "asan": "0", "KUDU_FLAVOR": "tsan"},
		Cwd:    dir,
	}
	got, err := Load(p, vars)
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Command: []string{"../../build-support/run_dist_test.py", "-e", "GTEST_SHARD_INDEX=0", "-e",
			"KUDU_TEST_ARGS=--never_fsync --log_dir=/tmp/kudu-test-logs --unlock_experimental_flags --some_long_flag=42",
			"--", "../latest/bin/client-test", "--gtest_filter=ClientTest.*"},
		Files:    []string{"../../build-support/", "../../build/latest/lib/", "../latest/bin/client-test", "../../src/kudu/client/testdata/"},
		ReadOnly: intp(1),
		Dir:      filepath.Join(dir, "build/isolate"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	// Other values select other conditions: the mac one brings its own
	// command, the first none.
	vars.Config = map[string]string{"OS": "mac", "CHROMEOS": "1", "asan": "1", "KUDU_FLAVOR": "asan"}
	got, err = Load(p, vars)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Command, " ") != "open" ||
		strings.Join(got.Files, " ") != "../../build-support/ ../../build/latest/lib/ ../../src/kudu/client/testdata/ ../../mac-only/" {
		t.Fatalf("mac: got %+v", got)
	}

	// Extra variables serve conditions too; config variables win over them.
	vars.Config = map[string]string{"CHROMEOS": "1"}
	vars.Extra = map[string]string{"GTEST_FILTER": "x", "asan": "1", "KUDU_FLAVOR": "asan", "CHROMEOS": "0"}
	got, err = Load(p, vars)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(got.Files, " "), "../../chromeos/") || strings.Contains(strings.Join(got.Files, " "), "testdata") {
		t.Fatalf("extra as config: got %+v", got)
	}

	// A condition testing a variable without a value names it and its line.
	vars.Config, vars.Extra = nil, map[string]string{"GTEST_FILTER": "x"}
	_, err = Load(p, vars)
	if err == nil || !strings.Contains(err.Error(), "client-test.0.isolate:14:") || !strings.Contains(err.Error(), "CHROMEOS") {
		t.Fatalf("missing config variable: %v", err)
	}
}

func TestLoadIsolateConditionsGrindJSON(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "out/jars"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := writeFile(t, dir, "hadoop/TestFoo.isolate", grindCondIsolate, 0o644)
	vars := Variables{
		Extra:  map[string]string{"TEST": "TestFoo"},
		Path:   map[string]string{"PRODUCT_DIR": "out/jars"},
		Config: map[string]string{"JDK": "8"},
		Cwd:    dir,
	}
	got, err := Load(p, vars)
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Command:  []string{"bash", "run_test.sh", "-Dtest=TestFoo"},
		Files:    []string{"run_test.sh", "hadoop-common/target/", "native/linux-x86_64/", "jdk8-extras/", "../out/jars/hadoop-common.jar"},
		ReadOnly: intp(0),
		Dir:      filepath.Join(dir, "hadoop"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	// On mac, read_only 0 and 2 disagree: both lines are named.
	vars.Config = map[string]string{"JDK": "11", "OS": "mac"}
	_, err = Load(p, vars)
	if err == nil || !strings.Contains(err.Error(), "TestFoo.isolate:20:") || !strings.Contains(err.Error(), "line 46") ||
		!strings.Contains(err.Error(), "line 20") {
		t.Fatalf("conflicting read_only: %v", err)
	}
	// "1.8" is a string: JDK=1.8 matches it, and a number does not.
	vars.Config = map[string]string{"JDK": "1.8"}
	if got, err = Load(p, vars); err != nil || !strings.Contains(strings.Join(got.Files, " "), "jdk8-extras/") {
		t.Fatalf("JDK=1.8: %+v, %v", got, err)
	}
}

func TestLoadIsolateConditionErrors(t *testing.T) {
	tests := []struct {
		name, content string
		want          []string
	}{
		{"command twice", "{'variables': {'command': ['a']},\n 'conditions': [\n  ['OS==\"linux\"',\n   {'variables': {'command': ['b']}}]]}",
			[]string{"bad.isolate:4:", "the top-level variables (line 1)", `the condition "OS==\"linux\"" (line 4)`, "set it in one place"}},
		{"command in two conditions", "{'conditions': [\n ['OS==\"linux\"', {'variables': {'command': ['a']}}],\n ['CHROMEOS==0',\n  {'variables': {'command': ['a']}}]]}",
			[]string{"bad.isolate:4:", `"OS==\"linux\"" (line 2)`, `"CHROMEOS==0" (line 4)`}},
		{"unsupported", "{'conditions': [\n ['OS in (\"linux\", \"mac\")', {'variables': {}}]]}",
			[]string{"bad.isolate:2:", `"in" at column 4 is not supported`}},
		{"unknown variable", "{'conditions': [\n ['OS==\"linux\"', {'variables': {}}],\n ['target_arch==\"x64\"', {'variables': {}}]]}",
			[]string{"bad.isolate:3:", "target_arch, which has no value", "--config-variable target_arch="}},
		{"unknown variable in a false branch", "{'conditions': [\n ['OS==\"mac\" and asan==1', {'variables': {}}]]}",
			[]string{"bad.isolate:2:", "asan, which has no value"}},
		{"else branch", "{'conditions': [['OS==\"linux\"', {'variables': {}},\n {'variables': {}}]]}",
			[]string{"bad.isolate:2:", "else branch", "not supported"}},
		{"includes inside", "{'conditions': [['OS==\"linux\"', {'variables': {},\n 'includes': ['x.isolate']}]]}",
			[]string{"bad.isolate:2:", `"includes" inside a condition is not supported`}},
		{"tuple condition", "{'conditions': [\n ('OS==\"linux\"',\n  {'variables': {'files': [\n 7]}})]}",
			[]string{"bad.isolate:4:", "conditions[0][1].variables.files[0]: want a string"}},
		{"undefined variable in a true branch", "{'conditions': [['OS==\"linux\"', {'variables': {\n 'files': ['<(NOPE)/x']}}]]}",
			[]string{"bad.isolate:2:", `undefined variable "NOPE"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "bad.isolate", tt.content, 0o644)
			_, err := Load(p, Variables{Config: map[string]string{"CHROMEOS": "0"}})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Fatalf("error %v, want it to say %q", err, w)
				}
			}
		})
	}

	// An undefined variable in a branch that does not hold is no error.
	p := writeFile(t, t.TempDir(), "ok.isolate", `{'conditions': [['OS=="mac"', {'variables': {'files': ['<(NOPE)/x']}}]]}`, 0o644)
	if _, err := Load(p, Variables{}); err != nil {
		t.Fatalf("undefined variable where the condition does not hold: %v", err)
	}
}

func TestLoadIsolatePathVariables(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"out/Release", "work"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The included file sits elsewhere: its PRODUCT_DIR is rebased onto its
	// own folder, then onto the top file's folder with its other files.
	top := writeFile(t, dir, "src/tests/foo.isolate", `{'includes': ['../common/libs.isolate'],
		'variables': {'command': ['<(PRODUCT_DIR)/foo-test', '--data=<(PRODUCT_DIR)/data'],
		              'files': ['<(PRODUCT_DIR)/foo-test', '<(PRODUCT_DIR)/']}}`, 0o644)
	writeFile(t, dir, "src/common/libs.isolate", `{'variables': {'files': ['<(PRODUCT_DIR)/lib/', 'shared.txt']}}`, 0o644)

	// Relative to Cwd; trailing slashes and surrounding space do not matter.
	for _, val := range []string{"../out/Release", " ../out/Release/ ", filepath.Join(dir, "out/Release")} {
		got, err := Load(top, Variables{Path: map[string]string{"PRODUCT_DIR": val}, Cwd: filepath.Join(dir, "work")})
		if err != nil {
			t.Fatal(err)
		}
		want := &File{
			Command: []string{"../../out/Release/foo-test", "--data=../../out/Release/data"},
			Files:   []string{"../../out/Release/foo-test", "../../out/Release/", "../../out/Release/lib/", "../common/shared.txt"},
			Dir:     filepath.Join(dir, "src/tests"),
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: got  %+v\nwant %+v", val, got, want)
		}
	}
	// The folder of the file itself is ".".
	got, err := Load(top, Variables{Path: map[string]string{"PRODUCT_DIR": "src/tests"}, Cwd: dir})
	if err != nil || got.Command[0] != "./foo-test" {
		t.Fatalf("PRODUCT_DIR=. : %+v, %v", got, err)
	}
	// A path variable must name a folder.
	writeFile(t, dir, "work/file", "x", 0o644)
	for _, val := range []string{"nope", "file"} {
		_, err := Load(top, Variables{Path: map[string]string{"PRODUCT_DIR": val}, Cwd: filepath.Join(dir, "work")})
		if err == nil || !strings.Contains(err.Error(), "--path-variable PRODUCT_DIR="+val) || !strings.Contains(err.Error(), "not a folder") {
			t.Fatalf("PRODUCT_DIR=%s: %v", val, err)
		}
	}
	// Extra variables override path variables of the same name, as in luci.
	got, err = Load(top, Variables{Path: map[string]string{"PRODUCT_DIR": "out/Release"},
		Extra: map[string]string{"PRODUCT_DIR": "bin"}, Cwd: dir})
	if err != nil || got.Command[0] != "bin/foo-test" {
		t.Fatalf("extra over path: %+v, %v", got, err)
	}
}

// Lines are found through tuples and parenthesised values too.
func TestPyLiteralLines(t *testing.T) {
	src := "{'a': (\n 'x'\n 'y'),\n 'b': (1,\n  [2,\n   3]),\n 'c': [\n  {'d': None}]}"
	v, lines, err := parsePyLiteralLines([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if v.(map[string]any)["a"] != "xy" {
		t.Fatalf("value %v", v)
	}
	for path, want := range map[string]int{"": 1, "a": 1, "b": 4, "b[0]": 4, "b[1]": 5, "b[1][1]": 6, "c": 7, "c[0]": 8, "c[0].d": 8} {
		if got := lines[path]; got != want {
			t.Errorf("line of %s: %d, want %d", path, got, want)
		}
	}
	_, jlines, err := decodeJSONLines([]byte("{\"a\": [\n 1,\n {\"b\":\n  \"x\"}]}"))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]int{"": 1, "a": 1, "a[0]": 2, "a[1]": 3, "a[1].b": 4} {
		if got := jlines[path]; got != want {
			t.Errorf("JSON line of %s: %d, want %d", path, got, want)
		}
	}
	if got := lineOf(jlines, "a[1].b.nope[3]"); got != 4 {
		t.Errorf("lineOf falls back to %d, want 4", got)
	}
}
