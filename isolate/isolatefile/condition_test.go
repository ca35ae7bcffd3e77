package isolatefile

import (
	"slices"
	"strings"
	"testing"
)

func TestConditionHolds(t *testing.T) {
	vars := map[string]string{"OS": "linux", "CHROMEOS": "0", "asan": "1", "name": `it's "x"`}
	tests := []struct {
		src  string
		want bool
	}{
		{`OS=="linux"`, true},
		{`OS=='linux'`, true},
		{`OS == "mac"`, false},
		{`OS!="mac"`, true},
		{`OS!="linux"`, false},
		{`CHROMEOS==0`, true},
		{`CHROMEOS==1`, false},
		{`CHROMEOS=="0"`, true},
		{`CHROMEOS!=1`, true},
		{`asan==1 and OS=="linux"`, true},
		{`asan==1 and OS=="mac"`, false},
		{`OS=="mac" or OS=="linux"`, true},
		{`OS=="mac" or OS=="win"`, false},
		{`not OS=="mac"`, true},
		{`not not OS=="mac"`, false},
		// and binds tighter than or, as in Python.
		{`OS=="linux" or OS=="mac" and CHROMEOS==1`, true},
		{`(OS=="linux" or OS=="mac") and CHROMEOS==1`, false},
		{`OS=="linux" and (CHROMEOS==1 or not asan=="0")`, true},
		{`name=='it\'s "x"'`, true},
		{`OS==-1`, false},
		{"OS==\"linux\" and\n  CHROMEOS==0", true},
	}
	for _, tt := range tests {
		c, _, err := parseCondition(tt.src)
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if got := c.holds(vars); got != tt.want {
			t.Errorf("%s: holds = %v, want %v", tt.src, got, tt.want)
		}
	}
}

func TestConditionNames(t *testing.T) {
	_, names, err := parseCondition(`OS=="linux" and (CHROMEOS==1 or OS=="mac") and not asan==1`)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"OS", "CHROMEOS", "asan"}) {
		t.Fatalf("names %v", names)
	}
}

func TestConditionUnsupported(t *testing.T) {
	tests := []struct{ src, want string }{
		{`OS in ("linux", "mac")`, `"in" at column 4 is not supported`},
		{`OS=="linux" && CHROMEOS==1`, `"&&" at column 13 is not supported`},
		{`OS<="linux"`, `"<=" at column 3 is not supported`},
		{`OS="linux"`, `"=" at column 3 is not supported`},
		{`"linux"==OS`, `"\"linux\"" at column 1 is not supported`},
		{`OS==linux`, `"linux" at column 5 is not supported`},
		{`OS==1.5`, `"1.5" at column 5 is not a decimal integer`},
		{`os.name=="posix"`, `"." at column 3 is not supported`},
		{`True`, `"True" at column 1 is not supported`},
		{`OS=="linux" and`, "the condition ends where a test was expected"},
		{`(OS=="linux"`, "the parenthesis at column 1 is not closed"},
		{`OS=="linux")`, `")" at column 12 is not supported`},
		{`OS`, "OS at column 1 is not compared with anything"},
		{`OS==`, "the condition ends after == at column 3"},
		{`OS=="linux`, "string at column 5 is not closed"},
		{`OS=="\x41"`, `escape "\\x" at column 6: a condition's strings may only escape`},
		{`len(OS)==5`, `"(" at column 4 is not supported`},
		{``, "empty condition"},
		{`OS=="é" or ü==1`, `"ü" at column 12 is not supported`},
	}
	for _, tt := range tests {
		_, _, err := parseCondition(tt.src)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want %q", tt.src, err, tt.want)
		}
		if err != nil && strings.Contains(tt.want, "not supported") && !strings.Contains(err.Error(), conditionGrammar) {
			t.Errorf("%s: error %v does not say what is supported", tt.src, err)
		}
	}
}
