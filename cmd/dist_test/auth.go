package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/dist-test/dist_test/client"
	"github.com/dist-test/dist_test/client/cli"
	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/config"
	"github.com/dist-test/dist_test/internal/httpclient"
	"github.com/dist-test/dist_test/internal/linksign"
	"github.com/dist-test/dist_test/internal/store"
)

// newGuard builds a server's guard from the configuration, with the slave
// token given (the configured one, or local's own), and warns about
// passwords written in plain text.
func newGuard(cfg *config.Config, token string, log *slog.Logger) (*auth.Guard, error) {
	g, err := auth.New(auth.Config{
		Users: cfg.DistTest.Accounts, SlaveUsers: cfg.Master.SlaveAccounts, SlaveToken: token,
		AllowedIPs: cfg.DistTest.AllowedIPRanges, ReadAuth: cfg.Master.ReadAuth, Admins: cfg.Master.Admins,
		Logger: log,
	})
	if err != nil {
		return nil, &cli.ExitError{Code: 1, Err: fmt.Errorf("configuration: %w", err)}
	}
	if p := g.Plaintext(); len(p) > 0 {
		log.Warn("accounts with a plain-text password in the configuration: replace each by the hash `dist_test passwd USER` prints",
			"users", strings.Join(p, ", "))
	}
	return g, nil
}

// errNoSlaveCredentials is the refusal of a master that slaves could not
// authenticate to.
var errNoSlaveCredentials = errors.New("no slave credentials: set [slave] token (a shared secret of at least 16 characters, the same on the master and every slave) " +
	"or [master] slave_accounts (with [slave] user and password on each slave)")

// slaveCredentials are what a slave presents: the token, else its account.
func slaveCredentials(cfg *config.Config) httpclient.Credentials {
	if cfg.Slave.Token != "" {
		return httpclient.Credentials{Token: cfg.Slave.Token}
	}
	if cfg.Slave.User != "" && cfg.Slave.Password != "" {
		return httpclient.Credentials{User: cfg.Slave.User, Password: cfg.Slave.Password}
	}
	return httpclient.Credentials{}
}

// userCredentials are the account of [dist_test] user and password.
func userCredentials(cfg *config.Config) httpclient.Credentials {
	user, password := cfg.Account()
	return httpclient.Credentials{User: user, Password: password}
}

// masterClient is a client of the master for a slave. It never retries on
// its own: the slave decides per message (results wait and retry, starts
// give up at once, heartbeats are superseded by the next).
func masterClient(master string, cfg *config.Config, cred httpclient.Credentials) (*client.Client, error) {
	t, err := httpclient.Transport(cfg.DistTest.CAFile, 0)
	if err != nil {
		return nil, err
	}
	opts := []client.Option{client.WithHTTPClient(&http.Client{Transport: t}), client.WithRetry(1, 0, 0)}
	if cred.Token != "" {
		opts = append(opts, client.WithToken(cred.Token))
	} else {
		opts = append(opts, client.WithAuth(cred.User, cred.Password))
	}
	return client.New(master, opts...), nil
}

// casHTTPClient is the HTTP client of an isolate server, presenting cred,
// with enough connections for parallel transfers.
func casHTTPClient(server string, cfg *config.Config, cred httpclient.Credentials) (*http.Client, error) {
	return httpclient.New(server, cfg.DistTest.CAFile, cred, 64)
}

// randomToken is local's slave token: its slave is in the same process,
// so nothing needs configuring and nothing outside can guess it.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// linkKey is the key that signs output links, the same for every master
// of the store.
func linkKey(ctx context.Context, st store.Store) ([]byte, error) {
	fresh := make([]byte, linksign.KeySize)
	rand.Read(fresh)
	key, err := st.Secret(ctx, "output_link_key", fresh)
	if err != nil {
		return nil, fmt.Errorf("the key of output links: %w", err)
	}
	return key, nil
}

// tlsConfig loads a certificate to serve https with; nil when there is
// none to load.
func tlsConfig(section, cert, key string) (*tls.Config, error) {
	if cert == "" && key == "" {
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, &cli.ExitError{Code: 1, Err: fmt.Errorf("[%s] tls_cert and tls_key: %w", section, err)}
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}, nil
}

func passwdCmd(env *cli.Env) *cobra.Command {
	return &cobra.Command{
		Use:   "passwd USER",
		Short: "Print the line of an account for [dist_test] accounts",
		Long: `Read USER's password (from the terminal without echo, or the first line of
standard input) and print "USER": "HA1" for the JSON object of [dist_test]
accounts (or [master] slave_accounts). HA1 is the hex MD5 of
"USER:dist_test:PASSWORD", the hash HTTP Digest checks in the realm
"dist_test", so the configuration never holds the password itself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			user := args[0]
			if err := auth.CheckUser(user); err != nil {
				return &cli.ExitError{Code: 1, Err: err}
			}
			pw, err := readPassword(os.Stdin, env.Stderr, user)
			if err != nil {
				return &cli.ExitError{Code: 1, Err: err}
			}
			fmt.Fprintf(env.Stdout, "%q: %q\n", user, auth.HA1(user, pw))
			return nil
		},
	}
}

// readPassword asks twice on a terminal, without echo; otherwise it reads
// the first line of in.
func readPassword(in *os.File, prompt io.Writer, user string) (string, error) {
	if fd := int(in.Fd()); term.IsTerminal(fd) {
		fmt.Fprintf(prompt, "Password for %s: ", user)
		a, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		fmt.Fprint(prompt, "Again: ")
		b, err := term.ReadPassword(fd)
		fmt.Fprintln(prompt)
		if err != nil {
			return "", err
		}
		if string(a) != string(b) {
			return "", errors.New("the passwords differ")
		}
		return checkPassword(string(a))
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return checkPassword(strings.TrimRight(line, "\r\n"))
}

func checkPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("empty password")
	}
	return pw, nil
}
