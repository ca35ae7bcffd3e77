package isolatefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"path"
	"reflect"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dist-test/dist_test/isolate"
)

// FuzzPyLiteral parses .isolate text as Python literals, the form Kudu's
// pprint writes. Errors point at a real line and column. A value that
// parses comes back the same after being written again as a Python literal
// (strings split into adjacent literals, tuples for lists, comments) and as
// JSON, which the JSON decoder and the Python-literal parser must then read
// alike. Nesting past the bound is an error, not a stack overflow.
func FuzzPyLiteral(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		v, lines, err := parsePyLiteralLines(data)
		if err != nil {
			var se *pySyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("error %v is not located", err)
			}
			if n := bytes.Count(data, []byte("\n")) + 1; se.Line < 1 || se.Line > n || se.Col < 1 {
				t.Fatalf("error at %d:%d of a text of %d lines: %v", se.Line, se.Col, n, err)
			}
			return
		}
		checkLines(t, data, lines)
		if d := depthOf(v); d > maxPyDepth+1 {
			t.Fatalf("a value %d deep was accepted (bound %d)", d, maxPyDepth)
		}

		py := writePy(v)
		back, err := parsePyLiteral(py)
		if err != nil {
			t.Fatalf("written again as a Python literal, the value is refused: %v\n%s", err, py)
		}
		if !reflect.DeepEqual(v, back) {
			t.Fatalf("the value changed through a Python literal:\n was %#v\n now %#v\n%s", v, back, py)
		}

		if !validUTF8(v) {
			return // JSON cannot hold it
		}
		js, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, _, err := decodeIsolate(js)
		if err != nil {
			t.Fatalf("written as JSON, the value is refused: %v\n%s", err, js)
		}
		if fromJSON = numbersToInt(fromJSON); !reflect.DeepEqual(v, fromJSON) {
			t.Fatalf("the value changed through JSON:\n was %#v\n now %#v\n%s", v, fromJSON, js)
		}
		asPy, err := parsePyLiteral(js)
		if err != nil || !reflect.DeepEqual(v, asPy) {
			t.Fatalf("JSON %s read as a Python literal: %#v, %v", js, asPy, err)
		}
	})
}

// FuzzIsolateFile interprets decoded .isolate files as Load does,
// with the variables Kudu and grind pass. The result does not depend on map
// order, every file is a relative path, every <(VAR) is replaced, errors
// name a line of the file, and a file written in the other form (JSON for
// a Python literal and back) means the same.
func FuzzIsolateFile(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		top, lines, err := decodeIsolate(data)
		if err != nil {
			return // FuzzPyLiteral covers what the decoders refuse
		}
		checkLines(t, data, lines)
		out, includes, err := interpretFuzz(top, lines)
		if err != nil {
			var le *lineError
			if errors.As(err, &le) {
				if n := bytes.Count(data, []byte("\n")) + 1; le.line < 0 || le.line > n {
					t.Fatalf("error at line %d of a file of %d lines: %v", le.line, n, err)
				}
			}
		}
		for range 3 { // maps iterate in a new order each time
			out2, includes2, err2 := interpretFuzz(top, lines)
			if fmt.Sprint(err) != fmt.Sprint(err2) || !reflect.DeepEqual(out, out2) || !slices.Equal(includes, includes2) {
				t.Fatalf("interpreted differently:\n%+v %q %v\n%+v %q %v", out, includes, err, out2, includes2, err2)
			}
		}
		if err == nil {
			checkIsolateFile(t, out, includes)
		}

		// The same document in the other form means the same.
		if top = numbersToInt(top); !validUTF8(top) || hasNonInteger(top) {
			return // neither form can hold it
		}
		other := writePy(top)
		if json.Valid(data) {
			// Python's json.loads reads "\/" as "/", its literals as "\/":
			// only JSON without that escape means the same as Python.
			if bytes.Contains(data, []byte(`\/`)) {
				return
			}
		} else {
			var merr error
			if other, merr = json.Marshal(top); merr != nil {
				t.Fatal(merr)
			}
		}
		top2, lines2, err2 := decodeIsolate(other)
		if err2 != nil {
			t.Fatalf("the other form is refused: %v\n%s", err2, other)
		}
		out2, includes2, err2 := interpretFuzz(top2, lines2)
		if (err == nil) != (err2 == nil) || !reflect.DeepEqual(out, out2) || !slices.Equal(includes, includes2) {
			t.Fatalf("the other form means something else:\n%s\n%+v %q %v\n%s\n%+v %q %v", data, out, includes, err, other, out2, includes2, err2)
		}
	})
}

func interpretFuzz(top any, lines map[string]int) (*File, []string, error) {
	d := &isolateDoc{
		lines: lines,
		subst: map[string]string{"PRODUCT_DIR": "../../build/latest", "THIRDPARTY_FLAVOR": "uninstrumented", "TEST": "TestFoo",
			"GTEST_FILTER": "*", "OS": "linux", "EMPTY": ""},
		cond: map[string]string{"OS": "linux", "CHROMEOS": "0", "asan": "1", "JDK": "8", "KUDU_FLAVOR": "tsan"},
	}
	return d.interpret(top)
}

func checkIsolateFile(t *testing.T, out *File, includes []string) {
	t.Helper()
	for i, f := range out.Files {
		if f == "" || path.IsAbs(f) || slices.Contains(out.Files[:i], f) {
			t.Fatalf("files %q", out.Files)
		}
	}
	for _, s := range slices.Concat(out.Files, out.Command) {
		if variableRef.MatchString(s) {
			t.Fatalf("%q still holds a variable", s)
		}
	}
	for _, inc := range includes {
		if inc == "" || path.IsAbs(inc) {
			t.Fatalf("includes %q", includes)
		}
	}
	if ro := out.ReadOnly; ro != nil && (*ro < 0 || *ro > 2) {
		t.Fatalf("read_only %d", *ro)
	}
}

// checkLines asserts that every recorded line is one of the text's.
func checkLines(t *testing.T, data []byte, lines map[string]int) {
	t.Helper()
	n := bytes.Count(data, []byte("\n")) + 1
	for p, l := range lines {
		if l < 1 || l > n {
			t.Fatalf("value %q recorded at line %d of a text of %d lines", p, l, n)
		}
	}
}

func depthOf(v any) int {
	d := 0
	switch v := v.(type) {
	case map[string]any:
		for _, x := range v {
			d = max(d, depthOf(x))
		}
		return d + 1
	case []any:
		for _, x := range v {
			d = max(d, depthOf(x))
		}
		return d + 1
	}
	return 0
}

func validUTF8(v any) bool {
	switch v := v.(type) {
	case string:
		return utf8.ValidString(v)
	case map[string]any:
		for k, x := range v {
			if !utf8.ValidString(k) || !validUTF8(x) {
				return false
			}
		}
	case []any:
		for _, x := range v {
			if !validUTF8(x) {
				return false
			}
		}
	}
	return true
}

// numbersToInt turns the JSON decoder's numbers into the int64s the
// Python-literal parser gives (the tests only compare integers).
func numbersToInt(v any) any {
	switch v := v.(type) {
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return n
		}
	case map[string]any:
		for k, x := range v {
			v[k] = numbersToInt(x)
		}
	case []any:
		for i, x := range v {
			v[i] = numbersToInt(x)
		}
	}
	return v
}

func hasNonInteger(v any) bool {
	switch v := v.(type) {
	case json.Number:
		return true // numbersToInt left it
	case map[string]any:
		for _, x := range v {
			if hasNonInteger(x) {
				return true
			}
		}
	case []any:
		for _, x := range v {
			if hasNonInteger(x) {
				return true
			}
		}
	}
	return false
}

// writePy writes a decoded value as a Python literal, in forms pprint and
// hand-written files use: lists at even depths and tuples at odd ones,
// long strings as adjacent literals, a comment per dict, trailing commas,
// and bytes literals for what is not UTF-8 text.
func writePy(v any) []byte {
	var b bytes.Buffer
	writePyValue(&b, v, 0)
	b.WriteByte('\n')
	return b.Bytes()
}

func writePyValue(b *bytes.Buffer, v any, depth int) {
	switch v := v.(type) {
	case nil:
		b.WriteString("None")
	case bool:
		b.WriteString(map[bool]string{true: "True", false: "False"}[v])
	case int64:
		b.WriteString(strconv.FormatInt(v, 10))
	case string:
		// Split into chunks of 7 bytes, not inside a UTF-8 sequence.
		for i, j := 0, 0; ; i = j {
			for j = min(i+7, len(v)); j < len(v) && !utf8.RuneStart(v[j]); j++ {
			}
			if i > 0 {
				b.WriteString("\n ")
			}
			writePyQuoted(b, v[i:j], utf8.ValidString(v))
			if j >= len(v) {
				break
			}
		}
	case map[string]any:
		b.WriteString("{  # a dict\n")
		for _, k := range slices.Sorted(maps.Keys(v)) {
			writePyValue(b, k, depth+1)
			b.WriteString(": ")
			writePyValue(b, v[k], depth+1)
			b.WriteString(",\n")
		}
		b.WriteString("}")
	case []any:
		open, close := "[", "]"
		if depth%2 == 1 {
			open, close = "(", ")"
		}
		b.WriteString(open)
		for _, x := range v {
			writePyValue(b, x, depth+1)
			b.WriteString(", ")
		}
		b.WriteString(close)
	default:
		panic(fmt.Sprintf("writePy: %T", v))
	}
}

// writePyQuoted writes s as one literal: text, or bytes when the whole
// string is not UTF-8 (its escapes then stand for bytes, not code points).
func writePyQuoted(b *bytes.Buffer, s string, text bool) {
	if !text {
		b.WriteByte('b')
	}
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case s[i] == '\\' || s[i] == '\'':
			b.WriteByte('\\')
			b.WriteByte(s[i])
		case s[i] == '\n':
			b.WriteString(`\n`)
		case s[i] >= ' ' && s[i] <= '~':
			b.WriteByte(s[i])
		case text && r >= 0x80 && r <= 0xffff:
			fmt.Fprintf(b, `\u%04x`, r)
		case text && r > 0xffff:
			fmt.Fprintf(b, `\U%08x`, r)
		case text:
			fmt.Fprintf(b, `\x%02x`, r) // below 0x80: one byte
		default:
			fmt.Fprintf(b, `\x%02x`, s[i])
			size = 1
		}
		i += size
	}
	b.WriteByte('\'')
}

// Hostile nesting, a megabyte deep, is refused with an error by every
// decoder of isolate files: no stack overflow, and no more allocated than
// four times the input.
func TestDecodersRefuseDeepNesting(t *testing.T) {
	const n = 1 << 20
	inputs := map[string][]byte{
		"JSON lists":             []byte(strings.Repeat("[", n) + strings.Repeat("]", n)),
		"JSON objects":           []byte(strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n)),
		"Python tuples":          []byte(strings.Repeat("(", n) + "1," + strings.Repeat(")", n)),
		"Python dicts":           []byte(strings.Repeat("{'a':", n) + "1" + strings.Repeat("}", n)),
		"manifest files":         []byte(`{"version":"1.4","files":` + strings.Repeat(`{"a":`, n) + "{}" + strings.Repeat("}", n) + "}"),
		"manifest command lists": []byte(`{"version":"1.4","command":` + strings.Repeat("[", n) + strings.Repeat("]", n) + "}"),
	}
	for name, data := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		var err error
		if strings.HasPrefix(name, "manifest") {
			_, err = isolate.ParseIsolated(data)
		} else {
			_, _, err = decodeIsolate(data)
		}
		runtime.ReadMemStats(&after)
		if err == nil {
			t.Errorf("%s: %d bytes of nesting accepted", name, len(data))
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4*uint64(len(data)) {
			t.Errorf("%s: %d bytes allocated to refuse %d bytes", name, alloc, len(data))
		}
	}
}
