package isolatefile

import (
	"fmt"
	"maps"
	"path"
	"path/filepath"
	"slices"
)

// lineError is an error about the value written at a line.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *lineError) Unwrap() error { return e.err }

// isolateDoc interprets one decoded .isolate file.
type isolateDoc struct {
	lines map[string]int    // by value path
	subst map[string]string // values of <(NAME)
	cond  map[string]string // what conditions test
}

func (d *isolateDoc) errorf(path, format string, args ...any) error {
	return &lineError{line: lineOf(d.lines, path), err: fmt.Errorf(format, args...)}
}

// settings are the variables of one part of a file: its top-level
// variables, or those of one condition.
type settings struct {
	command  []string
	files    []string
	readOnly *int
	path     string // of the variables dict
	label    string // for messages
}

// interpret checks the structure of a decoded .isolate file, keeps the
// conditions that hold and applies variables. It returns the include paths
// separately, relative to the file.
func (d *isolateDoc) interpret(top any) (*File, []string, error) {
	m, ok := top.(map[string]any)
	if !ok {
		return nil, nil, d.errorf("", "want a dict at the top, got %s", typeName(top))
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k != "variables" && k != "includes" && k != "conditions" {
			return nil, nil, d.errorf(k, "unknown key %q (want variables, conditions, includes)", k)
		}
	}
	var includes []string
	if v, ok := m["includes"]; ok {
		ss, err := d.stringList("includes", v, false)
		if err != nil {
			return nil, nil, err
		}
		for i, s := range ss {
			if s == "" || path.IsAbs(s) || filepath.IsAbs(s) {
				return nil, nil, d.errorf(indexPath("includes", i), "includes[%d]: %q: want a path relative to this file", i, s)
			}
		}
		includes = ss
	}
	var parts []*settings
	if v, ok := m["variables"]; ok {
		s, err := d.variables(v, "variables", true)
		if err != nil {
			return nil, nil, err
		}
		s.label = "the top-level variables"
		parts = append(parts, s)
	}
	if v, ok := m["conditions"]; ok {
		list, ok := v.([]any)
		if !ok {
			return nil, nil, d.errorf("conditions", "conditions: want a list of ['CONDITION', {'variables': {...}}], got %s", typeName(v))
		}
		for i, c := range list {
			s, err := d.condition(c, indexPath("conditions", i))
			if err != nil {
				return nil, nil, err
			}
			if s != nil {
				parts = append(parts, s)
			}
		}
	}
	out, err := d.join(parts)
	return out, includes, err
}

// join merges the parts of a file that hold: files are unioned in order;
// the command and read_only may each come from one part only (a read_only
// given the same by several is fine).
func (d *isolateDoc) join(parts []*settings) (*File, error) {
	out := &File{}
	var cmdFrom, roFrom *settings
	for _, s := range parts {
		if len(s.command) > 0 {
			if cmdFrom != nil {
				return nil, d.errorf(s.path+".command", "the command is set by both %s (line %d) and %s (line %d), which both hold: set it in one place",
					cmdFrom.label, lineOf(d.lines, cmdFrom.path+".command"), s.label, lineOf(d.lines, s.path+".command"))
			}
			out.Command, cmdFrom = s.command, s
		}
		if s.readOnly != nil {
			if roFrom != nil && *roFrom.readOnly != *s.readOnly {
				return nil, d.errorf(s.path+".read_only", "read_only is %d in %s (line %d) but %d in %s (line %d), which both hold",
					*roFrom.readOnly, roFrom.label, lineOf(d.lines, roFrom.path+".read_only"), *s.readOnly, s.label, lineOf(d.lines, s.path+".read_only"))
			}
			out.ReadOnly, roFrom = s.readOnly, s
		}
		for _, f := range s.files {
			if !slices.Contains(out.Files, f) {
				out.Files = append(out.Files, f)
			}
		}
	}
	return out, nil
}

// condition checks one ['CONDITION', {'variables': {...}}] entry and
// returns its settings if the condition holds, nil otherwise. A condition
// that does not hold is checked all the same, without substituting
// variables (they may only have values where it holds).
func (d *isolateDoc) condition(c any, at string) (*settings, error) {
	list, ok := c.([]any)
	if !ok {
		return nil, d.errorf(at, "%s: want ['CONDITION', {'variables': {...}}], got %s", at, typeName(c))
	}
	if len(list) == 3 {
		return nil, d.errorf(indexPath(at, 2), "%s: an else branch (a third item) is not supported: write a second condition with the opposite test", at)
	}
	if len(list) != 2 {
		return nil, d.errorf(at, "%s: want ['CONDITION', {'variables': {...}}], got a list of %d items", at, len(list))
	}
	exprAt := indexPath(at, 0)
	expr, ok := list[0].(string)
	if !ok {
		return nil, d.errorf(exprAt, "%s: want the condition as a string, got %s", exprAt, typeName(list[0]))
	}
	cond, names, err := parseCondition(expr)
	if err != nil {
		return nil, d.errorf(exprAt, "condition %q: %v", expr, err)
	}
	for _, n := range names {
		if _, ok := d.cond[n]; !ok {
			return nil, d.errorf(exprAt, "condition %q uses the variable %s, which has no value: give it with --config-variable %s=VALUE", expr, n, n)
		}
	}
	thenAt := indexPath(at, 1)
	then, ok := list[1].(map[string]any)
	if !ok {
		return nil, d.errorf(thenAt, "%s: want {'variables': {...}}, got %s", thenAt, typeName(list[1]))
	}
	for _, k := range slices.Sorted(maps.Keys(then)) {
		if k != "variables" {
			return nil, d.errorf(valuePath(thenAt, k), "%q inside a condition is not supported (only 'variables')", k)
		}
	}
	v, ok := then["variables"]
	if !ok {
		return nil, d.errorf(thenAt, "condition %q has no 'variables'", expr)
	}
	holds := cond.holds(d.cond)
	s, err := d.variables(v, valuePath(thenAt, "variables"), holds)
	if err != nil || !holds {
		return nil, err
	}
	s.label = fmt.Sprintf("the condition %q", expr)
	return s, nil
}

func (d *isolateDoc) variables(v any, at string, subst bool) (*settings, error) {
	vm, ok := v.(map[string]any)
	if !ok {
		return nil, d.errorf(at, "%s: want a dict, got %s", at, typeName(v))
	}
	s := &settings{path: at}
	for _, k := range slices.Sorted(maps.Keys(vm)) {
		v := vm[k]
		kAt := valuePath(at, k)
		var err error
		switch k {
		case "command":
			s.command, err = d.stringList(kAt, v, subst)
		case "files":
			s.files, err = d.stringList(kAt, v, subst)
			for i, f := range s.files {
				if err == nil && (f == "" || path.IsAbs(f) || filepath.IsAbs(f)) {
					err = d.errorf(indexPath(kAt, i), "%s[%d]: %q: want a path relative to the .isolate file's folder", kAt, i, f)
				}
			}
		case "read_only":
			if v == nil {
				continue // None: not said
			}
			n, ok := asInt(v)
			if !ok || n < 0 || n > 2 {
				return nil, d.errorf(kAt, "%s: want 0, 1 or 2, got %v", kAt, v)
			}
			ro := int(n)
			s.readOnly = &ro
		default:
			return nil, d.errorf(kAt, "%s: unknown key %q (want command, files, read_only)", at, k)
		}
		if err != nil {
			return nil, err
		}
	}
	return s, nil
}

// stringList converts a list of strings, substituting variables if subst.
func (d *isolateDoc) stringList(at string, v any, subst bool) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, d.errorf(at, "%s: want a list of strings, got %s", at, typeName(v))
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, d.errorf(indexPath(at, i), "%s[%d]: want a string, got %s", at, i, typeName(item))
		}
		if subst {
			var err error
			if s, err = d.substitute(s); err != nil {
				return nil, d.errorf(indexPath(at, i), "%s[%d]: %v", at, i, err)
			}
		}
		out = append(out, s)
	}
	return out, nil
}

// substitute replaces <(NAME) as luci's variables do.
func (d *isolateDoc) substitute(s string) (string, error) {
	var missing string
	out := variableRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := d.subst[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("undefined variable %q in %q: give it a value (--extra-variable, --path-variable or --config-variable %s=...)", missing, s, missing)
	}
	return out, nil
}
