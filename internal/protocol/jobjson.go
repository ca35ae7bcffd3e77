package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	jsonv2 "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bmatcuk/doublestar/v4"

	"github.com/dist-test/dist_test/internal/model"
)

// Limits on a submission that ParseTasks and the master enforce. The
// lengths are those of the database columns (migrations/mysql), in bytes,
// so that a submission either fits every database or is refused as invalid.
const (
	MaxDescription = 1000
	MaxRetries     = 100
	MaxGlobs       = 100
	MaxDockerImage = 500
	MaxTimeout     = 7 * 24 * time.Hour
	MaxUser        = 200 // a job's user
	MaxName        = 200 // a job's name
	// MaxRetryTaskIDs bounds the task ids of one retry request; retrying
	// every failed task needs none.
	MaxRetryTaskIDs = 10000
	// MaxGlobLength bounds one artifact pattern so that MaxGlobs of them,
	// JSON-encoded with every byte escaped, still fit the store's 64 KiB
	// column.
	MaxGlobLength = 100
	// MaxFailures bounds a job's max_failures (and the master's default):
	// more than any job has tasks, so a larger one means nothing.
	MaxFailures = 1_000_000
)

// ParseJobJSON parses a legacy job_json document, {"tasks": [task, ...]},
// and checks every task (see ParseTasks). maxTasks bounds the job's size (0 =
// no bound). Errors name the task and the field, and say what was expected.
func ParseJobJSON(data []byte, maxTasks int) ([]model.TaskSpec, error) {
	specs, _, _, err := ParseJobDocumentChecked(data, maxTasks)
	return specs, err
}

// ParseJobJSONChecked is ParseJobJSON, and also returns the fields of the
// tasks that nothing reads (see ParseTasksChecked).
func ParseJobJSONChecked(data []byte, maxTasks int) ([]model.TaskSpec, []UnknownField, error) {
	specs, _, unknown, err := ParseJobDocumentChecked(data, maxTasks)
	return specs, unknown, err
}

// JobOptions are the fields of a job besides its tasks, as in a job_json
// document or the body of POST /api/v1/jobs; nil when the job leaves one to
// the master's default.
type JobOptions struct {
	// MaxFailures: after this many tasks failed for good, the job starts
	// nothing more and its rest is canceled; 0 = no cap.
	MaxFailures *int `json:"max_failures,omitempty"`
	// Hedge: a straggling attempt gets a second run on an idle slot.
	Hedge *bool `json:"hedge,omitempty"`
}

// ParseJobDocument is ParseJobJSON with the job's options: "max_failures"
// and "hedge", which the original did not know (it ignored unknown fields,
// and so does this for any other).
func ParseJobDocument(data []byte, maxTasks int) ([]model.TaskSpec, JobOptions, error) {
	specs, opt, _, err := ParseJobDocumentChecked(data, maxTasks)
	return specs, opt, err
}

// ParseJobDocumentChecked is ParseJobDocument, and also returns the fields
// of the tasks that nothing reads (see ParseTasksChecked).
func ParseJobDocumentChecked(data []byte, maxTasks int) ([]model.TaskSpec, JobOptions, []UnknownField, error) {
	var doc struct {
		Tasks *json.RawMessage `json:"tasks"`
	}
	if err := strictObject(data, &doc); err != nil {
		return nil, JobOptions{}, nil, fmt.Errorf("job JSON: %w", err)
	}
	if doc.Tasks == nil {
		return nil, JobOptions{}, nil, fmt.Errorf(`job JSON: missing "tasks": expected {"tasks": [...]}`)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil {
		return nil, JobOptions{}, nil, fmt.Errorf("job JSON: malformed JSON: %v", err)
	}
	opt, err := ParseJobOptions(fields)
	if err != nil {
		return nil, opt, nil, fmt.Errorf("job JSON: %w", err)
	}
	specs, unknown, err := ParseTasksChecked(*doc.Tasks, maxTasks)
	return specs, opt, unknown, err
}

// ParseJobOptions reads and checks the options among a job's top-level
// fields.
func ParseJobOptions(fields map[string]json.RawMessage) (JobOptions, error) {
	var opt JobOptions
	if v, ok := fields["max_failures"]; ok && !isNull(v) {
		n, err := optionalInt(fields, "max_failures", MaxFailures)
		if err != nil {
			return opt, fmt.Errorf("%w (0 for no cap)", err)
		}
		opt.MaxFailures = &n
	}
	if v, ok := fields["hedge"]; ok && !isNull(v) {
		var b bool
		if json.Unmarshal(v, &b) != nil {
			return opt, fmt.Errorf(`"hedge" must be true or false, got %s`, clip(v))
		}
		opt.Hedge = &b
	}
	return opt, nil
}

// TaskFields are the fields of a task that ParseTasks reads.
var TaskFields = []string{"isolate_hash", "description", "timeout", "max_retries", "attempt",
	"artifact_archive_globs", "docker_image"}

// UnknownField is a field that tasks of a submission have and nothing
// reads: most likely a typo.
type UnknownField struct {
	Field string
	Near  string // the known field it most likely misspells, or ""
	First int    // the first task that has it
	Tasks int    // how many tasks have it
}

func (u UnknownField) String() string {
	s := fmt.Sprintf("unknown field %q", clipString(u.Field))
	if u.Near != "" {
		s += fmt.Sprintf(" (did you mean %q?)", u.Near)
	}
	if u.Tasks == 1 {
		return fmt.Sprintf("task %d: %s", u.First, s)
	}
	return fmt.Sprintf("%d tasks, the first task %d: %s", u.Tasks, u.First, s)
}

// maxUnknownFields bounds the distinct unknown fields reported: a job of
// 100,000 tasks each with a field of its own name says enough in a few.
const maxUnknownFields = 20

// ParseTasksChecked is ParseTasks, and also returns the fields of the tasks
// that nothing reads, each once, in the order they were first found, with
// the known field each most likely misspells.
func ParseTasksChecked(data json.RawMessage, maxTasks int) ([]model.TaskSpec, []UnknownField, error) {
	var unknown []UnknownField
	specs, err := parseTasks(data, maxTasks, func(task int, field string) {
		for i := range unknown {
			if unknown[i].Field == field {
				unknown[i].Tasks++
				return
			}
		}
		if len(unknown) < maxUnknownFields {
			unknown = append(unknown, UnknownField{Field: field, Near: model.Closest(field, TaskFields), First: task, Tasks: 1})
		}
	})
	if err != nil {
		return nil, nil, err
	}
	return specs, unknown, nil
}

// ParseTasks parses and checks a JSON array of legacy tasks:
// isolate_hash (required, hex SHA-1 or SHA-256), description (required),
// timeout (seconds, a number, 0 = none), max_retries, attempt,
// artifact_archive_globs and docker_image. Unknown fields are ignored, as the
// original did.
func ParseTasks(data json.RawMessage, maxTasks int) ([]model.TaskSpec, error) {
	return parseTasks(data, maxTasks, nil)
}

// parseTasks parses tasks; unknown, if not nil, hears of each field of a
// task that nothing reads.
func parseTasks(data json.RawMessage, maxTasks int, unknown func(task int, field string)) ([]model.TaskSpec, error) {
	// The tasks are decoded one at a time rather than into a slice of
	// them first: a job of 100,000 tasks is tens of megabytes, and each
	// step that holds all of it at once multiplies what a submission costs.
	// jsontext reads each task's bytes without decoding them; it lets
	// through what the slow path of parseTask takes as encoding/json
	// does (invalid UTF-8, a name twice), for it to read as before.
	dec := jsontext.NewDecoder(bytes.NewReader(data), jsontext.AllowInvalidUTF8(true), jsontext.AllowDuplicateNames(true))
	if tok, err := dec.ReadToken(); err != nil || tok.Kind() != '[' {
		if err == nil {
			err = fmt.Errorf("got %s", clip(data))
		}
		return nil, fmt.Errorf(`job JSON: "tasks" must be a list of task objects: %v`, err)
	}
	var specs []model.TaskSpec
	for i := 0; dec.PeekKind() != ']'; i++ {
		if maxTasks > 0 && i >= maxTasks {
			return nil, fmt.Errorf("job JSON: more tasks than this master accepts in one job (%d)", maxTasks)
		}
		r, err := dec.ReadValue()
		if err != nil {
			return nil, fmt.Errorf(`job JSON: "tasks" must be a list of task objects: %v`, err)
		}
		s, err := parseTask(json.RawMessage(r), i, unknown)
		if err != nil {
			return nil, fmt.Errorf("job JSON: task %d%s: %w", i, describe(json.RawMessage(r)), err)
		}
		specs = append(specs, s)
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, fmt.Errorf(`job JSON: "tasks" must be a list of task objects: %v`, err)
	}
	if _, err := dec.ReadToken(); err != io.EOF {
		return nil, fmt.Errorf(`job JSON: "tasks": unexpected data after the list`)
	}
	if len(specs) == 0 {
		return nil, fmt.Errorf("job JSON: the job has no tasks")
	}
	return specs, nil
}

// wireTask is a task as its JSON holds it, for parseTask's fast path.
type wireTask struct {
	IsolateHash          *string   `json:"isolate_hash"`
	Description          *string   `json:"description"`
	Timeout              *float64  `json:"timeout"`
	MaxRetries           *float64  `json:"max_retries"`
	Attempt              *float64  `json:"attempt"`
	ArtifactArchiveGlobs *[]string `json:"artifact_archive_globs"`
	DockerImage          *string   `json:"docker_image"`
}

// fastOptions make jsonv2 refuse whatever the slow path would read
// differently: unknown or duplicate members, invalid UTF-8. Names match
// exactly, as the slow path's map keys do.
var fastOptions = jsonv2.JoinOptions(jsonv2.RejectUnknownMembers(true))

func parseTask(data json.RawMessage, index int, unknown func(task int, field string)) (model.TaskSpec, error) {
	// The fast path decodes a well-formed task of known fields in one
	// pass; anything else (an unknown field, a wrong type, a null where a
	// value is required) takes the slow path, which says what is wrong.
	if s, ok := parseTaskFast(data); ok {
		return s, nil
	}
	return parseTaskSlow(data, index, unknown)
}

// parseTaskFast is parseTask's fast path: false for anything it does not
// take exactly as parseTaskSlow would (FuzzTaskFastPath holds it to that).
func parseTaskFast(data []byte) (model.TaskSpec, bool) {
	var w wireTask
	if jsonv2.Unmarshal(data, &w, fastOptions) != nil || w.IsolateHash == nil || w.Description == nil {
		return model.TaskSpec{}, false
	}
	return fastTask(w)
}

// parseTaskSlow reads a task field by field, and says what is wrong.
func parseTaskSlow(data json.RawMessage, index int, unknown func(task int, field string)) (model.TaskSpec, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(data, &fields); err != nil || fields == nil {
		return model.TaskSpec{}, fmt.Errorf("must be an object, got %s", clip(data))
	}
	if unknown != nil {
		var names []string
		for k := range fields {
			if !slices.Contains(TaskFields, k) {
				names = append(names, k)
			}
		}
		slices.Sort(names)
		for _, k := range names {
			unknown(index, k)
		}
	}
	var s model.TaskSpec
	var err error
	if s.IsolateHash, err = requiredString(fields, "isolate_hash"); err != nil {
		return s, err
	}
	s.IsolateHash = strings.ToLower(s.IsolateHash)
	if !IsDigest(s.IsolateHash) {
		return s, fmt.Errorf(`"isolate_hash" must be the hex SHA-1 (40 digits) or SHA-256 (64 digits) of an .isolated file, got %q`, clipString(s.IsolateHash))
	}
	if s.Description, err = requiredString(fields, "description"); err != nil {
		return s, err
	}
	if len(s.Description) > MaxDescription {
		return s, fmt.Errorf(`"description" is %d bytes long; at most %d are allowed`, len(s.Description), MaxDescription)
	}
	if strings.ContainsAny(s.Description, "\x00\n\r") {
		return s, fmt.Errorf(`"description" must not contain NUL or line breaks`)
	}
	if v, ok := fields["timeout"]; ok && !isNull(v) {
		var secs float64
		if json.Unmarshal(v, &secs) != nil || math.IsNaN(secs) || secs < 0 {
			return s, fmt.Errorf(`"timeout" must be a number of seconds (0 for none), got %s`, clip(v))
		}
		// Compared in seconds: in nanoseconds an absurd timeout overflows
		// into a negative duration, which would mean none at all.
		if secs > MaxTimeout.Seconds() {
			return s, fmt.Errorf(`"timeout" of %s seconds is longer than the maximum of %s (%.0f seconds)`, clip(v), MaxTimeout, MaxTimeout.Seconds())
		}
		// Rounded, so that a timeout sent on as seconds (Duration.Seconds)
		// reads back as the same Duration.
		s.Timeout = time.Duration(math.Round(secs * float64(time.Second)))
	}
	if s.MaxRetries, err = optionalInt(fields, "max_retries", MaxRetries); err != nil {
		return s, err
	}
	if s.Attempt, err = optionalInt(fields, "attempt", MaxRetries); err != nil {
		return s, err
	}
	if v, ok := fields["artifact_archive_globs"]; ok && !isNull(v) {
		if json.Unmarshal(v, &s.ArtifactGlobs) != nil {
			return s, fmt.Errorf(`"artifact_archive_globs" must be a list of strings, got %s`, clip(v))
		}
		if len(s.ArtifactGlobs) > MaxGlobs {
			return s, fmt.Errorf(`"artifact_archive_globs" has %d patterns; at most %d are allowed`, len(s.ArtifactGlobs), MaxGlobs)
		}
		for _, g := range s.ArtifactGlobs {
			if err := CheckGlob(g); err != nil {
				return s, fmt.Errorf(`"artifact_archive_globs": %w`, err)
			}
		}
	}
	if v, ok := fields["docker_image"]; ok && !isNull(v) {
		if json.Unmarshal(v, &s.DockerImage) != nil {
			return s, fmt.Errorf(`"docker_image" must be a string, got %s`, clip(v))
		}
		if len(s.DockerImage) > MaxDockerImage {
			return s, fmt.Errorf(`"docker_image" is %d bytes long; at most %d are allowed`, len(s.DockerImage), MaxDockerImage)
		}
		if s.DockerImage != "" {
			if err := CheckImage(s.DockerImage); err != nil {
				return s, fmt.Errorf(`"docker_image": %w`, err)
			}
		}
	}
	return s, nil
}

// imageName is what container runtimes take as an image reference
// (registry/name:tag@digest). It starts with a letter or digit, so that a
// slave's runtime can never read it as one of its options.
var imageName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$`)

// CheckImage checks a docker_image: a name a container runtime could
// pull, and nothing it could take for an option.
func CheckImage(s string) error {
	if !imageName.MatchString(s) || len(s) > MaxDockerImage {
		return fmt.Errorf("%q is not an image name: letters, digits and . _ / : @ + - only, starting with a letter or digit", clipString(s))
	}
	return nil
}

// CheckGlob checks an artifact pattern: at most MaxGlobLength bytes,
// relative to the task's folder, no ".." segment, valid doublestar syntax
// ("**" matches any number of folders).
func CheckGlob(g string) error {
	switch {
	case g == "":
		return fmt.Errorf("empty pattern")
	case len(g) > MaxGlobLength:
		return fmt.Errorf("pattern %q... is %d bytes long; at most %d are allowed", clipString(g), len(g), MaxGlobLength)
	case strings.HasPrefix(g, "/"):
		return fmt.Errorf("pattern %q is absolute; patterns are relative to the task's folder", g)
	case !doublestar.ValidatePattern(g):
		return fmt.Errorf("pattern %q is not a valid glob", g)
	}
	for _, seg := range strings.Split(g, "/") {
		if seg == ".." {
			return fmt.Errorf("pattern %q leads out of the task's folder with \"..\"", g)
		}
	}
	return nil
}

// IsDigest reports whether s is a lowercase hex SHA-1 or SHA-256 digest.
func IsDigest(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidJobID reports whether id can name a job: 1 to 200 characters,
// letters, digits and "._-:@+", not starting with a dot. The client builds
// ids as [<name>.]<user>.<unix time>.<pid>.
func ValidJobID(id string) bool {
	if id == "" || len(id) > 200 || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("._-:@+", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func strictObject(data []byte, v any) error {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		return fmt.Errorf("empty document")
	}
	if data[0] != '{' {
		return fmt.Errorf("expected a JSON object, got %s", clip(data))
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("malformed JSON: %v", err)
	}
	return nil
}

// fastTask checks a decoded task as parseTask does; false when it is not
// fine, for the slow path to say why.
func fastTask(w wireTask) (model.TaskSpec, bool) {
	s := model.TaskSpec{IsolateHash: strings.ToLower(*w.IsolateHash), Description: *w.Description}
	if !IsDigest(s.IsolateHash) || strings.TrimSpace(s.Description) == "" || len(s.Description) > MaxDescription ||
		strings.ContainsAny(s.Description, "\x00\n\r") {
		return s, false
	}
	if w.Timeout != nil {
		secs := *w.Timeout
		if math.IsNaN(secs) || secs < 0 || secs > MaxTimeout.Seconds() {
			return s, false
		}
		s.Timeout = time.Duration(math.Round(secs * float64(time.Second)))
	}
	whole := func(f *float64) (int, bool) {
		if f == nil {
			return 0, true
		}
		return int(*f), *f == math.Trunc(*f) && *f >= 0 && *f <= float64(MaxRetries)
	}
	var ok bool
	if s.MaxRetries, ok = whole(w.MaxRetries); !ok {
		return s, false
	}
	if s.Attempt, ok = whole(w.Attempt); !ok {
		return s, false
	}
	if w.ArtifactArchiveGlobs != nil {
		s.ArtifactGlobs = *w.ArtifactArchiveGlobs
		if len(s.ArtifactGlobs) > MaxGlobs {
			return s, false
		}
		for _, g := range s.ArtifactGlobs {
			if CheckGlob(g) != nil {
				return s, false
			}
		}
	}
	if w.DockerImage != nil && *w.DockerImage != "" {
		s.DockerImage = *w.DockerImage
		if CheckImage(s.DockerImage) != nil {
			return s, false
		}
	}
	return s, true
}

func requiredString(fields map[string]json.RawMessage, name string) (string, error) {
	v, ok := fields[name]
	if !ok || isNull(v) {
		return "", fmt.Errorf("missing %q", name)
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", fmt.Errorf("%q must be a string, got %s", name, clip(v))
	}
	if strings.TrimSpace(s) == "" {
		return "", fmt.Errorf("%q is empty", name)
	}
	return s, nil
}

func optionalInt(fields map[string]json.RawMessage, name string, max int) (int, error) {
	v, ok := fields[name]
	if !ok || isNull(v) {
		return 0, nil
	}
	var f float64
	if json.Unmarshal(v, &f) != nil || f != math.Trunc(f) || f < 0 || f > float64(max) {
		return 0, fmt.Errorf("%q must be a whole number from 0 to %d, got %s", name, max, clip(v))
	}
	return int(f), nil
}

func isNull(v json.RawMessage) bool { return string(bytes.TrimSpace(v)) == "null" }

// describe names a task by its description, when it has a readable one.
func describe(data json.RawMessage) string {
	var t struct {
		Description any `json:"description"`
	}
	if json.Unmarshal(data, &t) == nil {
		if d, ok := t.Description.(string); ok && d != "" {
			return fmt.Sprintf(" (%q)", clipString(d))
		}
	}
	return ""
}

func clip(v []byte) string { return clipString(string(bytes.TrimSpace(v))) }

func clipString(s string) string {
	if len(s) > 60 {
		return s[:57] + "..."
	}
	return s
}
