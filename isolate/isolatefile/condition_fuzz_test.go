package isolatefile

import (
	"slices"
	"strings"
	"testing"
)

// FuzzCondition parses .isolate conditions. An accepted condition names
// only variables it tests, and evaluates the same every time; wrapping it
// in parentheses, "not (...)" or a chain with a test that always holds or
// never does changes its value exactly as Python's logic says. Nesting
// beyond what the parser takes is an error, never a stack overflow.
func FuzzCondition(f *testing.F) {
	f.Fuzz(func(t *testing.T, src string) {
		c, names, err := parseCondition(src)
		if err != nil {
			return
		}
		for i, n := range names {
			if n == "" || !isIdent(n) || isCondKeyword(n) || !strings.Contains(src, n) || slices.Contains(names[:i], n) {
				t.Fatalf("names %q of %q", names, src)
			}
		}
		again, names2, err := parseCondition(src)
		if err != nil || !slices.Equal(names, names2) {
			t.Fatalf("parsed differently the second time: %v, names %q then %q", err, names, names2)
		}
		unset := "zz_unset" // a variable src does not test
		for slices.Contains(names, unset) {
			unset += "_"
		}
		for _, form := range []struct {
			src    string
			negate bool
		}{
			{"(" + src + ")", false},
			{"not (" + src + ")", true},
			{"not not (" + src + ")", false},
			{"(" + src + ") and " + unset + "==''", false},
			{"(" + src + ") or " + unset + "!=''", false},
			{unset + "=='' and (" + src + ")", false},
			{unset + "=='x' or not (" + src + ")", true},
		} {
			d, _, err := parseCondition(form.src)
			if err != nil {
				if strings.Contains(err.Error(), "nested too deeply") {
					continue // src was at the limit already
				}
				t.Fatalf("%q parses but %q does not: %v", src, form.src, err)
			}
			for _, vars := range conditionVars(src, names) {
				want := c.holds(vars)
				if again.holds(vars) != want {
					t.Fatalf("%q evaluates differently once parsed again, with %v", src, vars)
				}
				if got := d.holds(vars); got != (want != form.negate) {
					t.Fatalf("%q holds: %v, but %q holds: %v, with %v", src, want, form.src, got, vars)
				}
			}
		}
	})
}

// conditionVars are assignments to names drawn from the literals of src,
// so that comparisons both hold and fail; the last leaves every name unset.
func conditionVars(src string, names []string) []map[string]string {
	pool := []string{"", "0", "1", "linux", "-1", " 1"}
	p := &condParser{src: src}
	if p.lex() == nil {
		for _, tok := range p.toks {
			switch tok.kind {
			case tokString:
				pool = append(pool, tok.val)
			case tokNumber:
				pool = append(pool, tok.text)
			}
		}
	}
	var out []map[string]string
	for k := range 12 {
		vars := map[string]string{}
		for i, n := range names {
			vars[n] = pool[(k*(i+3)+i*i)%len(pool)]
		}
		out = append(out, vars)
	}
	return append(out, map[string]string{})
}

func isIdent(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isIdentByte(s[i]) {
			return false
		}
	}
	return s[0] < '0' || s[0] > '9'
}

// A condition nested far deeper than any .isolate file needs is refused
// with an error: the parser recurses once per level, and without a bound a
// long enough condition would overflow the stack and kill the process.
func TestConditionDeepNesting(t *testing.T) {
	const n = 100_000
	for name, src := range map[string]string{
		"parentheses": strings.Repeat("(", n) + `OS=="linux"` + strings.Repeat(")", n),
		"not":         strings.Repeat("not ", n) + `OS=="linux"`,
		"mixed":       strings.Repeat("not (", n) + `OS=="linux"` + strings.Repeat(")", n),
	} {
		_, _, err := parseCondition(src)
		if err == nil || !strings.Contains(err.Error(), "nested too deeply") {
			t.Errorf("%s: %v, want an error saying it is nested too deeply", name, err)
		}
	}
	// What real files write is well within the bound.
	src := strings.Repeat("(", 50) + `OS=="linux"` + strings.Repeat(")", 50)
	if _, _, err := parseCondition(src); err != nil {
		t.Fatal(err)
	}
}
