package model

import "unicode/utf8"

// MaxErrorBytes bounds the error and reason texts an attempt records: a
// slave (or a task through it) could otherwise store megabytes per run.
const MaxErrorBytes = 4096

// Clip returns s cut to at most n bytes, on a character boundary and marked
// with "…" when cut, and with invalid UTF-8 replaced, so that it fits a
// column of n characters in any database.
func Clip(s string, n int) string {
	if !utf8.ValidString(s) {
		s = toValidUTF8(s)
	}
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := max(n-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

func toValidUTF8(s string) string {
	b := make([]rune, 0, len(s))
	for _, r := range s {
		b = append(b, r) // invalid bytes decode as utf8.RuneError
	}
	return string(b)
}
