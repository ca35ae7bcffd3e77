package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client/cli"
)

// buildVersion is the version the build was stamped with (make, the
// Dockerfile: -X main.version), else the one Go records from the module
// or its git checkout, else "dev".
func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return version
}

// healthcheckCmd is what container healthchecks and systemd's
// ExecStartPost run, since the images have no curl: it asks a URL
// (/readyz, /healthz) until it answers 200.
func healthcheckCmd(env *cli.Env) *cobra.Command {
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "healthcheck URL",
		Short: "Exit 0 once URL (a server's /readyz or /healthz) answers 200",
		Long: `Ask URL, e.g. http://127.0.0.1:8081/readyz, and exit 0 when it answers 200;
else print its answer and exit 1. With --wait, ask again every second until
it answers 200 or the time is up: systemd's ExecStartPost uses it so that a
unit is started once its server is ready.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			url := args[0]
			if !strings.HasPrefix(url, "http://") && !strings.HasPrefix(url, "https://") {
				return &cli.ExitError{Code: 2, Err: fmt.Errorf("%q: want an http:// or https:// URL", url)}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), wait)
			defer cancel()
			for {
				msg, err := probeURL(cmd.Context(), url)
				if err == nil {
					return nil
				}
				select {
				case <-ctx.Done():
					fmt.Fprintf(env.Stderr, "%s: %v\n%s", url, err, msg)
					return &cli.ExitError{Code: 1}
				case <-time.After(time.Second):
				}
			}
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 0, "keep asking for this long")
	return cmd
}

// probeURL asks url once, within 5 s; an answer other than 200 is an
// error, with the start of its body.
func probeURL(ctx context.Context, url string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode != http.StatusOK {
		return string(body), fmt.Errorf("%s", resp.Status)
	}
	return string(body), nil
}
