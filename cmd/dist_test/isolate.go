package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/isolate"
)

func isolateCmd(env *cli.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "isolate",
		Short: "Upload task inputs to the isolate server",
	}
	cmd.AddCommand(archiveCmd(env))
	return cmd
}

func archiveCmd(env *cli.Env) *cobra.Command {
	var (
		isolatePath, isolatedOut, server string
		vars                             []string
		sha256                           bool
	)
	cmd := &cobra.Command{
		Use:   "archive --isolate FILE [--extra-variable K=V]...",
		Short: "Upload the files an .isolate file lists; print the manifest's hash",
		Long: `Read an .isolate file (JSON, or the Python-literal form Kudu and grind
write), hash the files it lists, upload those the isolate server does not
have yet, then upload the .isolated manifest. The manifest's hash, which a
task's "isolate_hash" names, is the last line of standard output.
The server is --isolate-server, else $ISOLATE_SERVER, else [isolate] server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if isolatePath == "" {
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("--isolate FILE is required")}
			}
			kv := make(map[string]string, len(vars))
			for _, v := range vars {
				k, val, ok := strings.Cut(v, "=")
				if !ok || k == "" {
					return &cli.ExitError{Code: 1, Err: fmt.Errorf("--extra-variable %q: expected KEY=VALUE", v)}
				}
				kv[k] = val
			}
			if server == "" {
				cfg, err := config.Load(*env.ConfigPath, env.Getenv)
				if err != nil {
					return err
				}
				server = cfg.Isolate.Server
			}
			if server == "" {
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("no isolate server: set --isolate-server, ISOLATE_SERVER or [isolate] server")}
			}
			algo := isolate.SHA1
			if sha256 {
				algo = isolate.SHA256
			}
			digest, st, err := isolate.Archive(cmd.Context(), isolate.NewCASClient(server, nil), isolate.ArchiveOptions{
				IsolatePath: isolatePath, Vars: kv, Algo: algo, IsolatedOut: isolatedOut,
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stderr, "archived %d files (%d bytes); uploaded %d (%d bytes)\n", st.Files, st.Bytes, st.Uploaded, st.UploadedBytes)
			fmt.Fprintln(env.Stdout, digest)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&isolatePath, "isolate", "i", "", ".isolate file to archive")
	f.StringVarP(&isolatedOut, "isolated", "s", "", "also write the .isolated manifest to this file")
	f.StringArrayVar(&vars, "extra-variable", nil, "KEY=VALUE substituted for <(KEY) in the .isolate file (repeatable)")
	f.StringVarP(&server, "isolate-server", "I", "", "URL of the isolate server")
	f.BoolVar(&sha256, "sha256", false, "hash with SHA-256 instead of SHA-1")
	return cmd
}
