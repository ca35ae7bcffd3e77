package gotest

import (
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The JUnit XML of Maven Surefire, which CI servers read: one testsuite
// per package, one testcase per test, and a test that passed on a retry
// marked with a flakyFailure per failed run, as Surefire's
// rerunFailingTestsCount does.
type (
	JUnitSuites struct {
		XMLName xml.Name     `xml:"testsuites"`
		Suites  []JUnitSuite `xml:"testsuite"`
	}
	JUnitSuite struct {
		Name     string      `xml:"name,attr"`
		Tests    int         `xml:"tests,attr"`
		Failures int         `xml:"failures,attr"`
		Errors   int         `xml:"errors,attr"`
		Skipped  int         `xml:"skipped,attr"`
		Flakes   int         `xml:"flakes,attr"`
		Time     string      `xml:"time,attr"`
		Cases    []JUnitCase `xml:"testcase"`
	}
	JUnitCase struct {
		Name          string         `xml:"name,attr"`
		Classname     string         `xml:"classname,attr"`
		Time          string         `xml:"time,attr"`
		Failure       *JUnitProblem  `xml:"failure"`
		Error         *JUnitProblem  `xml:"error"`
		Skipped       *JUnitProblem  `xml:"skipped"`
		FlakyFailures []JUnitProblem `xml:"flakyFailure"`
		SystemOut     string         `xml:"system-out,omitempty"`
	}
	JUnitProblem struct {
		Message    string `xml:"message,attr"`
		Type       string `xml:"type,attr,omitempty"`
		Text       string `xml:",chardata"`
		StackTrace string `xml:"stackTrace,omitempty"`
		SystemOut  string `xml:"system-out,omitempty"`
	}
)

// packageCase names the testcase that carries a package's failures
// beyond its tests (a failed build, a panic, a test that never ran).
const packageCase = "(package)"

// WriteJUnit writes the report as JUnit XML.
func (r *Report) WriteJUnit(w io.Writer) error {
	var doc JUnitSuites
	for _, pr := range r.Packages {
		s := JUnitSuite{Name: pr.Pkg.ImportPath}
		total := 0.0
		for _, t := range pr.Tests {
			c := JUnitCase{Name: t.Name, Classname: pr.Pkg.ImportPath, Time: seconds(t.Elapsed)}
			if !strings.Contains(t.Name, "/") {
				total += t.Elapsed
			}
			switch t.Status {
			case Failed:
				s.Failures++
				c.Failure = &JUnitProblem{Message: "Failed", Type: "failure", Text: clean(t.Output)}
			case Skipped:
				s.Skipped++
				c.Skipped = &JUnitProblem{Message: "Skipped", Text: clean(t.Output)}
			case Flaky:
				s.Flakes++
				for _, f := range t.Failures {
					c.FlakyFailures = append(c.FlakyFailures, JUnitProblem{Message: "Failed", Type: "failure", StackTrace: clean(f)})
				}
				c.SystemOut = clean(t.Output)
			}
			s.Cases = append(s.Cases, c)
		}
		if len(pr.Problems) > 0 {
			s.Errors++
			first, _, _ := strings.Cut(pr.Problems[0], "\n")
			s.Cases = append(s.Cases, JUnitCase{Name: packageCase, Classname: pr.Pkg.ImportPath, Time: seconds(0),
				Error: &JUnitProblem{Message: first, Type: "error", Text: clean(strings.Join(pr.Problems, "\n"))}})
		}
		s.Tests, s.Time = len(s.Cases), seconds(total)
		doc.Suites = append(doc.Suites, s)
	}
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return err
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return err
	}
	_, err := io.WriteString(w, "\n")
	return err
}

func seconds(s float64) string { return fmt.Sprintf("%.3f", s) }

// clean drops the characters XML 1.0 cannot hold (test2json's framing
// byte among them), which encoding/xml would otherwise replace one by one.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' || r >= 0x20 && r != 0xFFFE && r != 0xFFFF {
			return r
		}
		return -1
	}, s)
}

// WriteJSON writes the test2json events of every attempt of every task,
// a package's together, each package ended by one pass or fail event for
// the whole run, as go test -json would write them.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	for _, e := range r.events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}
