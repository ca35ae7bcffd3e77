package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseTasks10k parses the tasks of a 10,000-task submission as
// the API does (unknown fields looked for), the first step of every
// submission and so of its time to first start.
func BenchmarkParseTasks10k(b *testing.B) {
	var parts []string
	for i := range 10_000 {
		parts = append(parts, fmt.Sprintf(`{"isolate_hash": "0123456789abcdef0123456789abcdef01234567", "description": "org.example.TestCase%05d", "timeout": 600, "max_retries": 2, "artifact_archive_globs": ["**/*.xml"]}`, i))
	}
	data := json.RawMessage("[" + strings.Join(parts, ",") + "]")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, _, err := ParseTasksChecked(data, 100_000); err != nil {
			b.Fatal(err)
		}
	}
}
