package main

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// docs/architecture.md is the page a newcomer reads first, so it must not
// send them after code that is gone. Every name it gives in backticks is
// checked against the tree:
//
//   - a path (`server/feedpolicy.go`, `internal/lifecycle`) must exist;
//   - pkg.Name must be declared by package pkg (its last path element, or
//     its whole path: `server/api.New`), outside its tests;
//   - pkg.Type.Member must be a method, a field or an interface method of
//     that type.
//
// Its package map must list every package of the tree.
func TestArchitectureDocNamesExist(t *testing.T) {
	root := filepath.Join("..", "..")
	data, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md"))
	if err != nil {
		t.Fatal(err)
	}
	pkgs := scanPackages(t, root)
	byName := map[string][]*docPackage{}
	for _, p := range pkgs {
		byName[p.name] = append(byName[p.name], p)
	}
	spans := backticked(string(data))
	checked := 0
	for _, s := range spans {
		ok, applies := checkDocName(root, s, pkgs, byName)
		if !applies {
			continue
		}
		checked++
		if !ok {
			t.Errorf("docs/architecture.md names `%s`, which the code does not have", s)
		}
	}
	if checked < 50 {
		t.Errorf("only %d names were checked: has the page lost its names, or the test its way of finding them?", checked)
	}
	for dir := range pkgs {
		if !slices.Contains(spans, dir) {
			t.Errorf("the package map of docs/architecture.md does not list `%s`", dir)
		}
	}
}

// docPackage is what one package declares outside its tests.
type docPackage struct {
	name    string
	top     map[string]bool            // functions, types, variables, constants
	members map[string]map[string]bool // type -> methods, fields, interface methods
}

// scanPackages parses the non-test Go files of the module at root, by
// folder relative to root.
func scanPackages(t *testing.T, root string) map[string]*docPackage {
	t.Helper()
	pkgs := map[string]*docPackage{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != root && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "bin") {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil && path != root {
				return filepath.SkipDir // a module of its own (the example suite)
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		rel = filepath.ToSlash(rel)
		p := pkgs[rel]
		if p == nil {
			p = &docPackage{name: f.Name.Name, top: map[string]bool{}, members: map[string]map[string]bool{}}
			pkgs[rel] = p
		}
		member := func(typ, name string) {
			if p.members[typ] == nil {
				p.members[typ] = map[string]bool{}
			}
			p.members[typ][name] = true
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					p.top[d.Name.Name] = true
				} else {
					member(receiverType(d.Recv.List[0].Type), d.Name.Name)
				}
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.ValueSpec:
						for _, n := range s.Names {
							p.top[n.Name] = true
						}
					case *ast.TypeSpec:
						p.top[s.Name.Name] = true
						var fields *ast.FieldList
						switch tt := s.Type.(type) {
						case *ast.StructType:
							fields = tt.Fields
						case *ast.InterfaceType:
							fields = tt.Methods
						}
						if fields == nil {
							continue
						}
						for _, fl := range fields.List {
							for _, n := range fl.Names {
								member(s.Name.Name, n.Name)
							}
							if len(fl.Names) == 0 { // embedded
								member(s.Name.Name, receiverType(fl.Type))
							}
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pkgs
}

// receiverType is the name of a receiver's or an embedded field's type.
func receiverType(e ast.Expr) string {
	switch t := e.(type) {
	case *ast.StarExpr:
		return receiverType(t.X)
	case *ast.IndexExpr:
		return receiverType(t.X)
	case *ast.IndexListExpr:
		return receiverType(t.X)
	case *ast.SelectorExpr:
		return t.Sel.Name
	case *ast.Ident:
		return t.Name
	}
	return ""
}

var (
	fenced   = regexp.MustCompile("(?ms)^```.*?^```")
	inTicks  = regexp.MustCompile("`([^`\n]+)`")
	goName   = regexp.MustCompile(`^([a-z][a-z0-9_/]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\.([A-Za-z_][A-Za-z0-9_]*))?$`)
	pathLike = regexp.MustCompile(`^[A-Za-z0-9_./-]+$`)
)

// backticked returns the spans in backticks outside fenced blocks.
func backticked(md string) []string {
	var out []string
	for _, m := range inTicks.FindAllStringSubmatch(fenced.ReplaceAllString(md, ""), -1) {
		out = append(out, m[1])
	}
	return out
}

// checkDocName checks one span; applies is false for spans that are not
// names of the tree (commands, settings, endpoints).
func checkDocName(root, s string, pkgs map[string]*docPackage, byName map[string][]*docPackage) (ok, applies bool) {
	if !pathLike.MatchString(s) {
		return false, false
	}
	if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(s))); err == nil {
		return true, true
	}
	if strings.HasSuffix(s, ".go") || strings.HasSuffix(s, ".md") {
		return false, true // a file that is not there
	}
	m := goName.FindStringSubmatch(s)
	if m == nil {
		// A path with no name in it: it must exist.
		return false, strings.Contains(s, "/") && !strings.HasPrefix(s, "/")
	}
	var candidates []*docPackage
	if p := pkgs[m[1]]; p != nil {
		candidates = []*docPackage{p}
	} else if !strings.Contains(m[1], "/") {
		candidates = byName[m[1]]
	}
	if len(candidates) == 0 {
		// pkg/path.Name with no such folder is a stale name; a bare word
		// before a dot (a file name, a host) is not a name of the tree.
		return false, strings.Contains(m[1], "/")
	}
	for _, p := range candidates {
		if !p.top[m[2]] {
			continue
		}
		if m[3] == "" || p.members[m[2]][m[3]] {
			return true, true
		}
	}
	return false, true
}

// The README's "Running it yourself" walks a newcomer through files of
// examples/: each path it names must exist, and each test its job runs
// (`archive go PKG TEST`, `archive script NAME`) must be in the suite.
func TestReadmeWalkthroughFilesExist(t *testing.T) {
	root := filepath.Join("..", "..")
	data, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	start := strings.Index(text, "\n## Running it yourself\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Running it yourself"`)
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	paths := regexp.MustCompile(`examples/[A-Za-z0-9_./-]*[A-Za-z0-9_]`).FindAllString(section, -1)
	if len(paths) < 5 {
		t.Errorf("the walkthrough names %d files of examples/: %v", len(paths), paths)
	}
	for _, p := range paths {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("README.md's walkthrough names %s: %v", p, err)
		}
	}
	tests := regexp.MustCompile(`archive go (\w+) (\w+)`).FindAllStringSubmatch(section, -1)
	scriptsRun := regexp.MustCompile(`archive script (\w+)`).FindAllStringSubmatch(section, -1)
	if len(tests) == 0 || len(scriptsRun) == 0 {
		t.Fatalf("the walkthrough's job runs no Go test or no script of the suite")
	}
	for _, m := range tests {
		files, _ := filepath.Glob(filepath.Join(root, "examples", "suite", m[1], "*_test.go"))
		found := false
		for _, f := range files {
			b, _ := os.ReadFile(f)
			found = found || strings.Contains(string(b), "\nfunc "+m[2]+"(t *testing.T)")
		}
		if !found {
			t.Errorf("the walkthrough runs %s.%s, which examples/suite/%s does not have", m[1], m[2], m[1])
		}
	}
	for _, m := range scriptsRun {
		if _, err := os.Stat(filepath.Join(root, "examples", "scripts", m[1]+".sh")); err != nil {
			t.Errorf("the walkthrough runs the script %s: %v", m[1], err)
		}
	}
}
