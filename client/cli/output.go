package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/spf13/cobra"
)

// output is the --json / -o flag of the commands whose output scripts read.
type output struct {
	json   bool
	format string
}

func (o *output) flags(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&o.json, "json", false, "print JSON (the same as -o json)")
	cmd.Flags().StringVarP(&o.format, "output", "o", "text", "output format: text or json")
}

// asJSON tells whether JSON was asked for; a format it does not know is a
// usage error, found before the master is asked anything.
func (o *output) asJSON() (bool, error) {
	switch o.format {
	case "text":
		return o.json, nil
	case "json":
		return true, nil
	}
	return false, fmt.Errorf("-o %q: use text or json", o.format)
}

// checkOutput is a PreRunE that refuses an unknown -o at once.
func (o *output) check(*cobra.Command, []string) error {
	_, err := o.asJSON()
	return err
}

func (e *Env) printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(e.Stdout, "%s\n", b)
	return err
}

// printable makes text a task wrote (its stderr, its description) safe for
// a terminal: control characters, escape sequences among them, become '?'
// and bytes that are not UTF-8 the replacement character; a line longer
// than max runes is cut.
func printable(s string, max int) string {
	var b strings.Builder
	n := 0
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		s = s[size:]
		if n == max {
			b.WriteString("...")
			break
		}
		switch {
		case r == '\t':
			b.WriteString("    ")
		case unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Bidi_Control, r):
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
		n++
	}
	return b.String()
}
