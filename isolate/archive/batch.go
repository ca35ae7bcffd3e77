package archive

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/isolatefile"
)

// GenJSONVersion is the version of *.isolated.gen.json files dist_test reads.
const GenJSONVersion = 1

// BatchOptions says how Batch works.
type BatchOptions struct {
	Algo        isolate.Algo // isolate.SHA1 when empty
	Concurrency int          // files hashed or uploaded at once; 2 per CPU when 0
}

// Batch does what luci's `isolate batcharchive` does: it archives
// the trees that *.isolated.gen.json files describe, as Kudu's and grind's
// builds write them:
//
//	{"version": 1, "dir": "/abs/folder", "name": "foo-test.1/1",
//	 "args": ["-i", "foo.isolate", "-s", "foo.isolated",
//	          "--extra-variable", "K=V", "--path-variable", "K", "V", ...]}
//
// Paths in args are relative to dir. Files the trees share are hashed,
// queried and uploaded once. Each tree's manifest is written to its -s path
// and uploaded. It returns the manifest digest of each tree by name (the
// gen file's "name", else the manifest's file name without ".isolated").
//
// A gen file in error (malformed, a bad .isolate file, a missing input)
// does not stop the others: the error, which names the gen file, comes
// back with the digests of the trees that were archived. Errors that stop
// everything (the server failing) come back alone.
func Batch(ctx context.Context, c CAS, gens []string, opt BatchOptions) (map[string]string, Stats, error) {
	a, err := newArchiver(c, opt.Algo, opt.Concurrency)
	if err != nil {
		return nil, Stats{}, fmt.Errorf("batcharchive: %w", err)
	}
	return a.batch(ctx, gens)
}

func (a *archiver) batch(ctx context.Context, gens []string) (map[string]string, Stats, error) {
	var (
		errs   []error
		jobs   []*archiveJob
		names  []string
		genOf  = map[*archiveJob]string{}
		byName = map[string]string{} // gen file by name
	)
	for _, g := range gens {
		j, name, err := readGen(g)
		if err == nil && byName[name] != "" {
			err = fmt.Errorf("name %q is also the name of %s: names must differ", name, byName[name])
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", g, err))
			continue
		}
		byName[name] = g
		jobs, names = append(jobs, j), append(names, name)
		genOf[j] = g
	}
	st, err := a.run(ctx, jobs)
	if err != nil {
		return nil, st, fmt.Errorf("batcharchive: %w", err)
	}
	digests := make(map[string]string, len(jobs))
	for i, j := range jobs {
		if j.err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", genOf[j], j.err))
			continue
		}
		digests[names[i]] = j.digest
	}
	return digests, st, errors.Join(errs...)
}

// genFile is a *.isolated.gen.json file. Unknown keys are ignored, as luci
// does.
type genFile struct {
	Version *int     `json:"version"`
	Dir     string   `json:"dir"`
	Args    []string `json:"args"`
	Name    string   `json:"name"`
}

// readGen reads a gen file into a job and its name.
func readGen(path string) (*archiveJob, string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var g genFile
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&g); err != nil {
		return nil, "", fmt.Errorf("not a gen.json file: %w", err)
	}
	if g.Version == nil || *g.Version != GenJSONVersion {
		v := "none"
		if g.Version != nil {
			v = fmt.Sprint(*g.Version)
		}
		return nil, "", fmt.Errorf("version %s: want \"version\": %d", v, GenJSONVersion)
	}
	if g.Dir == "" {
		return nil, "", errors.New(`no "dir": want the folder the paths in "args" are relative to`)
	}
	dir, err := filepath.Abs(g.Dir)
	if err != nil {
		return nil, "", err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		return nil, "", fmt.Errorf("dir %s is not a folder", g.Dir)
	}
	j, err := parseArchiveArgs(g.Args, dir)
	if err != nil {
		return nil, "", fmt.Errorf("args: %w", err)
	}
	name := g.Name
	if name == "" {
		name = strings.TrimSuffix(filepath.Base(j.out), ".isolated")
	}
	return j, name, nil
}

// validVariable is luci's pattern for variable names.
var validVariable = regexp.MustCompile(`^[A-Za-z_][A-Za-z_0-9]*$`)

// parseArchiveArgs reads the arguments of one luci `isolate archive`, as a
// gen file holds them, relative to dir. Options take one or two dashes and
// their value after "=" or as the next argument; a variable is K=V or K V.
func parseArchiveArgs(args []string, dir string) (*archiveJob, error) {
	j := &archiveJob{vars: isolatefile.Variables{Cwd: dir}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if !strings.HasPrefix(arg, "-") || arg == "-" || arg == "--" {
			return nil, fmt.Errorf("unexpected argument %q: only options are accepted", arg)
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-"), "=")
		next := func() (string, error) {
			if hasVal {
				hasVal = false
				return val, nil
			}
			if i+1 >= len(args) {
				return "", fmt.Errorf("%s needs a value", arg)
			}
			i++
			return args[i], nil
		}
		var err error
		switch name {
		case "i", "isolate":
			j.isolate, err = next()
		case "s", "isolated":
			j.out, err = next()
		case "extra-variable", "path-variable", "config-variable":
			var k, v string
			if k, err = next(); err != nil {
				break
			}
			k, v, hasEq := strings.Cut(k, "=")
			if !hasEq {
				if v, err = next(); err != nil {
					return nil, fmt.Errorf("%s %s needs a value: write %s %s=VALUE", arg, k, arg, k)
				}
			}
			if !validVariable.MatchString(k) {
				return nil, fmt.Errorf("%s %q: a variable name is letters, digits and _", arg, k)
			}
			setVar(&j.vars, name, k, v)
		default:
			return nil, fmt.Errorf("option %q is not supported (supported: -i/--isolate, -s/--isolated, "+
				"--extra-variable, --path-variable, --config-variable)", arg)
		}
		if err != nil {
			return nil, err
		}
	}
	if j.isolate == "" {
		return nil, errors.New("no -i/--isolate FILE.isolate")
	}
	if j.out == "" {
		return nil, errors.New("no -s/--isolated FILE.isolated")
	}
	if !filepath.IsAbs(j.isolate) {
		j.isolate = filepath.Join(dir, j.isolate)
	}
	if !filepath.IsAbs(j.out) {
		j.out = filepath.Join(dir, j.out)
	}
	return j, nil
}

// setVar sets variable k of the kind a luci option names.
func setVar(v *isolatefile.Variables, option, k, val string) {
	var m *map[string]string
	switch option {
	case "extra-variable":
		m = &v.Extra
	case "path-variable":
		m = &v.Path
	default:
		m = &v.Config
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = val
}

// Summary is the line batcharchive ends with.
func (st Stats) Summary() string {
	return fmt.Sprintf("archived %d tests: %d files, %d bytes; uploaded %d items, %d bytes; %d already on the server (%d bytes)",
		st.Tests, st.Files, st.Bytes, st.Uploaded, st.UploadedBytes, st.Hits, st.HitBytes)
}

// DigestLines lists digests as batcharchive prints them: "<digest>\t<name>"
// per line, sorted by name.
func DigestLines(digests map[string]string) string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(digests)) {
		fmt.Fprintf(&b, "%s\t%s\n", digests[name], name)
	}
	return b.String()
}

// WriteDumpJSON writes {"name": "digest", ...}, what -dump-json asks for
// and Kudu's dist_test.py reads.
func WriteDumpJSON(file string, digests map[string]string) error {
	if digests == nil {
		digests = map[string]string{}
	}
	data, err := json.MarshalIndent(digests, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(file, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("dump-json: %w", err)
	}
	return nil
}
