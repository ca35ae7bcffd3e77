package isolatefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// File is what a .isolate file asks for: the command of the task and
// the files and folders its inputs are made of.
type File struct {
	Command []string
	// Files as written, relative to Dir; folders end in "/".
	Files    []string
	ReadOnly *int
	// Dir is the absolute folder of the .isolate file whose command this is
	// (with includes, the one that supplied the command): Files are relative
	// to it and the command runs in it.
	Dir string
}

// Variables are the values a .isolate file is read with, as luci's isolate
// takes them on its command line.
type Variables struct {
	// Extra (--extra-variable) are substituted for <(NAME) as they are.
	Extra map[string]string
	// Path (--path-variable, such as PRODUCT_DIR) name folders, relative to
	// Cwd; each is rebased to be relative to the folder of the .isolate file
	// that uses it, as luci does.
	Path map[string]string
	// Config (--config-variable) are what conditions test. OS is "linux"
	// unless given. Conditions see Extra too; Config wins over it.
	Config map[string]string
	// Cwd is the folder Path values are relative to; the current folder
	// when empty.
	Cwd string
}

// maxIsolateIncludes bounds the include graph of one .isolate file.
const maxIsolateIncludes = 100

// variableRef matches luci's <(NAME) variable references.
var variableRef = regexp.MustCompile(`<\(([^)]*)\)`)

// Load reads a .isolate file, in JSON or in the Python-literal form
// pprint writes, keeps the variables of the conditions that hold, replaces
// <(NAME) variables, and merges the files it includes. An include's files
// are rebased onto the folder of the file that supplies the command, which
// the including file does when it has one. Errors name the file and, where
// they can, the line.
func Load(file string, vars Variables) (*File, error) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("isolate file %s: %w", file, err)
	}
	pathAbs, err := vars.pathFolders()
	if err != nil {
		return nil, fmt.Errorf("isolate file %s: %w", file, err)
	}
	cond := maps.Clone(vars.Extra)
	if cond == nil {
		cond = map[string]string{}
	}
	maps.Copy(cond, vars.Config)
	if _, ok := cond["OS"]; !ok {
		cond["OS"] = "linux"
	}
	l := &isolateLoader{vars: vars, pathAbs: pathAbs, cond: cond, loading: map[string]bool{}}
	return l.load(abs, file)
}

// pathFolders resolves the path variables to absolute folders, which must
// exist (luci refuses them otherwise too).
func (v Variables) pathFolders() (map[string]string, error) {
	cwd := v.Cwd
	if cwd == "" {
		var err error
		if cwd, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	out := make(map[string]string, len(v.Path))
	for _, k := range slices.Sorted(maps.Keys(v.Path)) {
		val := strings.TrimSpace(v.Path[k])
		abs := filepath.Clean(filepath.Join(cwd, filepath.FromSlash(val)))
		if filepath.IsAbs(val) {
			abs = filepath.Clean(val)
		}
		fi, err := os.Stat(abs)
		if err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("--path-variable %s=%s: %s is not a folder", k, v.Path[k], abs)
		}
		out[k] = abs
	}
	return out, nil
}

type isolateLoader struct {
	vars    Variables
	pathAbs map[string]string // path variables as absolute folders
	cond    map[string]string // what conditions test
	loading map[string]bool   // files on the current include path, to detect cycles
	loaded  int
}

func (l *isolateLoader) load(abs, display string) (*File, error) {
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
	top, lines, err := decodeIsolate(data)
	if err != nil {
		var se *pySyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%s:%v", display, err)
		}
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	dir := filepath.Dir(abs)
	doc := &isolateDoc{lines: lines, subst: l.substitutions(dir), cond: l.cond}
	out, includes, err := doc.interpret(top)
	if err != nil {
		var le *lineError
		if errors.As(err, &le) && le.line > 0 {
			return nil, fmt.Errorf("%s:%d: %w", display, le.line, le.err)
		}
		return nil, fmt.Errorf("%s: %w", display, err)
	}
	out.Dir = dir
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

// substitutions are the values of <(NAME) in a file of the folder dir: its
// path variables relative to dir, then config variables, then extra ones,
// each overriding the one before as in luci.
func (l *isolateLoader) substitutions(dir string) map[string]string {
	m := make(map[string]string, len(l.pathAbs)+len(l.vars.Config)+len(l.vars.Extra))
	for k, abs := range l.pathAbs {
		rel, err := filepath.Rel(dir, abs)
		if err != nil { // both are absolute, so this cannot happen
			rel = abs
		}
		m[k] = filepath.ToSlash(rel)
	}
	maps.Copy(m, l.vars.Config)
	maps.Copy(m, l.vars.Extra)
	return m
}

// decodeIsolate accepts strict JSON as JSON, and anything else as a Python
// literal, whose parser also reports where malformed input goes wrong. It
// returns the line of each value by its path.
func decodeIsolate(data []byte) (any, map[string]int, error) {
	if json.Valid(data) {
		return decodeJSONLines(data)
	}
	return parsePyLiteralLines(data)
}

// merge joins an included file into the one including it. Like luci, the
// including file's command wins; whichever file supplies the command gives
// the folder that files are relative to.
func merge(self, inc *File) *File {
	base := self
	if len(self.Command) == 0 && len(inc.Command) > 0 {
		base = inc
	}
	out := &File{Command: base.Command, Dir: base.Dir, ReadOnly: self.ReadOnly}
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
