package archive

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
	"github.com/dist-test/dist_test/isolate/isolatefile"
	"github.com/dist-test/dist_test/isolate/isolatetest"
)

// batchTree lays out a Kudu-like build with three tests that share most of
// their inputs, and the .isolate and .isolated.gen.json files a build would
// write for them into build/isolate/. It returns the gen files and the
// total size of the distinct files they list.
func batchTree(t *testing.T, root string) (gens []string, distinctBytes int64) {
	t.Helper()
	files := map[string]string{
		"build-support/run_dist_test.py":       "#!/usr/bin/env python\nimport sys\n",
		"build-support/run-test.sh":            "#!/bin/bash\nexec \"$@\"\n",
		"build-support/dup.txt":                "the same bytes twice\n",
		"build/debug/bin/a-test":               "\x7fELF a-test",
		"build/debug/bin/b-test":               "\x7fELF b-test",
		"build/debug/bin/c-test":               "\x7fELF c-test",
		"build/debug/lib/libkudu_util.so":      string(isolatetest.TextBlob(200 << 10)),
		"build/debug/lib/libkudu_client.so.1":  "client library",
		"thirdparty/installed/lib/libsasl2.so": string(isolatetest.RandomBlob(7, 100<<10)),
		"src/kudu/a/testdata/x.txt":            "a's data",
		"src/kudu/c/testdata/dup-copy.txt":     "the same bytes twice\n",
		"src/kudu/c/testdata/big.bin":          string(isolatetest.RandomBlob(8, 64<<10)),
	}
	for rel, content := range files {
		mode := os.FileMode(0o644)
		if strings.Contains(rel, "/bin/") || strings.HasSuffix(rel, ".py") || strings.HasSuffix(rel, ".sh") {
			mode = 0o755
		}
		writeFile(t, root, rel, content, mode)
		distinctBytes += int64(len(content))
	}
	for link, target := range map[string]string{"build/latest": "debug", "build/debug/lib/libkudu_client.so": "libkudu_client.so.1"} {
		if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
			t.Fatal(err)
		}
	}
	staging := filepath.Join(root, "build/isolate")
	// a: what Kudu's dist_test.py writes (pprint), absolute -i/-s.
	writeFile(t, staging, "a-test.0.isolate", `{'variables': {'command': ['../../build-support/run_dist_test.py',
                           '-e',
                           'GTEST_SHARD_INDEX=0',
                           '--',
                           '../../build/latest/bin/a-test'],
               'files': ['../../build/latest/bin/a-test',
                         '../../build-support/',
                         '../../build/latest/lib/',
                         '../../thirdparty/installed/lib/',
                         '../../src/kudu/a/testdata/']}}
`, 0o644)
	// b: pprint with conditions and a path variable given as "K V".
	writeFile(t, staging, "b-test.0.isolate", `{'conditions': [['OS=="linux"',
                 {'variables': {'command': ['../../build-support/run_dist_test.py',
                                            '--',
                                            '<(PRODUCT_DIR)/bin/b-test',
                                            '--shard=<(SHARD)']}}],
                ['OS=="mac"', {'variables': {'command': ['open']}}]],
 'variables': {'files': ['<(PRODUCT_DIR)/bin/b-test',
                         '../../build-support/',
                         '<(PRODUCT_DIR)/lib/',
                         '../../thirdparty/installed/lib/']}}
`, 0o644)
	// c: JSON as grind writes it, with a condition on a config variable.
	writeFile(t, staging, "c-test.isolate", `{
  "conditions": [
    ["CHROMEOS==0", {"variables": {"files": ["../../src/kudu/c/testdata/"]}}]
  ],
  "variables": {
    "command": ["../../build/latest/bin/c-test"],
    "files": ["../../build/latest/bin/c-test", "../../build-support/", "../../build/latest/lib/"],
    "read_only": 2
  }
}`, 0o644)
	genFiles := map[string]any{
		"a-test.0.gen.json": map[string]any{"version": 1, "dir": root, "name": "a-test.1/1",
			"args": []string{"-i", filepath.Join(staging, "a-test.0.isolate"), "-s", filepath.Join(staging, "a-test.0.isolated")}},
		"b-test.0.gen.json": map[string]any{"version": 1, "dir": root, "name": "b-test.1/1",
			"args": []string{"--isolate", "build/isolate/b-test.0.isolate", "--isolated", "build/isolate/b-test.0.isolated",
				"--path-variable", "PRODUCT_DIR", "build/latest", "--config-variable", "OS", "linux", "--extra-variable", "SHARD=1"}},
		"c-test.gen.json": map[string]any{"version": 1, "dir": staging,
			"args": []string{"--isolate=c-test.isolate", "-s=c-test.isolated", "--config-variable=CHROMEOS=0"}},
	}
	for _, name := range slices.Sorted(maps.Keys(genFiles)) {
		data, err := json.Marshal(genFiles[name])
		if err != nil {
			t.Fatal(err)
		}
		gens = append(gens, writeFile(t, staging, name, string(data), 0o644))
	}
	return gens, distinctBytes
}

func TestBatchArchive(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	ctx := context.Background()
	root := t.TempDir()
	gens, distinctBytes := batchTree(t, root)

	a, err := newArchiver(tc.Client, isolate.SHA1, 4)
	if err != nil {
		t.Fatal(err)
	}
	digests, st, err := a.batch(ctx, gens)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(slices.Sorted(maps.Keys(digests)), " "); got != "a-test.1/1 b-test.1/1 c-test" {
		t.Fatalf("names %s", got)
	}
	// 12 distinct files (23 listed in all), 11 distinct contents, 3 manifests.
	want := Stats{Tests: 3, Files: 12, Bytes: distinctBytes, Uploaded: 14, Hits: 0}
	if st.UploadedBytes <= distinctBytes {
		t.Fatalf("uploaded %d bytes, less than the files' %d", st.UploadedBytes, distinctBytes)
	}
	want.UploadedBytes = st.UploadedBytes // checked below against what was PUT
	if st != want {
		t.Fatalf("stats %+v\nwant  %+v", st, want)
	}
	if n := a.hashed.Load(); n != 12 {
		t.Fatalf("%d files hashed, want each of the 12 once", n)
	}
	if n := tc.Count(http.MethodPost); n != 1 {
		t.Fatalf("%d missing-queries, want 1 for the whole batch", n)
	}
	puts := map[string]int{}
	for _, d := range tc.Puts() {
		puts[d]++
	}
	if len(puts) != 14 {
		t.Fatalf("%d blobs PUT, want 14", len(puts))
	}
	for d, n := range puts {
		if n != 1 {
			t.Errorf("blob %s PUT %d times", d, n)
		}
	}

	var manifestBytes int64
	for name, isolated := range map[string]string{"a-test.1/1": "a-test.0.isolated", "b-test.1/1": "b-test.0.isolated", "c-test": "c-test.isolated"} {
		data, err := os.ReadFile(filepath.Join(root, "build/isolate", isolated))
		if err != nil {
			t.Fatal(err)
		}
		manifestBytes += int64(len(data))
		if isolate.HashBytes(isolate.SHA1, data) != digests[name] || !tc.Stored(t, digests[name]) {
			t.Fatalf("%s: %s is not the manifest of %s, or not on the server", name, isolated, digests[name])
		}
		iso, err := isolate.ParseIsolated(data)
		if err != nil {
			t.Fatal(err)
		}
		for p, f := range iso.Files {
			if !f.IsLink() && !tc.Stored(t, f.Digest) {
				t.Errorf("%s: %s not on the server", name, p)
			}
		}
		switch name {
		case "b-test.1/1":
			if strings.Join(iso.Command, " ") != "../../build-support/run_dist_test.py -- ../latest/bin/b-test --shard=1" ||
				iso.RelativeCwd != "build/isolate" || iso.Files["build/latest"].Link != "debug" {
				t.Errorf("b-test manifest: %+v", iso)
			}
		case "c-test":
			if *iso.ReadOnly != 2 || iso.Files["src/kudu/c/testdata/big.bin"].Size != 64<<10 || len(iso.Files) != 10 {
				t.Errorf("c-test manifest: read_only %d, %d entries", *iso.ReadOnly, len(iso.Files))
			}
		}
	}
	if st.UploadedBytes != distinctBytes-int64(len("the same bytes twice\n"))+manifestBytes {
		t.Fatalf("uploaded %d bytes, want the distinct contents and the manifests", st.UploadedBytes)
	}

	// What the command prints and dumps.
	if got := st.Summary(); got != "archived 3 tests: 12 files, "+itoa(distinctBytes)+" bytes; uploaded 14 items, "+
		itoa(st.UploadedBytes)+" bytes; 0 already on the server (0 bytes)" {
		t.Fatalf("summary %q", got)
	}
	lines := DigestLines(digests)
	if lines != digests["a-test.1/1"]+"\ta-test.1/1\n"+digests["b-test.1/1"]+"\tb-test.1/1\n"+digests["c-test"]+"\tc-test\n" {
		t.Fatalf("digest lines %q", lines)
	}
	dump := filepath.Join(t.TempDir(), "dump.json")
	if err := WriteDumpJSON(dump, digests); err != nil {
		t.Fatal(err)
	}
	var dumped map[string]string
	if data, err := os.ReadFile(dump); err != nil || json.Unmarshal(data, &dumped) != nil || !reflect.DeepEqual(dumped, digests) {
		t.Fatalf("dump-json: %v %v, want %v", dumped, err, digests)
	}

	// Again: everything is on the server, nothing is sent.
	putsBefore := tc.Count(http.MethodPut)
	again, st2, err := Batch(ctx, tc.Client, gens, BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, digests) || st2.Uploaded != 0 || st2.UploadedBytes != 0 || st2.Hits != 14 ||
		st2.HitBytes != st.UploadedBytes || st2.Files != 12 || tc.Count(http.MethodPut) != putsBefore {
		t.Fatalf("second run: %+v, %d new PUTs", st2, tc.Count(http.MethodPut)-putsBefore)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// A gen file in error is named, and the others are archived all the same.
func TestBatchArchiveErrors(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	root := t.TempDir()
	gens, _ := batchTree(t, root)
	staging := filepath.Join(root, "build/isolate")
	writeFile(t, staging, "missing.isolate", `{'variables': {'files': ['../../no/such/file']}}`, 0o644)
	bad := map[string]string{
		"missing-file.gen.json": `{"version": 1, "dir": "` + staging + `", "args": ["-i", "missing.isolate", "-s", "missing.isolated"]}`,
		"version.gen.json":      `{"version": 2, "dir": "` + staging + `", "args": []}`,
		"no-dir.gen.json":       `{"version": 1, "dir": "` + staging + `/nope", "args": ["-i", "x", "-s", "y"]}`,
		"bad-arg.gen.json":      `{"version": 1, "dir": "` + staging + `", "args": ["-i", "a.isolate", "-s", "a.isolated", "--blacklist", "x"]}`,
		"bad-json.gen.json":     `{"version": 1,`,
		"dup-name.gen.json":     `{"version": 1, "dir": "` + staging + `", "name": "c-test", "args": ["-i", "c-test.isolate", "-s", "c2.isolated", "--config-variable", "CHROMEOS", "1"]}`,
		"bad-isolate.gen.json":  `{"version": 1, "dir": "` + staging + `", "args": ["-i", "c-test.isolate", "-s", "c3.isolated"]}`,
	}
	all := append([]string{}, gens...)
	for _, name := range slices.Sorted(maps.Keys(bad)) {
		all = append(all, writeFile(t, staging, name, bad[name], 0o644))
	}
	digests, st, err := Batch(context.Background(), tc.Client, all, BatchOptions{Concurrency: 3})
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{
		"missing-file.gen.json: " + filepath.Join(staging, "missing.isolate") + ": ../../no/such/file: no such file",
		"version.gen.json: version 2",
		"no-dir.gen.json: dir " + staging + "/nope is not a folder",
		`bad-arg.gen.json: args: option "--blacklist" is not supported`,
		"bad-json.gen.json: not a gen.json file",
		`dup-name.gen.json: name "c-test" is also the name of ` + gens[2],
		"bad-isolate.gen.json: " + filepath.Join(staging, "c-test.isolate") + ":3: condition \"CHROMEOS==0\" uses the variable CHROMEOS",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if len(digests) != 3 || st.Tests != 3 || st.Uploaded != 14 {
		t.Fatalf("the good gen files: %v, %+v", digests, st)
	}
}

func TestParseArchiveArgs(t *testing.T) {
	dir := t.TempDir()
	j, err := parseArchiveArgs([]string{"-isolate", "x.isolate", "--isolated=/abs/x.isolated",
		"--extra-variable", "A", "1", "--extra-variable=B=2=3", "-path-variable", "P=out",
		"--config-variable", "OS=mac", "--config-variable", "CHROMEOS", "0"}, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := isolatefile.Variables{Extra: map[string]string{"A": "1", "B": "2=3"}, Path: map[string]string{"P": "out"},
		Config: map[string]string{"OS": "mac", "CHROMEOS": "0"}, Cwd: dir}
	if j.isolate != filepath.Join(dir, "x.isolate") || j.out != "/abs/x.isolated" || !reflect.DeepEqual(j.vars, want) {
		t.Fatalf("got %s %s %+v", j.isolate, j.out, j.vars)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-s", "x"}, "no -i/--isolate"},
		{[]string{"-i", "x"}, "no -s/--isolated"},
		{[]string{"-i"}, "-i needs a value"},
		{[]string{"-i", "x", "-s", "y", "--extra-variable", "K"}, "--extra-variable K needs a value"},
		{[]string{"-i", "x", "-s", "y", "--extra-variable", "1K=v"}, `"1K": a variable name`},
		{[]string{"-i", "x", "-s", "y", "stray"}, `unexpected argument "stray"`},
		{[]string{"-i", "x", "-s", "y", "--verbose"}, `option "--verbose" is not supported`},
	} {
		if _, err := parseArchiveArgs(tt.args, dir); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: error %v, want %q", tt.args, err, tt.want)
		}
	}
}
