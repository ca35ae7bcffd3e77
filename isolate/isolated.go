package isolate

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/dist-test/dist_test/internal/model"
)

// IsolatedVersion is the .isolated format version dist_test writes.
const IsolatedVersion = "1.4"

// Isolated is a .isolated manifest (luci format 1.4): the files of a task's
// input tree by digest, and the command to run in it. A task's isolate_hash
// is the digest of its encoded manifest.
type Isolated struct {
	Algo        Algo   // "algo"; SHA1 when empty
	Version     string // "version"; IsolatedVersion when empty
	Command     []string
	RelativeCwd string // folder to run Command in, relative to the tree's root
	// ReadOnly: 0 everything writable, 1 files read-only, 2 files and
	// folders read-only. nil when the manifest does not say.
	ReadOnly *int
	// Includes are digests of manifests whose files join this tree; files
	// listed here win over theirs.
	Includes []string
	Files    map[string]File // by slash-separated path relative to the root
}

// File is one entry of a manifest: a regular file (Digest, Size, Mode) or
// a symbolic link (Link).
type File struct {
	Digest string // "h"
	Size   int64  // "s"; -1 when the manifest does not say; 0 for a link
	Mode   int    // "m": permission bits; 0 when not recorded
	Link   string // "l": the link's target, relative to the link's folder
}

// IsLink reports whether f is a symbolic link.
func (f File) IsLink() bool { return f.Link != "" }

// Encode returns the manifest in the canonical form luci writes
// (json.dumps(sort_keys=True, separators=(',', ':')), ASCII only), so that
// the same tree always has the same digest, whichever tool archived it.
func (iso *Isolated) Encode() []byte {
	var b bytes.Buffer
	algo := iso.Algo
	if algo == "" {
		algo = SHA1
	}
	b.WriteString(`{"algo":`)
	writePyString(&b, string(algo))
	if len(iso.Command) > 0 {
		b.WriteString(`,"command":`)
		writePyStrings(&b, iso.Command)
	}
	b.WriteString(`,"files":{`)
	for i, p := range sortedKeys(iso.Files) {
		if i > 0 {
			b.WriteByte(',')
		}
		writePyString(&b, p)
		b.WriteByte(':')
		f := iso.Files[p]
		if f.IsLink() {
			b.WriteString(`{"l":`)
			writePyString(&b, f.Link)
			b.WriteByte('}')
			continue
		}
		b.WriteString(`{"h":`)
		writePyString(&b, f.Digest)
		if f.Mode != 0 {
			b.WriteString(`,"m":`)
			b.WriteString(strconv.Itoa(f.Mode))
		}
		if f.Size >= 0 {
			b.WriteString(`,"s":`)
			b.WriteString(strconv.FormatInt(f.Size, 10))
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	if len(iso.Includes) > 0 {
		b.WriteString(`,"includes":`)
		writePyStrings(&b, iso.Includes)
	}
	if iso.ReadOnly != nil {
		b.WriteString(`,"read_only":`)
		b.WriteString(strconv.Itoa(*iso.ReadOnly))
	}
	if iso.RelativeCwd != "" {
		b.WriteString(`,"relative_cwd":`)
		writePyString(&b, iso.RelativeCwd)
	}
	version := iso.Version
	if version == "" {
		version = IsolatedVersion
	}
	b.WriteString(`,"version":`)
	writePyString(&b, version)
	b.WriteByte('}')
	return b.Bytes()
}

func writePyStrings(b *bytes.Buffer, ss []string) {
	b.WriteByte('[')
	for i, s := range ss {
		if i > 0 {
			b.WriteByte(',')
		}
		writePyString(b, s)
	}
	b.WriteByte(']')
}

// writePyString quotes s as Python's json.dumps does with ensure_ascii:
// everything outside printable ASCII as \u escapes (surrogate pairs beyond
// the BMP), lowercase hex. Go's encoder differs (HTML escapes, raw UTF-8),
// and a single differing byte would change every digest.
func writePyString(b *bytes.Buffer, s string) {
	const hexDigits = "0123456789abcdef"
	u := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(hexDigits[(r>>shift)&0xf])
		}
	}
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r >= ' ' && r <= '~':
			b.WriteByte(byte(r))
		case r >= 0x10000:
			r -= 0x10000
			u(0xd800 | (r>>10)&0x3ff)
			u(0xdc00 | r&0x3ff)
		default:
			u(r)
		}
	}
	b.WriteByte('"')
}

// rawIsolated is the wire form, with pointers where absence matters.
type rawIsolated struct {
	Algo        *string            `json:"algo"`
	Version     *string            `json:"version"`
	Command     []string           `json:"command"`
	RelativeCwd string             `json:"relative_cwd"`
	ReadOnly    *int               `json:"read_only"`
	Includes    []string           `json:"includes"`
	Files       map[string]rawFile `json:"files"`
}

type rawFile struct {
	H *string `json:"h"`
	S *int64  `json:"s"`
	M *int    `json:"m"`
	L *string `json:"l"`
	T *string `json:"t"` // luci-go's file type; only "basic" is supported
}

// ParseIsolated decodes and validates a manifest. It refuses anything a
// fetch could not write safely inside its folder: absolute or unclean paths,
// links leading out of the tree, digests not of the manifest's algorithm.
// Errors wrap model.ErrInvalid and name the offending path.
func ParseIsolated(data []byte) (*Isolated, error) {
	var raw rawIsolated
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("manifest: %v: %w", err, model.ErrInvalid)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("manifest: data after the JSON object: %w", model.ErrInvalid)
	}
	iso := &Isolated{
		Algo:        SHA1,
		RelativeCwd: raw.RelativeCwd,
		ReadOnly:    raw.ReadOnly,
		Files:       make(map[string]File, len(raw.Files)),
	}
	// An empty list says nothing, as Encode writes it: nil, so that a
	// manifest reads the same before and after Encode.
	if len(raw.Command) > 0 {
		iso.Command = raw.Command
	}
	if len(raw.Includes) > 0 {
		iso.Includes = raw.Includes
	}
	if raw.Algo != nil {
		iso.Algo = Algo(*raw.Algo)
	}
	if raw.Version == nil {
		return nil, fmt.Errorf("manifest: no version: %w", model.ErrInvalid)
	}
	iso.Version = *raw.Version
	for p, rf := range raw.Files {
		f := File{Size: -1}
		if rf.L != nil {
			f.Size = 0 // a link has no size to be unknown
		}
		switch {
		case rf.T != nil && *rf.T != "basic":
			return nil, fmt.Errorf("manifest: %s: file type %q is not supported: %w", p, *rf.T, model.ErrInvalid)
		case rf.L != nil && (rf.H != nil || rf.S != nil || rf.M != nil):
			return nil, fmt.Errorf("manifest: %s: a link cannot have a digest, size or mode: %w", p, model.ErrInvalid)
		case rf.L != nil:
			if *rf.L == "" {
				return nil, fmt.Errorf("manifest: %s: empty link target: %w", p, model.ErrInvalid)
			}
			f.Link = *rf.L
		case rf.H == nil:
			return nil, fmt.Errorf("manifest: %s: neither a digest (h) nor a link (l): %w", p, model.ErrInvalid)
		default:
			f.Digest = *rf.H
			if rf.S != nil {
				f.Size = *rf.S
			}
			if rf.M != nil {
				f.Mode = *rf.M
			}
		}
		iso.Files[p] = f
	}
	if err := iso.Validate(); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return iso, nil
}

// Validate checks what ParseIsolated promises; archive runs it on what it
// is about to upload, so that it never produces a manifest fetch refuses.
func (iso *Isolated) Validate() error {
	if !iso.Algo.Valid() {
		return fmt.Errorf("unknown algo %q (want %s or %s): %w", clip(string(iso.Algo)), SHA1, SHA256, model.ErrInvalid)
	}
	if !strings.HasPrefix(iso.Version, "1.") {
		return fmt.Errorf("unsupported version %q (want 1.x): %w", clip(iso.Version), model.ErrInvalid)
	}
	if ro := iso.ReadOnly; ro != nil && (*ro < 0 || *ro > 2) {
		return fmt.Errorf("read_only %d: want 0, 1 or 2: %w", *ro, model.ErrInvalid)
	}
	if rc := iso.RelativeCwd; rc != "" && rc != "." {
		if err := checkPath(rc); err != nil {
			return fmt.Errorf("relative_cwd: %w", err)
		}
	}
	for _, d := range iso.Includes {
		if err := iso.Algo.check(d); err != nil {
			return fmt.Errorf("includes: %w", err)
		}
	}
	for _, p := range sortedKeys(iso.Files) {
		f := iso.Files[p]
		if err := checkPath(p); err != nil {
			return err
		}
		if f.IsLink() {
			if strings.ContainsAny(f.Link, "\\\x00") {
				return fmt.Errorf("link %s: target %q has a backslash or NUL: %w", p, clip(f.Link), model.ErrInvalid)
			}
			continue
		}
		if err := iso.Algo.check(f.Digest); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if f.Mode < 0 || f.Mode > 0o777 {
			return fmt.Errorf("%s: mode %#o: want permission bits within 0o777: %w", p, f.Mode, model.ErrInvalid)
		}
		if f.Size < -1 {
			return fmt.Errorf("%s: negative size %d: %w", p, f.Size, model.ErrInvalid)
		}
	}
	return CheckTree(iso.Files)
}

// checkPath accepts a clean, relative, slash-separated path.
func checkPath(p string) error {
	switch {
	case p == "":
		return fmt.Errorf("empty path: %w", model.ErrInvalid)
	case strings.ContainsAny(p, "\\\x00"):
		return fmt.Errorf("path %q: backslash or NUL in a path: %w", clip(p), model.ErrInvalid)
	case p[0] == '/':
		return fmt.Errorf("path %q: absolute path: %w", clip(p), model.ErrInvalid)
	}
	for seg := range strings.SplitSeq(p, "/") {
		switch seg {
		case "":
			return fmt.Errorf("path %q: empty path segment: %w", clip(p), model.ErrInvalid)
		case ".", "..":
			return fmt.Errorf("path %q: %q segment: %w", clip(p), seg, model.ErrInvalid)
		}
	}
	return nil
}

// MaxLinkHops bounds link resolution as the kernel does (ELOOP).
const MaxLinkHops = 40

// MaxManifestSize bounds the bytes of one .isolated that fetch downloads
// and the CAS reads to keep a tree.
const MaxManifestSize = 64 << 20

// CheckTree refuses trees that a fetch could not lay out inside its folder:
// a path below a file or a link (writing it would go through the link), or
// a link that, followed through the other links of the tree, leads out of
// it. Paths are assumed to have passed checkPath.
func CheckTree(files map[string]File) error {
	for _, p := range sortedKeys(files) {
		for i := strings.IndexByte(p, '/'); i >= 0; i = nextSlash(p, i) {
			if parent, ok := files[p[:i]]; ok {
				kind := "file"
				if parent.IsLink() {
					kind = "link"
				}
				return fmt.Errorf("path %s is inside %s, which is a %s: %w", p, p[:i], kind, model.ErrInvalid)
			}
		}
		f := files[p]
		if !f.IsLink() {
			continue
		}
		if path.IsAbs(f.Link) {
			return fmt.Errorf("link %s -> %s: absolute target, outside the tree: %w", p, clip(f.Link), model.ErrInvalid)
		}
		hops := 0
		if _, err := resolveIn(files, parentSegs(p), f.Link, &hops); err != nil {
			return fmt.Errorf("link %s -> %s: %w", p, clip(f.Link), err)
		}
	}
	return nil
}

func nextSlash(p string, i int) int {
	j := strings.IndexByte(p[i+1:], '/')
	if j < 0 {
		return -1
	}
	return i + 1 + j
}

func parentSegs(p string) []string {
	segs := strings.Split(p, "/")
	return segs[:len(segs)-1]
}

// resolveIn follows rel from the folder base the way the kernel would once
// the tree is written, through the tree's own links, and fails if that ever
// climbs above the root. Paths the tree does not hold cannot be followed
// further, so they end the walk harmlessly.
func resolveIn(files map[string]File, base []string, rel string, hops *int) ([]string, error) {
	cur := slices.Clone(base)
	for seg := range strings.SplitSeq(rel, "/") {
		switch seg {
		case "", ".":
			continue
		case "..":
			if len(cur) == 0 {
				return nil, fmt.Errorf("leads out of the tree: %w", model.ErrInvalid)
			}
			cur = cur[:len(cur)-1]
			continue
		}
		cur = append(cur, seg)
		f, ok := files[strings.Join(cur, "/")]
		if !ok || !f.IsLink() {
			continue
		}
		if *hops++; *hops > MaxLinkHops {
			return nil, fmt.Errorf("too many levels of links: %w", model.ErrInvalid)
		}
		if path.IsAbs(f.Link) {
			return nil, fmt.Errorf("goes through a link to an absolute path: %w", model.ErrInvalid)
		}
		var err error
		if cur, err = resolveIn(files, cur[:len(cur)-1], f.Link, hops); err != nil {
			return nil, err
		}
	}
	return cur, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
