package isolatefile

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"
)

// A condition of a .isolate file, as luci writes them:
//
//	'OS=="linux" and (CHROMEOS==1 or not asan=="1")'
//
// The grammar is the part of Python that .isolate files use:
//
//	expr := and ('or' and)*
//	and  := not ('and' not)*
//	not  := 'not' not | '(' expr ')' | NAME ('==' | '!=') (STRING | INTEGER)
//
// Anything else is refused as not supported rather than guessed at.
type condition interface {
	holds(vars map[string]string) bool
}

type condOr []condition
type condAnd []condition
type condNot struct{ c condition }

// condCompare is NAME == value or NAME != value. A number compares equal
// to a variable whose value is that integer written in decimal ("1" == 1);
// a string compares with the value as it is.
type condCompare struct {
	name   string
	negate bool
	str    string
	num    int64
	isNum  bool
}

func (c condOr) holds(vars map[string]string) bool {
	for _, x := range c {
		if x.holds(vars) {
			return true
		}
	}
	return false
}

func (c condAnd) holds(vars map[string]string) bool {
	for _, x := range c {
		if !x.holds(vars) {
			return false
		}
	}
	return true
}

func (c condNot) holds(vars map[string]string) bool { return !c.c.holds(vars) }

func (c condCompare) holds(vars map[string]string) bool {
	v := vars[c.name]
	var eq bool
	if c.isNum {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		eq = err == nil && n == c.num
	} else {
		eq = v == c.str
	}
	return eq != c.negate
}

// conditionGrammar is what a user is told when a condition goes beyond it.
const conditionGrammar = `VAR=="value", VAR!="value", VAR==number, and, or, not and parentheses`

// parseCondition parses src and returns it with the names of the variables
// it tests, in order of first use.
func parseCondition(src string) (condition, []string, error) {
	p := &condParser{src: src}
	if err := p.lex(); err != nil {
		return nil, nil, err
	}
	if len(p.toks) == 0 {
		return nil, nil, fmt.Errorf("empty condition")
	}
	c, err := p.or()
	if err != nil {
		return nil, nil, err
	}
	if p.pos < len(p.toks) {
		return nil, nil, p.unsupported(p.toks[p.pos])
	}
	return c, p.names, nil
}

type condTokKind int

const (
	tokName condTokKind = iota
	tokString
	tokNumber
	tokOp // == != ( )
	tokOther
)

type condTok struct {
	kind condTokKind
	text string // as written
	val  string // a string's value
	col  int    // 1-based, in the condition
}

type condParser struct {
	src   string
	toks  []condTok
	pos   int
	names []string
	depth int // of parentheses and nots being parsed
}

// maxCondDepth bounds the nesting of parentheses and nots, so that a
// hostile condition gets an error rather than exhausting the stack.
const maxCondDepth = maxPyDepth

func (p *condParser) lex() error {
	s := p.src
	col, counted := 1, 0 // the column of s[counted], counted up as tokens come
	for i := 0; i < len(s); {
		c := s[i]
		start := i
		col += utf8.RuneCountInString(s[counted:i])
		counted = i
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
			continue
		case c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z':
			for i < len(s) && isIdentByte(s[i]) {
				i++
			}
			p.toks = append(p.toks, condTok{kind: tokName, text: s[start:i], col: col})
		case c >= '0' && c <= '9' || c == '-' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			i++
			for i < len(s) && (isIdentByte(s[i]) || s[i] == '.') {
				i++
			}
			text := s[start:i]
			if _, err := strconv.ParseInt(text, 10, 64); err != nil {
				return fmt.Errorf("%q at column %d is not a decimal integer; conditions support %s",
					text, col, conditionGrammar)
			}
			p.toks = append(p.toks, condTok{kind: tokNumber, text: text, col: col})
		case c == '\'' || c == '"':
			var b strings.Builder
			i++
			for ; i < len(s) && s[i] != c; i++ {
				if s[i] == '\\' && i+1 < len(s) && (s[i+1] == c || s[i+1] == '\\') {
					i++
				} else if s[i] == '\\' {
					return fmt.Errorf("escape %q at column %d: a condition's strings may only escape quotes and backslashes",
						s[i:min(i+2, len(s))], col+utf8.RuneCountInString(s[start:i]))
				}
				b.WriteByte(s[i])
			}
			if i >= len(s) {
				return fmt.Errorf("string at column %d is not closed", col)
			}
			i++
			p.toks = append(p.toks, condTok{kind: tokString, text: s[start:i], val: b.String(), col: col})
		case strings.HasPrefix(s[i:], "==") || strings.HasPrefix(s[i:], "!="):
			i += 2
			p.toks = append(p.toks, condTok{kind: tokOp, text: s[start:i], col: col})
		case c == '(' || c == ')':
			i++
			p.toks = append(p.toks, condTok{kind: tokOp, text: s[start:i], col: col})
		default:
			// An operator is taken whole ("<=", "="), anything else one
			// character at a time, for the message.
			const opChars = "<>=!&|"
			if strings.IndexByte(opChars, c) >= 0 {
				for i++; i < len(s) && strings.IndexByte(opChars, s[i]) >= 0; i++ {
				}
			} else {
				_, size := utf8.DecodeRuneInString(s[i:])
				i += size
			}
			p.toks = append(p.toks, condTok{kind: tokOther, text: s[start:i], col: col})
		}
	}
	return nil
}

func (p *condParser) unsupported(t condTok) error {
	return fmt.Errorf("%q at column %d is not supported: conditions support %s", t.text, t.col, conditionGrammar)
}

func (p *condParser) peek() (condTok, bool) {
	if p.pos >= len(p.toks) {
		return condTok{}, false
	}
	return p.toks[p.pos], true
}

func (p *condParser) isWord(w string) bool {
	t, ok := p.peek()
	return ok && t.kind == tokName && t.text == w
}

func (p *condParser) or() (condition, error) {
	return p.chain("or", p.and, func(cs []condition) condition { return condOr(cs) })
}

func (p *condParser) and() (condition, error) {
	return p.chain("and", p.not, func(cs []condition) condition { return condAnd(cs) })
}

// chain parses operands joined by the word op; several become one
// condition by join, a single one stands alone.
func (p *condParser) chain(op string, operand func() (condition, error), join func([]condition) condition) (condition, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	out := []condition{first}
	for p.isWord(op) {
		p.pos++
		next, err := operand()
		if err != nil {
			return nil, err
		}
		out = append(out, next)
	}
	if len(out) == 1 {
		return first, nil
	}
	return join(out), nil
}

func (p *condParser) not() (condition, error) {
	t, ok := p.peek()
	if ok && (t.text == "not" || t.text == "(") {
		if p.depth++; p.depth > maxCondDepth {
			return nil, fmt.Errorf("%q at column %d: the condition is nested too deeply (more than %d levels of parentheses and nots)",
				t.text, t.col, maxCondDepth)
		}
		defer func() { p.depth-- }()
	}
	switch {
	case !ok:
		return nil, fmt.Errorf("the condition ends where a test was expected")
	case t.kind == tokName && t.text == "not":
		p.pos++
		c, err := p.not()
		if err != nil {
			return nil, err
		}
		return condNot{c}, nil
	case t.kind == tokOp && t.text == "(":
		p.pos++
		c, err := p.or()
		if err != nil {
			return nil, err
		}
		if end, ok := p.peek(); !ok || end.text != ")" {
			if !ok {
				return nil, fmt.Errorf("the parenthesis at column %d is not closed", t.col)
			}
			return nil, p.unsupported(end)
		}
		p.pos++
		return c, nil
	case t.kind == tokName && !isCondKeyword(t.text):
		return p.compare()
	}
	return nil, p.unsupported(t)
}

func isCondKeyword(w string) bool {
	switch w {
	case "and", "or", "not", "in", "is", "True", "False", "None", "if", "else", "lambda":
		return true
	}
	return false
}

func (p *condParser) compare() (condition, error) {
	name := p.toks[p.pos]
	p.pos++
	op, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("%s at column %d is not compared with anything: write %s==\"value\"", name.text, name.col, name.text)
	}
	if op.kind != tokOp || op.text != "==" && op.text != "!=" {
		return nil, p.unsupported(op)
	}
	p.pos++
	val, ok := p.peek()
	if !ok {
		return nil, fmt.Errorf("the condition ends after %s at column %d, where a value was expected", op.text, op.col)
	}
	c := condCompare{name: name.text, negate: op.text == "!="}
	switch val.kind {
	case tokString:
		c.str = val.val
	case tokNumber:
		c.num, _ = strconv.ParseInt(val.text, 10, 64) // lex checked it
		c.isNum = true
	default:
		return nil, p.unsupported(val)
	}
	p.pos++
	if !slices.Contains(p.names, name.text) {
		p.names = append(p.names, name.text)
	}
	return c, nil
}
