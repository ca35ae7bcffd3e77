package isolatefile

import (
	"bytes"
	"fmt"
	"maps"
	"strconv"
	"strings"
	"unicode/utf8"
)

// pySyntaxError is a malformed Python literal, located for the user.
type pySyntaxError struct {
	Line, Col int
	Msg       string
}

func (e *pySyntaxError) Error() string { return fmt.Sprintf("%d:%d: %s", e.Line, e.Col, e.Msg) }

// maxPyDepth bounds nesting so that hostile input cannot exhaust the stack.
const maxPyDepth = 200

// parsePyLiteral parses src as one Python literal expression of the kind
// pprint writes for a .isolate file: dicts, lists, tuples (as lists),
// strings (single, double or triple quoted, with Python escapes, r/u/b
// prefixes, adjacent literals concatenated), ints, True/False/None, with
// trailing commas and # comments. JSON's true/false/null are accepted too,
// so that a nearly-JSON file gets a located error rather than a vague one.
// Values come back as map[string]any, []any, string, int64, bool or nil.
func parsePyLiteral(src []byte) (any, error) {
	v, _, err := parsePyLiteralLines(src)
	return v, err
}

// parsePyLiteralLines is parsePyLiteral that also tells the line of every
// value, by its path (see valuePath), so that errors found later can say
// where the value was written.
func parsePyLiteralLines(src []byte) (any, map[string]int, error) {
	p := &pyParser{src: src, nl: newLineIndex(src), lines: map[string]int{}}
	v, err := p.value(0, "")
	if err != nil {
		return nil, nil, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, nil, p.errorf("unexpected %s after the end of the literal", p.describe())
	}
	return v, p.lines, nil
}

type pyParser struct {
	src   []byte
	pos   int
	nl    lineIndex
	lines map[string]int // by value path
}

func (p *pyParser) errorAt(pos int, format string, args ...any) error {
	line := p.nl.line(pos)
	col := pos - bytes.LastIndexByte(p.src[:pos], '\n')
	return &pySyntaxError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

func (p *pyParser) errorf(format string, args ...any) error {
	return p.errorAt(p.pos, format, args...)
}

// describe names what is at the current position, for error messages.
func (p *pyParser) describe() string {
	if p.pos >= len(p.src) {
		return "end of file"
	}
	r, _ := utf8.DecodeRune(p.src[p.pos:])
	return strconv.QuoteRune(r)
}

func (p *pyParser) skipSpace() {
	for p.pos < len(p.src) {
		switch c := p.src[p.pos]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v':
			p.pos++
		case c == '#':
			for p.pos < len(p.src) && p.src[p.pos] != '\n' {
				p.pos++
			}
		case c == '\\' && p.pos+1 < len(p.src) && p.src[p.pos+1] == '\n':
			p.pos += 2
		default:
			return
		}
	}
}

func (p *pyParser) value(depth int, path string) (any, error) {
	if depth > maxPyDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.skipSpace()
	if p.pos >= len(p.src) {
		return nil, p.errorf("unexpected end of file, expected a value")
	}
	if _, ok := p.lines[path]; !ok { // a parenthesised value keeps its opening line
		p.lines[path] = p.nl.line(p.pos)
	}
	switch c := p.src[p.pos]; {
	case c == '{':
		return p.dict(depth, path)
	case c == '[':
		p.pos++
		return p.sequence(']', depth, path)
	case c == '(':
		return p.paren(depth, path)
	case c == '\'' || c == '"':
		return p.strings()
	case c == '-' || c == '+' || c >= '0' && c <= '9':
		return p.number()
	case isIdentByte(c):
		start := p.pos
		for p.pos < len(p.src) && isIdentByte(p.src[p.pos]) {
			p.pos++
		}
		word := string(p.src[start:p.pos])
		if p.pos < len(p.src) && (p.src[p.pos] == '\'' || p.src[p.pos] == '"') && isStringPrefix(word) {
			p.pos = start
			return p.strings()
		}
		switch word {
		case "True", "true":
			return true, nil
		case "False", "false":
			return false, nil
		case "None", "null":
			return nil, nil
		}
		return nil, p.errorAt(start, "unexpected name %q, expected a literal value", word)
	}
	return nil, p.errorf("unexpected %s, expected a value", p.describe())
}

func isIdentByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isStringPrefix(w string) bool {
	switch strings.ToLower(w) {
	case "r", "u", "b", "br", "rb":
		return true
	}
	return false
}

func (p *pyParser) dict(depth int, path string) (any, error) {
	p.pos++ // {
	m := map[string]any{}
	for {
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			return m, nil
		}
		keyPos := p.pos
		k, err := p.value(depth+1, path+".(key)")
		if err != nil {
			return nil, err
		}
		key, ok := k.(string)
		if !ok {
			return nil, p.errorAt(keyPos, "dict keys must be strings")
		}
		p.skipSpace()
		if p.pos >= len(p.src) || p.src[p.pos] != ':' {
			return nil, p.errorf("unexpected %s, expected ':' after the key %q", p.describe(), key)
		}
		p.pos++
		v, err := p.value(depth+1, valuePath(path, key))
		if err != nil {
			return nil, err
		}
		m[key] = v
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == '}' {
			p.pos++
			return m, nil
		}
		return nil, p.errorf("unexpected %s, expected ',' or '}'", p.describe())
	}
}

// sequence parses the items of a list or tuple up to close, after the
// items already parsed; the opening bracket has been consumed.
func (p *pyParser) sequence(close byte, depth int, path string, items ...any) ([]any, error) {
	if items == nil {
		items = []any{}
	}
	for {
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == close {
			p.pos++
			return items, nil
		}
		v, err := p.value(depth+1, indexPath(path, len(items)))
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		p.skipSpace()
		if p.pos < len(p.src) && p.src[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.pos < len(p.src) && p.src[p.pos] == close {
			p.pos++
			return items, nil
		}
		return nil, p.errorf("unexpected %s, expected ',' or '%c'", p.describe(), close)
	}
}

// paren is a parenthesised value (pprint wraps long strings so) or a tuple.
func (p *pyParser) paren(depth int, path string) (any, error) {
	p.pos++ // (
	p.skipSpace()
	if p.pos < len(p.src) && p.src[p.pos] == ')' {
		p.pos++
		return []any{}, nil
	}
	open := p.nl.line(p.pos - 1)
	v, err := p.value(depth+1, path)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	switch {
	case p.pos < len(p.src) && p.src[p.pos] == ')':
		p.pos++
		return v, nil
	case p.pos < len(p.src) && p.src[p.pos] == ',':
		p.pos++
		// A tuple after all: what was recorded for path is its first item's.
		p.moveLines(path, indexPath(path, 0))
		p.lines[path] = open
		return p.sequence(')', depth, path, v)
	}
	return nil, p.errorf("unexpected %s, expected ',' or ')'", p.describe())
}

// moveLines records the lines of the values under from (from included)
// under to instead.
func (p *pyParser) moveLines(from, to string) {
	moved := map[string]int{}
	for k, line := range p.lines {
		if rest, ok := strings.CutPrefix(k, from); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			delete(p.lines, k)
			moved[to+rest] = line
		}
	}
	maps.Copy(p.lines, moved)
}

func (p *pyParser) number() (any, error) {
	start := p.pos
	if c := p.src[p.pos]; c == '-' || c == '+' {
		p.pos++
	}
	for p.pos < len(p.src) && (isIdentByte(p.src[p.pos]) || p.src[p.pos] == '.') {
		p.pos++
	}
	text := string(p.src[start:p.pos])
	n, err := strconv.ParseInt(text, 0, 64)
	if err != nil {
		return nil, p.errorAt(start, "%q is not an integer", text)
	}
	return n, nil
}
