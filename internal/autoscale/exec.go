package autoscale

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// Exec is a provider of shell commands, for any other cloud or for
// Kubernetes. Each template runs with sh -c after its placeholders are
// replaced by single-quoted values:
//   - ListCmd prints the fleet's machines, one hostname a line;
//   - GrowCmd adds machines: {n} is how many, {size} the fleet's size after;
//   - RemoveCmd deletes machines: {hosts} is their hostnames, separated by
//     spaces, each a word of its own.
type Exec struct {
	ListCmd, GrowCmd, RemoveCmd string
	// Env is added to the commands' environment.
	Env []string
}

// hostname is what a machine's name may be: letters, digits, dots,
// dashes and underscores, starting with a letter or digit. Anything else
// (a quote, a space, a $, a leading dash that a command would take for an
// option) is refused before it reaches a shell.
var hostname = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)

// ValidHostname reports whether h may be handed to a command.
func ValidHostname(h string) bool { return hostname.MatchString(h) }

// CheckTemplates refuses templates that lack their placeholder.
func (e *Exec) CheckTemplates() error {
	switch {
	case strings.TrimSpace(e.ListCmd) == "":
		return fmt.Errorf("exec_list is empty: the autoscaler must know the fleet's machines")
	case !strings.Contains(e.GrowCmd, "{n}") && !strings.Contains(e.GrowCmd, "{size}"):
		return fmt.Errorf("exec_grow %q has neither {n} nor {size}", e.GrowCmd)
	case !strings.Contains(e.RemoveCmd, "{hosts}"):
		return fmt.Errorf("exec_remove %q has no {hosts}", e.RemoveCmd)
	}
	return nil
}

// quote makes s one word of sh.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

func (e *Exec) runLine(ctx context.Context, line string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	cmd.Env = append(cmd.Environ(), e.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s: %w: %s", line, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// Instances implements Provider: the lines ListCmd prints. A line that is
// no valid hostname is an error: the command's output is not what the
// autoscaler expects, and acting on it could remove the wrong machines.
func (e *Exec) Instances(ctx context.Context) ([]string, error) {
	out, err := e.runLine(ctx, e.ListCmd)
	if err != nil {
		return nil, err
	}
	var hosts []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		h := strings.TrimSpace(sc.Text())
		if h == "" {
			continue
		}
		if !ValidHostname(h) {
			return nil, fmt.Errorf("exec_list printed %q, which is not a hostname", h)
		}
		hosts = append(hosts, h)
	}
	return hosts, nil
}

// Grow implements Provider.
func (e *Exec) Grow(ctx context.Context, n int) error {
	if n < 1 {
		return nil
	}
	hosts, err := e.Instances(ctx)
	if err != nil {
		return err
	}
	line := strings.NewReplacer("{n}", quote(strconv.Itoa(n)), "{size}", quote(strconv.Itoa(len(hosts)+n))).Replace(e.GrowCmd)
	_, err = e.runLine(ctx, line)
	return err
}

// Remove implements Provider.
func (e *Exec) Remove(ctx context.Context, hosts []string) error {
	if len(hosts) == 0 {
		return nil
	}
	words := make([]string, len(hosts))
	for i, h := range hosts {
		if !ValidHostname(h) {
			return fmt.Errorf("refusing to remove %q: not a hostname", h)
		}
		words[i] = quote(h)
	}
	_, err := e.runLine(ctx, strings.ReplaceAll(e.RemoveCmd, "{hosts}", strings.Join(words, " ")))
	return err
}
