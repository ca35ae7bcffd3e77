package isolate

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
)

func intp(n int) *int { return &n }

// goldenManifest was written by Python's
// json.dumps(m, sort_keys=True, separators=(',', ':')) for the manifest of
// goldenIsolated, as luci writes it; goldenSHA1 is the sha-1 of those bytes.
const (
	goldenManifest = `{"algo":"sha-1","command":["../../build-support/run_dist_test.py","-e","KUDU_ALLOW_SLOW_TESTS=1","-e","GTEST_FILTER=a\\b\tc","--","../../build/latest/bin/foo-test"],"files":{"build-support/run_dist_test.py":{"h":"a7fef1c8c5bf9e734ce35a708a3e36ed42c02a2b","m":420,"s":22},"build/debug/bin/foo-test":{"h":"9df4d63fed96765e7839d9394daf5ad2d78f7978","m":493,"s":3},"build/latest":{"l":"debug"},"src/kudu/caf\u00e9 \ud83d\ude00\"q.txt":{"h":"da39a3ee5e6b4b0d3255bfef95601890afd80709","m":292,"s":0}},"read_only":1,"relative_cwd":"src/kudu","version":"1.4"}`
	goldenSHA1     = "1621a0bf47724b13f9a4fda53b366dbdd501926e"
)

func goldenIsolated() *Isolated {
	return &Isolated{
		Algo:        SHA1,
		Command:     []string{"../../build-support/run_dist_test.py", "-e", "KUDU_ALLOW_SLOW_TESTS=1", "-e", "GTEST_FILTER=a\\b\tc", "--", "../../build/latest/bin/foo-test"},
		RelativeCwd: "src/kudu",
		ReadOnly:    intp(1),
		Files: map[string]File{
			"build/latest":                   {Link: "debug"},
			"build/debug/bin/foo-test":       {Digest: HashBytes(SHA1, []byte("ELF")), Size: 3, Mode: 0o755},
			"build-support/run_dist_test.py": {Digest: HashBytes(SHA1, []byte("#!/usr/bin/env python\n")), Size: 22, Mode: 0o644},
			"src/kudu/café 😀\"q.txt":         {Digest: HashBytes(SHA1, nil), Size: 0, Mode: 0o444},
		},
	}
}

func TestEncodeIsCanonical(t *testing.T) {
	got := goldenIsolated().Encode()
	if string(got) != goldenManifest {
		t.Fatalf("Encode:\n got %s\nwant %s", got, goldenManifest)
	}
	if d := HashBytes(SHA1, got); d != goldenSHA1 {
		t.Fatalf("digest %s, want %s", d, goldenSHA1)
	}
	// Parsing and encoding again gives the same bytes.
	iso, err := ParseIsolated(got)
	if err != nil {
		t.Fatal(err)
	}
	if again := iso.Encode(); string(again) != goldenManifest {
		t.Fatalf("re-encoded:\n got %s\nwant %s", again, goldenManifest)
	}
}

func TestEncodeMinimal(t *testing.T) {
	iso := &Isolated{Files: map[string]File{}}
	want := `{"algo":"sha-1","files":{},"version":"1.4"}`
	if got := string(iso.Encode()); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
	iso = &Isolated{Algo: SHA256, Includes: []string{strings.Repeat("ab", 32)}, ReadOnly: intp(0),
		Files: map[string]File{"<&>\x7f": {Digest: strings.Repeat("cd", 32), Size: -1}}}
	want = `{"algo":"sha-256","files":{"<&>\u007f":{"h":"` + strings.Repeat("cd", 32) + `"}},"includes":["` +
		strings.Repeat("ab", 32) + `"],"read_only":0,"version":"1.4"}`
	if got := string(iso.Encode()); got != want {
		t.Fatalf("got %s, want %s", got, want)
	}
}

func TestParseIsolated(t *testing.T) {
	iso, err := ParseIsolated([]byte(goldenManifest))
	if err != nil {
		t.Fatal(err)
	}
	if iso.Algo != SHA1 || iso.RelativeCwd != "src/kudu" || *iso.ReadOnly != 1 || len(iso.Command) != 7 || len(iso.Files) != 4 {
		t.Fatalf("parsed %+v", iso)
	}
	f := iso.Files["build/debug/bin/foo-test"]
	if f.Size != 3 || f.Mode != 0o755 || f.IsLink() {
		t.Fatalf("foo-test entry %+v", f)
	}
	if l := iso.Files["build/latest"]; l.Link != "debug" {
		t.Fatalf("link entry %+v", l)
	}
	// Optional fields: no algo means sha-1, no size is -1.
	iso, err = ParseIsolated([]byte(`{"version":"1.0","files":{"a":{"h":"` + strings.Repeat("0", 40) + `"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	if iso.Algo != SHA1 || iso.Files["a"].Size != -1 || iso.ReadOnly != nil {
		t.Fatalf("parsed %+v", iso)
	}
}

func TestParseIsolatedRefuses(t *testing.T) {
	h1 := strings.Repeat("a", 40)
	file := `{"h":"` + h1 + `","s":1}`
	manifest := func(files string) string { return `{"algo":"sha-1","version":"1.4","files":{` + files + `}}` }
	tests := []struct {
		name, data, want string
	}{
		{"absolute path", manifest(`"/etc/passwd":` + file), "/etc/passwd"},
		{"dot-dot", manifest(`"a/../../x":` + file), "a/../../x"},
		{"leading dot-dot", manifest(`"../x":` + file), "../x"},
		{"dot segment", manifest(`"a/./x":` + file), "a/./x"},
		{"empty segment", manifest(`"a//x":` + file), "a//x"},
		{"trailing slash", manifest(`"a/":` + file), "a/"},
		{"backslash", manifest(`"a\\..\\..\\x":` + file), `a\\..`},
		{"empty path", manifest(`"":` + file), "empty path"},
		{"absolute link", manifest(`"l":{"l":"/etc"}`), "l -> /etc"},
		{"link out", manifest(`"a/l":{"l":"../../x"}`), "a/l -> ../../x"},
		{"chained links out", manifest(`"d/up":{"l":".."},"d/esc":{"l":"up/.."}`), "d/esc -> up/.."},
		{"link loop", manifest(`"a":{"l":"b"},"b":{"l":"a/x"}`), "too many levels"},
		{"path below a link", manifest(`"l":{"l":"."},"l/x":` + file), "l/x is inside l"},
		{"path below a file", manifest(`"f":` + file + `,"f/x":` + file), "f/x is inside f"},
		{"link with digest", manifest(`"l":{"l":"x","h":"` + h1 + `"}`), "l: a link"},
		{"no digest", manifest(`"f":{"s":1}`), "f: neither"},
		{"mode too big", manifest(`"f":{"h":"` + h1 + `","s":1,"m":4095}`), "f: mode"},
		{"negative mode", manifest(`"f":{"h":"` + h1 + `","s":1,"m":-1}`), "f: mode"},
		{"digest of other algo", manifest(`"f":{"h":"` + strings.Repeat("a", 64) + `","s":1}`), "f: digest"},
		{"uppercase digest", manifest(`"f":{"h":"` + strings.Repeat("A", 40) + `","s":1}`), "f: digest"},
		{"tar entry", manifest(`"f":{"h":"` + h1 + `","t":"tar"}`), `"tar"`},
		{"unknown algo", `{"algo":"md5","version":"1.4","files":{}}`, "md5"},
		{"no version", `{"algo":"sha-1","files":{}}`, "no version"},
		{"version 2", `{"algo":"sha-1","version":"2.0","files":{}}`, "2.0"},
		{"unknown key", `{"algo":"sha-1","version":"1.4","files":{},"os":"linux"}`, "os"},
		{"bad include", `{"algo":"sha-1","version":"1.4","files":{},"includes":["xyz"]}`, "xyz"},
		{"relative_cwd out", `{"algo":"sha-1","version":"1.4","files":{},"relative_cwd":"../x"}`, "relative_cwd"},
		{"read_only 3", `{"algo":"sha-1","version":"1.4","files":{},"read_only":3}`, "read_only"},
		{"trailing data", `{"algo":"sha-1","version":"1.4","files":{}} {}`, "after"},
		{"not json", `{'algo': 'sha-1'}`, "manifest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseIsolated([]byte(tt.data))
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, model.ErrInvalid) {
				t.Errorf("error %v does not wrap model.ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
		})
	}
}

func TestParseIsolatedAcceptsLinksInside(t *testing.T) {
	m := `{"algo":"sha-1","version":"1.4","relative_cwd":".","files":{` +
		`"lib/libfoo.so":{"l":"libfoo.so.1"},"lib/libfoo.so.1":{"h":"` + strings.Repeat("b", 40) + `","s":0},` +
		`"bin/lib":{"l":"../lib"},"d/up":{"l":".."},"d/self":{"l":"up/d"},"dangling":{"l":"nowhere/at/all"}}}`
	if _, err := ParseIsolated([]byte(m)); err != nil {
		t.Fatal(err)
	}
}

// Every field of the format survives Encode and ParseIsolated, with both
// algorithms, and encodes to the same bytes again.
func TestIsolatedRoundTrip(t *testing.T) {
	for _, algo := range []Algo{SHA1, SHA256} {
		for _, ro := range []*int{nil, intp(0), intp(1), intp(2)} {
			in := &Isolated{
				Algo:        algo,
				Version:     IsolatedVersion,
				Command:     []string{"./run.sh", "--flag=a b"},
				RelativeCwd: "src/test",
				ReadOnly:    ro,
				Includes:    []string{HashBytes(algo, []byte("inc1")), HashBytes(algo, []byte("inc2"))},
				Files: map[string]File{
					"src/test/run.sh":    {Digest: HashBytes(algo, []byte("#!/bin/sh\n")), Size: 10, Mode: 0o755},
					"src/test/data.bin":  {Digest: HashBytes(algo, []byte{0}), Size: 1, Mode: 0o600},
					"src/test/unsized":   {Digest: HashBytes(algo, nil), Size: -1},
					"src/test/nomode":    {Digest: HashBytes(algo, nil), Size: 0},
					"src/test/lib.so":    {Link: "lib.so.1"},
					"src/test/lib.so.1":  {Digest: HashBytes(algo, []byte("so")), Size: 2, Mode: 0o644},
					"src/test/up/shared": {Link: "../data.bin"},
				},
			}
			data := in.Encode()
			out, err := ParseIsolated(data)
			if err != nil {
				t.Fatalf("%s read_only %v: %v\n%s", algo, ro, err, data)
			}
			if !reflect.DeepEqual(in, out) {
				t.Fatalf("%s read_only %v:\n in  %+v\n out %+v", algo, ro, in, out)
			}
			if again := out.Encode(); !bytes.Equal(again, data) {
				t.Fatalf("%s: re-encoded differently:\n%s\n%s", algo, data, again)
			}
			if ro == nil && strings.Contains(string(data), "read_only") {
				t.Fatalf("read_only written though unset: %s", data)
			}
		}
	}
}

// What a luci-written sha-256 manifest with includes looks like is read as
// luci means it; mixing algorithms is refused.
func TestParseIsolatedSHA256(t *testing.T) {
	h := strings.Repeat("e", 64)
	iso, err := ParseIsolated([]byte(`{"algo":"sha-256","command":["a"],"files":{"x":{"h":"` + h + `","m":288,"s":5},` +
		`"y":{"l":"x"}},"includes":["` + h + `"],"read_only":2,"relative_cwd":".","version":"1.4"}`))
	if err != nil {
		t.Fatal(err)
	}
	if iso.Algo != SHA256 || *iso.ReadOnly != 2 || iso.Files["x"].Mode != 0o440 || iso.Files["y"].Link != "x" || iso.Includes[0] != h {
		t.Fatalf("parsed %+v", iso)
	}
	for name, data := range map[string]string{
		"sha-1 file in a sha-256 manifest":    `{"algo":"sha-256","version":"1.4","files":{"x":{"h":"` + strings.Repeat("a", 40) + `"}}}`,
		"sha-1 include in a sha-256 manifest": `{"algo":"sha-256","version":"1.4","files":{},"includes":["` + strings.Repeat("a", 40) + `"]}`,
		"sha-256 file in a sha-1 manifest":    `{"algo":"sha-1","version":"1.4","files":{"x":{"h":"` + h + `"}}}`,
		"link with a mode":                    `{"algo":"sha-1","version":"1.4","files":{"y":{"l":"x","m":420}}}`,
		"empty link":                          `{"algo":"sha-1","version":"1.4","files":{"y":{"l":""}}}`,
		"negative size":                       `{"algo":"sha-1","version":"1.4","files":{"x":{"h":"` + strings.Repeat("a", 40) + `","s":-2}}}`,
		"setuid mode":                         `{"algo":"sha-1","version":"1.4","files":{"x":{"h":"` + strings.Repeat("a", 40) + `","m":2541}}}`,
		"read_only -1":                        `{"algo":"sha-1","version":"1.4","files":{},"read_only":-1}`,
		"absolute relative_cwd":               `{"algo":"sha-1","version":"1.4","files":{},"relative_cwd":"/tmp"}`,
	} {
		if _, err := ParseIsolated([]byte(data)); !errors.Is(err, model.ErrInvalid) {
			t.Errorf("%s: %v, want model.ErrInvalid", name, err)
		}
	}
}
