package main

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/archive"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/isolatefile"
)

func isolateCmd(env *cli.Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "isolate",
		Short: "Upload task inputs to the isolate server",
	}
	cmd.AddCommand(archiveCmd(env), batchArchiveCmd(env))
	return cmd
}

// casClient is a client of the server a command talks to: its flag, else
// $ISOLATE_SERVER, else [isolate] server. It logs in with the account of
// [dist_test] user and password, as the other client commands do.
func casClient(env *cli.Env, flag string) (*cas.Client, error) {
	cfg, err := config.Load(*env.ConfigPath, env.Getenv)
	if err != nil {
		return nil, err
	}
	server := flag
	if server == "" {
		server = cfg.Isolate.Server
	}
	if server == "" {
		return nil, &cli.ExitError{Code: 1, Err: errors.New("no isolate server: set --isolate-server, ISOLATE_SERVER or [isolate] server")}
	}
	hc, err := casHTTPClient(server, cfg, userCredentials(cfg))
	if err != nil {
		return nil, err
	}
	return cas.NewClient(server, hc), nil
}

func archiveCmd(env *cli.Env) *cobra.Command {
	var (
		isolatePath, isolatedOut, server string
		extra, paths, configs            []string
		sha256                           bool
		concurrency                      int
	)
	cmd := &cobra.Command{
		Use:   "archive --isolate FILE [--extra-variable K=V]...",
		Short: "Upload the files an .isolate file lists; print the manifest's hash",
		Long: `Read an .isolate file (JSON, or the Python-literal form Kudu and grind
write), hash the files it lists, upload those the isolate server does not
have yet, then upload the .isolated manifest. The manifest's hash, which a
task's "isolate_hash" names, is the last line of standard output.
Conditions in the file test --config-variable values (and --extra-variable
ones); OS is "linux" unless given. A --path-variable is a folder relative
to the current one, rebased onto the .isolate file's folder.
The server is --isolate-server, else $ISOLATE_SERVER, else [isolate] server.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if isolatePath == "" {
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("--isolate FILE is required")}
			}
			var vars isolatefile.Variables
			for _, set := range []struct {
				flag string
				vals []string
				m    *map[string]string
			}{{"--extra-variable", extra, &vars.Extra}, {"--path-variable", paths, &vars.Path}, {"--config-variable", configs, &vars.Config}} {
				for _, v := range set.vals {
					k, val, ok := strings.Cut(v, "=")
					if !ok || k == "" {
						return &cli.ExitError{Code: 1, Err: fmt.Errorf("%s %q: expected KEY=VALUE", set.flag, v)}
					}
					if *set.m == nil {
						*set.m = map[string]string{}
					}
					(*set.m)[k] = val
				}
			}
			cas, err := casClient(env, server)
			if err != nil {
				return err
			}
			algo := algoFlag(sha256)
			digest, st, err := archive.Archive(cmd.Context(), cas, archive.Options{
				IsolatePath: isolatePath, Vars: vars, Algo: algo, IsolatedOut: isolatedOut, Concurrency: concurrency,
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
	f.StringArrayVar(&extra, "extra-variable", nil, "KEY=VALUE substituted for <(KEY) in the .isolate file (repeatable)")
	f.StringArrayVar(&paths, "path-variable", nil, "KEY=FOLDER, relative to the current folder, substituted for <(KEY) (repeatable)")
	f.StringArrayVar(&configs, "config-variable", nil, "KEY=VALUE that conditions test, such as OS=linux (repeatable)")
	f.StringVarP(&server, "isolate-server", "I", "", "URL of the isolate server")
	f.BoolVar(&sha256, "sha256", false, "hash with SHA-256 instead of SHA-1")
	f.IntVar(&concurrency, "concurrency", 2*runtime.NumCPU(), "files hashed or uploaded at once")
	return cmd
}

func batchArchiveCmd(env *cli.Env) *cobra.Command {
	var (
		dumpJSON, server string
		sha256           bool
		concurrency      int
	)
	cmd := &cobra.Command{
		Use:   "batcharchive [-dump-json FILE] [-isolate-server URL] [--] FILE.isolated.gen.json...",
		Short: "Archive many trees at once, as luci's isolate batcharchive does",
		Long: `Archive the trees that *.isolated.gen.json files describe, as Kudu's and
grind's builds write them:
  {"version": 1, "dir": FOLDER, "name": NAME,
   "args": ["-i", "X.isolate", "-s", "X.isolated", "--extra-variable", "K=V", ...]}
Files shared by several trees are hashed and uploaded once. Each tree's
.isolated manifest is written to its -s path and uploaded; "<hash>\t<name>"
is printed for each on standard output, sorted by name, and a summary on
standard error. -dump-json writes {"name": "hash", ...}.
Options also take one dash (-dump-json=FILE), as luci's isolate does.
A gen file in error is named and makes the command fail (exit 1) once the
others are archived.`,
		// Parsed by hand: luci's callers write Go-style -long-flags.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			cmd.InheritedFlags() // merges --config and the other global flags in
			if err := cmd.Flags().Parse(goStyleFlags(args)); err != nil {
				return &cli.ExitError{Code: 1, Err: err}
			}
			if help, _ := cmd.Flags().GetBool("help"); help {
				return cmd.Help()
			}
			gens := cmd.Flags().Args()
			if len(gens) == 0 {
				return &cli.ExitError{Code: 1, Err: errors.New("no .isolated.gen.json files given")}
			}
			cas, err := casClient(env, server)
			if err != nil {
				return err
			}
			algo := algoFlag(sha256)
			digests, st, err := archive.Batch(cmd.Context(), cas, gens,
				archive.BatchOptions{Algo: algo, Concurrency: concurrency})
			fmt.Fprint(env.Stdout, archive.DigestLines(digests))
			if dumpJSON != "" && digests != nil {
				// The trees archived, even when others failed.
				err = errors.Join(err, archive.WriteDumpJSON(dumpJSON, digests))
			}
			fmt.Fprintln(env.Stderr, st.Summary())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dumpJSON, "dump-json", "", `write {"name": "hash", ...} of the archived trees to this file`)
	f.StringVarP(&server, "isolate-server", "I", "", "URL of the isolate server (default $ISOLATE_SERVER or [isolate] server)")
	f.BoolVar(&sha256, "sha256", false, "hash with SHA-256 instead of SHA-1")
	f.IntVar(&concurrency, "concurrency", 2*runtime.NumCPU(), "files hashed or uploaded at once")
	return cmd
}

// goStyleFlags turns Go-style long options (-dump-json=F) into the GNU
// form (--dump-json=F) that the flag parser knows; one-letter options
// (-I URL) and everything after "--" stay as they are.
func goStyleFlags(args []string) []string {
	out := make([]string, 0, len(args))
	for i, a := range args {
		if a == "--" {
			return append(out, args[i:]...)
		}
		name, _, _ := strings.Cut(a, "=")
		if strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "--") && len(name) > 2 {
			a = "-" + a
		}
		out = append(out, a)
	}
	return out
}

// algoFlag is the digest algorithm the --sha256 flag selects.
func algoFlag(sha256 bool) isolate.Algo {
	if sha256 {
		return isolate.SHA256
	}
	return isolate.SHA1
}
