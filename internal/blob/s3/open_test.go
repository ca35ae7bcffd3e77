package s3_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/blob/s3"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/testenv"
)

// closedPort returns the URL of a local port where nothing listens.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

// hangingUp returns the URL of a local server that closes every
// connection as soon as it is made.
func hangingUp(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
	})
	return "http://" + l.Addr().String()
}

func TestOpenErrors(t *testing.T) {
	srv := testenv.S3(t)
	bucket, _ := newBucket(t, srv)
	nowhere := closedPort(t)
	hangup := hangingUp(t)

	tests := []struct {
		name        string
		edit        func(*s3.Config)
		unavailable bool
		want        []string // in the message
	}{
		{"nothing listening", func(c *s3.Config) { c.Endpoint = nowhere }, true,
			[]string{"unreachable", nowhere, bucket}},
		{"connection closed at once", func(c *s3.Config) { c.Endpoint = hangup }, true,
			[]string{"unreachable", hangup, bucket}},
		{"wrong secret key", func(c *s3.Config) { c.SecretKey = "not-the-secret" }, false,
			[]string{"refused the credentials", srv.Endpoint, bucket}},
		{"unknown access key", func(c *s3.Config) { c.AccessKey = "nobody" }, false,
			[]string{"refused the credentials", srv.Endpoint, bucket}},
		{"missing bucket", func(c *s3.Config) { c.Bucket = testenv.Bucket() }, false,
			[]string{"does not exist", srv.Endpoint}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := config(t, srv, bucket)
			tc.edit(&cfg)
			st, err := s3.Open(t.Context(), cfg)
			if err == nil {
				t.Fatalf("Open succeeded (%v), want an error", st)
			}
			msg := err.Error()
			t.Log(msg)
			for _, w := range append(tc.want, cfg.Bucket) {
				if !strings.Contains(msg, w) {
					t.Errorf("message %q does not say %q", msg, w)
				}
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("message %q has more than one line", msg)
			}
			if got := errors.Is(err, model.ErrUnavailable); got != tc.unavailable {
				t.Errorf("errors.Is(err, ErrUnavailable) = %v, want %v", got, tc.unavailable)
			}
		})
	}
}

// TestConfigErrors checks that a bad configuration is refused before any
// request is sent (the endpoint has nothing listening).
func TestConfigErrors(t *testing.T) {
	nowhere := closedPort(t)
	tests := []struct {
		name string
		cfg  s3.Config
		want string
	}{
		{"no bucket", s3.Config{Endpoint: nowhere}, "no bucket"},
		{"endpoint without scheme", s3.Config{Bucket: "b", Endpoint: "127.0.0.1:7070"}, "want a URL"},
		{"endpoint of another scheme", s3.Config{Bucket: "b", Endpoint: "ftp://127.0.0.1"}, "want a URL"},
		{"access key alone", s3.Config{Bucket: "b", Endpoint: nowhere, AccessKey: "k"}, "both"},
		{"secret key alone", s3.Config{Bucket: "b", Endpoint: nowhere, SecretKey: "s"}, "both"},
		{"part size under 5 MiB", s3.Config{Bucket: "b", Endpoint: nowhere, PartSize: 1 << 20}, "part size"},
		{"negative concurrency", s3.Config{Bucket: "b", Endpoint: nowhere, Concurrency: -1}, "concurrency"},
		{"prefix climbing out", s3.Config{Bucket: "b", Endpoint: nowhere, Prefix: "../x/"}, "prefix"},
		{"prefix with a space", s3.Config{Bucket: "b", Endpoint: nowhere, Prefix: "a b/"}, "prefix"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s3.Open(t.Context(), tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open = %v, want an error about %q", err, tc.want)
			}
			if errors.Is(err, model.ErrUnavailable) {
				t.Fatalf("Open = %v: a configuration error taken for an outage", err)
			}
		})
	}
}

// TestUnavailable puts a proxy between the store and the S3 server, then
// makes the proxy answer 503 and then stop, as S3 does in an outage: every
// operation must fail with model.ErrUnavailable, which the master answers
// with 503, and never with ErrNotFound.
func TestUnavailable(t *testing.T) {
	srv := testenv.S3(t)
	bucket, _ := newBucket(t, srv)
	target, err := url.Parse(srv.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var down atomic.Bool
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`<?xml version="1.0" encoding="UTF-8"?><Error><Code>ServiceUnavailable</Code><Message>down for the test</Message></Error>`))
			return
		}
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()

	cfg := config(t, srv, bucket)
	cfg.Endpoint = proxy.URL
	st := open(t, cfg)
	if err := st.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatalf("Put through the proxy: %v", err)
	}

	ops := map[string]func(ctx context.Context) error{
		"Put": func(ctx context.Context) error { return st.Put(ctx, "k", strings.NewReader("v"), 1) },
		"Put of unknown size": func(ctx context.Context) error {
			return st.Put(ctx, "k", strings.NewReader("v"), -1)
		},
		"Get": func(ctx context.Context) error {
			rc, _, err := st.Get(ctx, "k")
			if err == nil {
				rc.Close()
			}
			return err
		},
		"Stat":   func(ctx context.Context) error { _, err := st.Stat(ctx, "k"); return err },
		"Delete": func(ctx context.Context) error { return st.Delete(ctx, "k") },
	}
	check := func(t *testing.T) {
		for name, op := range ops {
			err := op(t.Context())
			if !errors.Is(err, model.ErrUnavailable) || errors.Is(err, blob.ErrNotFound) {
				t.Errorf("%s = %v, want ErrUnavailable", name, err)
			}
		}
	}
	t.Run("503", func(t *testing.T) {
		down.Store(true)
		check(t)
	})
	t.Run("nothing listening", func(t *testing.T) {
		proxy.Close()
		check(t)
	})
	t.Run("canceled by the caller", func(t *testing.T) {
		// The caller's own deadline says nothing about S3.
		ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
		defer cancel()
		<-ctx.Done()
		if _, err := st.Stat(ctx, "k"); err == nil || errors.Is(err, model.ErrUnavailable) {
			t.Fatalf("Stat with an expired context = %v, want an error that is not ErrUnavailable", err)
		}
	})
}
