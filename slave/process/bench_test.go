package process

import (
	"github.com/dist-test/dist_test/internal/testenv"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkRun measures Run of /bin/true: plain, and with a Tag, which
// makes Run kill what the command may have left that escaped its group.
func BenchmarkRun(b *testing.B) {
	for _, tagged := range []bool{false, true} {
		name := "plain"
		if tagged {
			name = "tagged"
		}
		b.Run(name, func(b *testing.B) {
			dir := b.TempDir()
			c := Command{Args: []string{"/bin/true"}, Dir: dir,
				Stdout: filepath.Join(dir, "stdout"), Stderr: filepath.Join(dir, "stderr")}
			cpu := testenv.CPUTimeWithChildren()
			for i := range b.N {
				if tagged {
					c.Tag = "bench-" + strconv.Itoa(i)
				}
				if _, err := Run(b.Context(), c); err != nil {
					b.Fatal(err)
				}
			}
			testenv.ReportChildCPU(b, cpu)
		})
	}
}
