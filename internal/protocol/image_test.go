package protocol

import (
	"strings"
	"testing"
)

// A docker_image reaches a slave's container runtime on its command line:
// anything but an image name (an option, spaces, control characters,
// shell syntax) is refused at submission, naming the field.
func TestDockerImageNames(t *testing.T) {
	for _, good := range []string{"", "busybox", "debian:12", "registry.example.com:5000/ci/debian-12_x:v1.2",
		"ubuntu@sha256:" + strings.Repeat("a", 64), "localhost/a+b"} {
		specs, err := ParseTasks([]byte(`[{"isolate_hash":"`+strings.Repeat("a", 40)+`","description":"t","docker_image":"`+good+`"}]`), 10)
		if err != nil || specs[0].DockerImage != good {
			t.Errorf("docker_image %q: %v, %+v", good, err, specs)
		}
	}
	for _, bad := range []string{"--privileged", "-v/:/host", "a b", "img;rm -rf /", "img\\nx", "img\\u0000", "$(id)",
		"é", ".hidden", "/abs", "img`x`", strings.Repeat("a", MaxDockerImage+1)} {
		_, err := ParseTasks([]byte(`[{"isolate_hash":"`+strings.Repeat("a", 40)+`","description":"t","docker_image":"`+bad+`"}]`), 10)
		if err == nil || !strings.Contains(err.Error(), `"docker_image"`) {
			t.Errorf("docker_image %q: %v; want it refused", bad, err)
		}
	}
}
