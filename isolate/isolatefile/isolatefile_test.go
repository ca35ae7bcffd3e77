package isolatefile

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/isolate/isolatetest"
)

// writeFile writes content at dir/rel, making folders.
var writeFile = isolatetest.WriteFile

func intp(n int) *int { return &n }

// kuduIsolate is what Kudu's build-support/dist_test.py writes: pprint of a
// dict, long lines broken at list items.
const kuduIsolate = `{'variables': {'command': ['../../build-support/run_dist_test.py',
                           '-e',
                           'KUDU_ALLOW_SLOW_TESTS=1',
                           '-e',
                           'KUDU_COMPRESS_TEST_OUTPUT=1',
                           '-e',
                           'GTEST_FILTER=*-TabletServerTest.TestLong:Other.Test',
                           '--',
                           '../../build/latest/bin/tablet_server-test',
                           '--gtest_shard_index=0'],
               'files': ['../../build/latest/bin/tablet_server-test',
                         '../../build-support/',
                         '../../build/latest/lib/',
                         '../../thirdparty/installed/<(THIRDPARTY_FLAVOR)/lib/']}}
`

// grindIsolate is the JSON that grind writes for a Java test.
const grindIsolate = `{
  "variables": {
    "command": ["bash", "run_test.sh", "-Dtest=TestFoo", "<(MAVEN_FLAGS)"],
    "files": ["run_test.sh", "hadoop-common/target/", "../.m2/repository/"],
    "read_only": 0
  }
}`

func TestLoadIsolateKudu(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "src/kudu/tserver/tablet_server-test.isolate", kuduIsolate, 0o644)
	got, err := Load(p, Variables{Extra: map[string]string{"THIRDPARTY_FLAVOR": "uninstrumented"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Command: []string{"../../build-support/run_dist_test.py", "-e", "KUDU_ALLOW_SLOW_TESTS=1", "-e",
			"KUDU_COMPRESS_TEST_OUTPUT=1", "-e", "GTEST_FILTER=*-TabletServerTest.TestLong:Other.Test", "--",
			"../../build/latest/bin/tablet_server-test", "--gtest_shard_index=0"},
		Files: []string{"../../build/latest/bin/tablet_server-test", "../../build-support/",
			"../../build/latest/lib/", "../../thirdparty/installed/uninstrumented/lib/"},
		Dir: filepath.Join(dir, "src/kudu/tserver"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
}

func TestLoadIsolateGrindJSON(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "hadoop/TestFoo.isolate", grindIsolate, 0o644)
	got, err := Load(p, Variables{Extra: map[string]string{"MAVEN_FLAGS": "-o"}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got.Command, " ") != "bash run_test.sh -Dtest=TestFoo -o" ||
		strings.Join(got.Files, " ") != "run_test.sh hadoop-common/target/ ../.m2/repository/" ||
		got.ReadOnly == nil || *got.ReadOnly != 0 || got.Dir != filepath.Join(dir, "hadoop") {
		t.Fatalf("got %+v", got)
	}
}

func TestLoadIsolateUnknownVariable(t *testing.T) {
	dir := t.TempDir()
	p := writeFile(t, dir, "a.isolate", kuduIsolate, 0o644)
	_, err := Load(p, Variables{Extra: map[string]string{"OTHER": "x"}})
	if err == nil || !strings.Contains(err.Error(), `"THIRDPARTY_FLAVOR"`) || !strings.Contains(err.Error(), "a.isolate") {
		t.Fatalf("error %v, want one naming THIRDPARTY_FLAVOR and the file", err)
	}
}

func TestLoadIsolateMalformed(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"missing comma", "{'variables': {'command': ['a'\n 'files': ['b']}}", "bad.isolate:2:9:"},
		{"json trailing garbage", "{\"variables\": {\"files\": [\"a\"]}}}", "bad.isolate:1:32:"},
		{"not a dict", "['a']", "bad.isolate:1: want a dict"},
		{"unknown key", "{'variables': {'files': []},\n 'foo': 1}", `bad.isolate:2: unknown key "foo"`},
		{"unknown variable key", "{'variables': {\n  'file': []}}", `bad.isolate:2: variables: unknown key "file"`},
		{"files not strings", "{'variables': {'files': ['a',\n\n 2]}}", "bad.isolate:3: variables.files[1]: want a string"},
		{"files not a list", "{'variables': {\n'files': 'a'}}", "bad.isolate:2: variables.files: want a list"},
		{"absolute file", "{'variables': {'files': [\n'/etc/passwd']}}", "bad.isolate:2: variables.files[0]: \"/etc/passwd\""},
		{"read_only", "{'variables': {\n\n'read_only': 5}}", "bad.isolate:3: variables.read_only"},
		{"variables not a dict", "{\n'variables': []}", "bad.isolate:2: variables: want a dict"},
		{"includes not strings", "{'includes': [\n 1]}", "bad.isolate:2: includes[0]: want a string"},
		{"absolute include", "{'includes': [\n '/x.isolate']}", "bad.isolate:2: includes[0]"},
		{"json files not strings", "{\"variables\": {\n  \"files\": [\n    \"a\",\n    3]}}", "bad.isolate:4: variables.files[1]: want a string"},
		{"json read_only", "{\"variables\": {\n\"read_only\": \"1\"}}", "bad.isolate:2: variables.read_only"},
		{"conditions not a list", "{'conditions':\n {}}", "bad.isolate:2: conditions: want a list"},
		{"condition not a list", "{'conditions': [\n 'OS==\"linux\"']}", "bad.isolate:2: conditions[0]: want ['CONDITION'"},
		{"condition too short", "{'conditions': [\n ['OS==\"linux\"']]}", "bad.isolate:2: conditions[0]: want ['CONDITION'"},
		{"condition not a string", "{'conditions': [[\n 1, {'variables': {}}]]}", "bad.isolate:2: conditions[0][0]: want the condition as a string"},
		{"then not a dict", "{'conditions': [['OS==\"linux\"',\n []]]}", "bad.isolate:2: conditions[0][1]: want {'variables'"},
		{"then without variables", "{'conditions': [['OS==\"linux\"',\n {}]]}", "bad.isolate:2: condition \"OS==\\\"linux\\\"\" has no 'variables'"},
		{"malformed false condition", "{'conditions': [['OS==\"mac\"', {'variables': {\n 'files': [2]}}]]}", "bad.isolate:2: conditions[0][1].variables.files[0]: want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, t.TempDir(), "bad.isolate", tt.content, 0o644)
			_, err := Load(p, Variables{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func TestLoadIsolateIncludes(t *testing.T) {
	dir := t.TempDir()
	// The top file has the command; common/base.isolate includes
	// common/deep/libs.isolate: their files are rebased onto the top's folder.
	top := writeFile(t, dir, "tests/foo.isolate", `{
		'includes': ['../common/base.isolate'],
		'variables': {'command': ['./foo-test'], 'files': ['foo-test', '../common/shared.txt']},
	}`, 0o644)
	writeFile(t, dir, "common/base.isolate", `{"includes": ["deep/libs.isolate"],
		"variables": {"files": ["shared.txt", "data/"], "read_only": 2}}`, 0o644)
	writeFile(t, dir, "common/deep/libs.isolate", `{'variables': {'files': ['lib/', '<(V)']}}`, 0o644)

	got, err := Load(top, Variables{Extra: map[string]string{"V": "v.txt"}})
	if err != nil {
		t.Fatal(err)
	}
	want := &File{
		Command:  []string{"./foo-test"},
		Files:    []string{"foo-test", "../common/shared.txt", "../common/data/", "../common/deep/lib/", "../common/deep/v.txt"},
		ReadOnly: intp(2),
		Dir:      filepath.Join(dir, "tests"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	// Without a command of its own, the included file's command and folder
	// are used, and the top's files are rebased onto that folder.
	top2 := writeFile(t, dir, "tests/bar.isolate", `{'includes': ['../common/cmd.isolate'], 'variables': {'files': ['bar-data/']}}`, 0o644)
	writeFile(t, dir, "common/cmd.isolate", `{'variables': {'command': ['./run.sh'], 'files': ['run.sh']}}`, 0o644)
	got, err = Load(top2, Variables{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Dir != filepath.Join(dir, "common") || strings.Join(got.Files, " ") != "../tests/bar-data/ run.sh" ||
		got.Command[0] != "./run.sh" {
		t.Fatalf("got %+v", got)
	}

	// An include cycle is an error, not a hang.
	cyc := writeFile(t, dir, "cyc/a.isolate", `{'includes': ['b.isolate']}`, 0o644)
	writeFile(t, dir, "cyc/b.isolate", `{'includes': ['a.isolate']}`, 0o644)
	if _, err := Load(cyc, Variables{}); err == nil || !strings.Contains(err.Error(), "includes itself") {
		t.Fatalf("cycle: %v", err)
	}
	// A missing include names the file.
	miss := writeFile(t, dir, "miss.isolate", `{'includes': ['nope.isolate']}`, 0o644)
	if _, err := Load(miss, Variables{}); err == nil || !strings.Contains(err.Error(), "nope.isolate") {
		t.Fatalf("missing include: %v", err)
	}
}
