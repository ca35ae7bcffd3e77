package isolate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// IsolateFile is what a .isolate file asks for: the command of the task and
// the files and folders its inputs are made of.
type IsolateFile struct {
	Command []string
	// Files as written, relative to Dir; folders end in "/".
	Files    []string
	ReadOnly *int
	// Dir is the absolute folder of the .isolate file whose command this is
	// (with includes, the one that supplied the command): Files are relative
	// to it and the command runs in it.
	Dir string
}

// maxIsolateIncludes bounds the include graph of one .isolate file.
const maxIsolateIncludes = 100

// variableRef matches luci's <(NAME) variable references.
var variableRef = regexp.MustCompile(`<\(([^)]*)\)`)

// LoadIsolate reads a .isolate file, in JSON or in the Python-literal form
// pprint writes, replaces <(NAME) variables from vars, and merges the files
// it includes. An include's files are rebased onto the folder of the file
// that supplies the command, which the including file does when it has one.
func LoadIsolate(file string, vars map[string]string) (*IsolateFile, error) {
	l := &isolateLoader{vars: vars, loading: map[string]bool{}}
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("isolate file %s: %w", file, err)
	}
	return l.load(abs, file)
}

type isolateLoader struct {
	vars    map[string]string
	loading map[string]bool // files on the current include path, to detect cycles
	loaded  int
}

func (l *isolateLoader) load(abs, display string) (*IsolateFile, error) {
	if l.loading[abs] {
		return nil, fmt.Errorf("%s: includes itself (through its includes)", display)
	}
	if l.loaded++; l.loaded > maxIsolateIncludes {
		return nil, fmt.Errorf("%s: more than %d included .isolate files", display, maxIsolateIncludes)
	}
	l.loading[abs] = true
	defer delete(l.loading, abs)

	data, err := os.ReadFile(abs)
	if err != nil {
		return nil, fmt.Errorf("isolate file: %w", err)
	}
	top, err := decodeIsolate(data)
	if err != nil {
		var se *pySyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s:%v", display, err)
		}
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	out, includes, err := l.interpret(top)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	out.Dir = filepath.Dir(abs)
	for _, inc := range includes {
		incAbs := filepath.Join(out.Dir, filepath.FromSlash(inc))
		sub, err := l.load(incAbs, filepath.Join(filepath.Dir(display), filepath.FromSlash(inc)))
		if err != nil {
			return nil, err
		}
		out = merge(out, sub)
	}
	return out, nil
}

// decodeIsolate accepts strict JSON as JSON, and anything else as a Python
// literal, whose parser also reports where malformed input goes wrong.
func decodeIsolate(data []byte) (any, error) {
	if json.Valid(data) {
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, err
		}
		return v, nil
	}
	return parsePyLiteral(data)
}

// interpret checks the structure of a decoded .isolate file and applies
// variables. It returns the include paths separately, relative to the file.
func (l *isolateLoader) interpret(top any) (*IsolateFile, []string, error) {
	m, ok := top.(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("want a dict at the top, got %s", typeName(top))
	}
	out := &IsolateFile{}
	var includes []string
	for _, k := range sortedKeys(m) {
		v := m[k]
		switch k {
		case "variables":
			vm, ok := v.(map[string]any)
			if !ok {
				return nil, nil, fmt.Errorf("variables: want a dict, got %s", typeName(v))
			}
			if err := l.variables(vm, out); err != nil {
				return nil, nil, err
			}
		case "includes":
			ss, err := l.stringList("includes", v)
			if err != nil {
				return nil, nil, err
			}
			for i, s := range ss {
				if s == "" || path.IsAbs(s) || filepath.IsAbs(s) {
					return nil, nil, fmt.Errorf("includes[%d]: %q: want a path relative to this file", i, s)
				}
			}
			includes = ss
		case "conditions":
			if list, ok := v.([]any); ok && len(list) == 0 {
				continue
			}
			return nil, nil, errors.New("conditions are not supported: list command and files under variables")
		default:
			return nil, nil, fmt.Errorf("unknown key %q (want variables, includes)", k)
		}
	}
	return out, includes, nil
}

func (l *isolateLoader) variables(vm map[string]any, out *IsolateFile) error {
	for _, k := range sortedKeys(vm) {
		v := vm[k]
		var err error
		switch k {
		case "command":
			out.Command, err = l.stringList("variables.command", v)
		case "files":
			out.Files, err = l.stringList("variables.files", v)
			for i, f := range out.Files {
				if err == nil && (f == "" || path.IsAbs(f) || filepath.IsAbs(f)) {
					err = fmt.Errorf("variables.files[%d]: %q: want a path relative to the .isolate file's folder", i, f)
				}
			}
		case "read_only":
			n, ok := asInt(v)
			if !ok || n < 0 || n > 2 {
				return fmt.Errorf("variables.read_only: want 0, 1 or 2, got %v", v)
			}
			ro := int(n)
			out.ReadOnly = &ro
		default:
			return fmt.Errorf("variables: unknown key %q (want command, files, read_only)", k)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// stringList converts a list of strings, substituting variables.
func (l *isolateLoader) stringList(what string, v any) ([]string, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s: want a list of strings, got %s", what, typeName(v))
	}
	out := make([]string, 0, len(list))
	for i, item := range list {
		s, ok := item.(string)
		if !ok {
			return nil, fmt.Errorf("%s[%d]: want a string, got %s", what, i, typeName(item))
		}
		s, err := l.substitute(s)
		if err != nil {
			return nil, fmt.Errorf("%s[%d]: %w", what, i, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// substitute replaces <(NAME) as luci's --extra-variable NAME=value does.
func (l *isolateLoader) substitute(s string) (string, error) {
	var missing string
	out := variableRef.ReplaceAllStringFunc(s, func(ref string) string {
		name := ref[2 : len(ref)-1]
		v, ok := l.vars[name]
		if !ok && missing == "" {
			missing = name
		}
		return v
	})
	if missing != "" {
		return "", fmt.Errorf("undefined variable %q in %q: give it a value", missing, s)
	}
	return out, nil
}

// merge joins an included file into the one including it. Like luci, the
// including file's command wins; whichever file supplies the command gives
// the folder that files are relative to.
func merge(self, inc *IsolateFile) *IsolateFile {
	base := self
	if len(self.Command) == 0 && len(inc.Command) > 0 {
		base = inc
	}
	out := &IsolateFile{Command: base.Command, Dir: base.Dir, ReadOnly: self.ReadOnly}
	if out.ReadOnly == nil {
		out.ReadOnly = inc.ReadOnly
	}
	// The including file's own files come first, as written where possible.
	first, second := rebase(self.Files, self.Dir, base.Dir), rebase(inc.Files, inc.Dir, base.Dir)
	for _, f := range slices.Concat(first, second) {
		if !slices.Contains(out.Files, f) {
			out.Files = append(out.Files, f)
		}
	}
	return out
}

// rebase makes files relative to from relative to to, keeping the trailing
// slash of folders; files stay as written when the folders are the same.
func rebase(files []string, from, to string) []string {
	if from == to {
		return files
	}
	out := make([]string, 0, len(files))
	for _, f := range files {
		rel, err := filepath.Rel(to, filepath.Join(from, filepath.FromSlash(f)))
		if err != nil { // both are absolute, so this cannot happen
			rel = filepath.Join(from, f)
		}
		rel = filepath.ToSlash(rel)
		if strings.HasSuffix(f, "/") && !strings.HasSuffix(rel, "/") {
			rel += "/"
		}
		out = append(out, rel)
	}
	return out
}

func asInt(v any) (int64, bool) {
	switch n := v.(type) {
	case int64:
		return n, true
	case json.Number:
		i, err := n.Int64()
		return i, err == nil
	}
	return 0, false
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "None"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, json.Number:
		return "a number"
	case []any:
		return "a list"
	case map[string]any:
		return "a dict"
	}
	return fmt.Sprintf("%T", v)
}
