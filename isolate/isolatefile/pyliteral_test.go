package isolatefile

import (
	"errors"
	"reflect"
	"testing"
)

func TestParsePyLiteral(t *testing.T) {
	tests := []struct {
		src  string
		want any
	}{
		{`'a'`, "a"},
		{`"it's"`, "it's"},
		{`'say "hi"'`, `say "hi"`},
		{`'a\tb\\c\'d\n'`, "a\tb\\c'd\n"},
		{`'\x41\101\u00e9\U0001F600'`, "AAé😀"},
		{`'\d\/'`, `\d\/`}, // unknown escapes keep their backslash
		{`r'a\nb\''`, `a\nb\'`},
		{`u'x' b'y' "z"`, "xyz"},
		{`('long '` + "\n" + ` 'string')`, "long string"},
		{`'''tri'ple'''`, "tri'ple"},
		{`"""two` + "\n" + `lines"""`, "two\nlines"},
		{"'line \\\ncontinued'", "line continued"},
		{`0`, int64(0)},
		{`-12`, int64(-12)},
		{`0x1f`, int64(31)},
		{`True`, true},
		{`False`, false},
		{`None`, nil},
		{`true`, true},
		{`null`, nil},
		{`[]`, []any{}},
		{`[1, 2,]`, []any{int64(1), int64(2)}},
		{`(1, 'a')`, []any{int64(1), "a"}},
		{`()`, []any{}},
		{`{}`, map[string]any{}},
		{"{'a': [ {'b': None}, ], # comment\n 'c': (1,),}", map[string]any{"a": []any{map[string]any{"b": nil}}, "c": []any{int64(1)}}},
	}
	for _, tt := range tests {
		got, err := parsePyLiteral([]byte(tt.src))
		if err != nil {
			t.Errorf("%s: %v", tt.src, err)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: got %#v, want %#v", tt.src, got, tt.want)
		}
	}
}

func TestParsePyLiteralErrors(t *testing.T) {
	tests := []struct {
		src       string
		line, col int
	}{
		{"{'a': 1\n 'b': 2}", 2, 2},
		{"{'a': [1, 2}", 1, 12},
		{"{\n  'a': 'unterminated\n}", 2, 8},
		{"{'a': 1.5}", 1, 7},
		{"{1: 'a'}", 1, 2},
		{"{'a': foo}", 1, 7},
		{"{'a': 1} extra", 1, 10},
		{"[", 1, 2},
		{"", 1, 1},
		{"'\\x4'", 1, 2},
	}
	for _, tt := range tests {
		_, err := parsePyLiteral([]byte(tt.src))
		var se *pySyntaxError
		if !errors.As(err, &se) {
			t.Errorf("%q: error %v, want a syntax error", tt.src, err)
			continue
		}
		if se.Line != tt.line || se.Col != tt.col {
			t.Errorf("%q: error at %d:%d (%v), want %d:%d", tt.src, se.Line, se.Col, se, tt.line, tt.col)
		}
	}
}

func TestParsePyLiteralDeepNesting(t *testing.T) {
	src := make([]byte, 100000)
	for i := range src {
		src[i] = '['
	}
	if _, err := parsePyLiteral(src); err == nil {
		t.Fatal("accepted 100000 nested lists")
	}
}
