// Package health answers the probes of process supervisors (systemd,
// Docker, Kubernetes): /healthz says the process serves, /readyz that the
// backends it needs answer.
package health

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Check is one backend's probe: Probe returns nil when it answers.
type Check struct {
	Name  string // what the 503 names: database, queue, blobs
	Probe func(context.Context) error
}

// Timeout is how long every probe of a /readyz may take together: a
// backend slower than that is not ready. Kubernetes' probes give up after
// 1 s by default; set their timeoutSeconds above this.
const Timeout = 3 * time.Second

// Alive answers /healthz: the process is up and serves HTTP. It checks no
// backend, so that a database outage does not have every master restarted.
func Alive(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write([]byte("ok\n"))
}

// Ready answers /readyz: 200 when every check answers within Timeout, else
// 503 naming the ones that failed. The body names the backends only; why
// they failed, which may say where they are, goes to the log.
func Ready(log *slog.Logger, checks ...Check) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), Timeout)
		defer cancel()
		errs := make([]error, len(checks))
		var wg sync.WaitGroup
		for i, c := range checks {
			wg.Go(func() { errs[i] = probe(ctx, c) })
		}
		wg.Wait()
		var failed []string
		var b strings.Builder
		for i, c := range checks {
			if errs[i] != nil {
				failed = append(failed, c.Name)
				log.WarnContext(r.Context(), "not ready", "backend", c.Name, "err", errs[i])
				fmt.Fprintf(&b, "%s: failed\n", c.Name)
			} else {
				fmt.Fprintf(&b, "%s: ok\n", c.Name)
			}
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if len(failed) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready: %s\n%s", strings.Join(failed, ", "), b.String())
			return
		}
		fmt.Fprintf(w, "ready\n%s", b.String())
	}
}

// probe runs c, and gives up at ctx's deadline even if the probe does not:
// a driver that ignores its context must not hold the answer.
func probe(ctx context.Context, c Check) error {
	done := make(chan error, 1)
	go func() { done <- c.Probe(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer within %v", Timeout)
	}
}
