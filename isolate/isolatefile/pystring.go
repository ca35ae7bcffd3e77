package isolatefile

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// strings parses one string literal and any adjacent ones, concatenated.
func (p *pyParser) strings() (any, error) {
	var b strings.Builder
	for {
		if err := p.stringLiteral(&b); err != nil {
			return nil, err
		}
		save := p.pos
		p.skipSpace()
		if p.pos < len(p.src) && p.startsString() {
			continue
		}
		p.pos = save
		return b.String(), nil
	}
}

func (p *pyParser) startsString() bool {
	i := p.pos
	for i < len(p.src) && isIdentByte(p.src[i]) {
		i++
	}
	if i >= len(p.src) || p.src[i] != '\'' && p.src[i] != '"' {
		return false
	}
	return i == p.pos || isStringPrefix(string(p.src[p.pos:i]))
}

func (p *pyParser) stringLiteral(b *strings.Builder) error {
	start := p.pos
	raw, bytesLit := false, false
	for p.src[p.pos] != '\'' && p.src[p.pos] != '"' {
		switch p.src[p.pos] {
		case 'r', 'R':
			raw = true
		case 'b', 'B':
			bytesLit = true
		}
		p.pos++
	}
	q := p.src[p.pos]
	triple := bytes.HasPrefix(p.src[p.pos:], []byte{q, q, q})
	if triple {
		p.pos += 3
	} else {
		p.pos++
	}
	for {
		if p.pos >= len(p.src) {
			return p.errorAt(start, "string not closed before the end of file")
		}
		c := p.src[p.pos]
		switch {
		case c == q && (!triple || bytes.HasPrefix(p.src[p.pos:], []byte{q, q, q})):
			if triple {
				p.pos += 3
			} else {
				p.pos++
			}
			return nil
		case c == '\n' && !triple:
			return p.errorAt(start, "string not closed on its line")
		case c == '\\' && raw:
			// A raw string keeps the backslash, yet it still escapes a quote.
			b.WriteByte(c)
			p.pos++
			if p.pos < len(p.src) {
				b.WriteByte(p.src[p.pos])
				p.pos++
			}
		case c == '\\':
			if err := p.escape(b, bytesLit); err != nil {
				return err
			}
		default:
			b.WriteByte(c)
			p.pos++
		}
	}
}

// escape decodes one backslash escape as Python does; unknown escapes keep
// their backslash.
func (p *pyParser) escape(b *strings.Builder, bytesLit bool) error {
	start := p.pos
	p.pos++ // backslash
	if p.pos >= len(p.src) {
		return p.errorAt(start, "string not closed before the end of file")
	}
	c := p.src[p.pos]
	p.pos++
	if s, ok := simpleEscape(c); ok {
		b.WriteString(s)
		return nil
	}
	hexRune := func(n int) (rune, error) {
		if p.pos+n > len(p.src) {
			return 0, p.errorAt(start, "truncated \\%c escape", c)
		}
		v, err := strconv.ParseUint(string(p.src[p.pos:p.pos+n]), 16, 32)
		if err != nil {
			return 0, p.errorAt(start, "bad \\%c escape: want %d hex digits", c, n)
		}
		p.pos += n
		return rune(v), nil
	}
	switch {
	case c >= '0' && c <= '7':
		v := rune(c - '0')
		for i := 0; i < 2 && p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '7'; i++ {
			v = v*8 + rune(p.src[p.pos]-'0')
			p.pos++
		}
		writeCodePoint(b, v, bytesLit)
	case c == 'x':
		v, err := hexRune(2)
		if err != nil {
			return err
		}
		writeCodePoint(b, v, bytesLit)
	case (c == 'u' || c == 'U') && !bytesLit:
		n := 4
		if c == 'U' {
			n = 8
		}
		v, err := hexRune(n)
		if err != nil {
			return err
		}
		if utf16.IsSurrogate(v) && bytes.HasPrefix(p.src[p.pos:], []byte(`\u`)) {
			save := p.pos
			p.pos += 2
			lo, err := hexRune(4)
			if err == nil && utf16.DecodeRune(v, lo) != utf8.RuneError {
				v = utf16.DecodeRune(v, lo)
			} else {
				p.pos = save
			}
		}
		if v > utf8.MaxRune {
			return p.errorAt(start, "\\U escape beyond the last code point")
		}
		b.WriteRune(v)
	case c == 'N' && !bytesLit:
		return p.errorAt(start, "\\N{...} escapes are not supported; write the character itself")
	default:
		b.WriteByte('\\')
		p.pos-- // the character after the backslash is an ordinary one
	}
	return nil
}

// writeCodePoint writes an octal or \x escape: a byte in a bytes literal, a
// code point in a text string (Python 3 semantics).
func writeCodePoint(b *strings.Builder, v rune, bytesLit bool) {
	if bytesLit {
		b.WriteByte(byte(v))
		return
	}
	b.WriteRune(v)
}

func simpleEscape(c byte) (string, bool) {
	switch c {
	case '\n':
		return "", true // a line continuation inside the string
	case '\\', '\'', '"':
		return string(c), true
	case 'a':
		return "\a", true
	case 'b':
		return "\b", true
	case 'f':
		return "\f", true
	case 'n':
		return "\n", true
	case 'r':
		return "\r", true
	case 't':
		return "\t", true
	case 'v':
		return "\v", true
	}
	return "", false
}
