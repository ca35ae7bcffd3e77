package isolatefile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Values decoded from a .isolate file are found again, to say on which line
// they were written, by a path built as the interpreter names them in its
// messages: "variables.files[2]", "conditions[0][1].variables.command".

// valuePath is the path of the value under key in the dict at path.
func valuePath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath is the path of item i of the list at path.
func indexPath(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// lineOf is the line of the value at path, or of the nearest value holding
// it that was recorded; 0 when none was.
func lineOf(lines map[string]int, path string) int {
	for {
		if n, ok := lines[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i <= 0 {
			return lines[""]
		}
		path = path[:i]
	}
}

// lineIndex turns byte offsets into 1-based line numbers.
type lineIndex []int // offsets of the '\n' bytes

func newLineIndex(src []byte) lineIndex {
	var idx lineIndex
	for i, c := range src {
		if c == '\n' {
			idx = append(idx, i)
		}
	}
	return idx
}

func (idx lineIndex) line(offset int) int { return 1 + sort.SearchInts(idx, offset) }

// maxJSONDepth bounds nesting as the Python-literal parser does.
const maxJSONDepth = maxPyDepth

// decodeJSONLines decodes valid JSON (numbers as json.Number) and tells the
// line of every value by its path.
func decodeJSONLines(data []byte) (any, map[string]int, error) {
	d := &jsonLines{dec: json.NewDecoder(bytes.NewReader(data)), nl: newLineIndex(data), lines: map[string]int{}}
	d.dec.UseNumber()
	v, err := d.value("", 0)
	if err != nil {
		return nil, nil, err
	}
	return v, d.lines, nil
}

type jsonLines struct {
	dec   *json.Decoder
	nl    lineIndex
	lines map[string]int
}

func (d *jsonLines) value(path string, depth int) (any, error) {
	if depth > maxJSONDepth {
		return nil, errors.New("nested too deeply")
	}
	tok, err := d.dec.Token()
	if err != nil {
		return nil, err
	}
	// The offset is just past the token, which JSON never spreads over lines.
	d.lines[path] = d.nl.line(int(d.dec.InputOffset()) - 1)
	delim, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	switch delim {
	case '{':
		m := map[string]any{}
		for d.dec.More() {
			kt, err := d.dec.Token()
			if err != nil {
				return nil, err
			}
			key, ok := kt.(string)
			if !ok {
				return nil, fmt.Errorf("dict key %v is not a string", kt)
			}
			if m[key], err = d.value(valuePath(path, key), depth+1); err != nil {
				return nil, err
			}
		}
		_, err := d.dec.Token() // }
		return m, err
	case '[':
		list := []any{}
		for d.dec.More() {
			v, err := d.value(indexPath(path, len(list)), depth+1)
			if err != nil {
				return nil, err
			}
			list = append(list, v)
		}
		_, err := d.dec.Token() // ]
		return list, err
	}
	return nil, fmt.Errorf("unexpected %v", delim)
}
