// Package httpserver runs the HTTP listeners of dist_test (master,
// isolate server, local) with bounds that no client can lift: a cap on open
// connections, a deadline on idle keep-alive connections, and per-request
// read and write deadlines that grow with the bytes moved. BaseURL tells a
// handler the URL its caller reached it by, for the links it answers with.
//
// One fixed ReadTimeout or WriteTimeout would either cut legitimate long
// transfers (a 200 MiB artifact upload, a CAS blob of gigabytes, a log
// download on a slow link) or be so long that a slow-body client holds a
// connection for hours. Instead each request gets Limits.ReadTimeout to
// start and a further second for every Limits.MinRate bytes it moves: a
// body that keeps flowing at MinRate or faster never times out, one that
// trickles (a "slowloris") is cut within ReadTimeout of falling behind.
package httpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"golang.org/x/net/netutil"
)

// Limits bound one listener. Zero values take the defaults.
type Limits struct {
	// HeaderTimeout bounds reading a request's headers (10 s).
	HeaderTimeout time.Duration
	// IdleTimeout closes a keep-alive connection that sends no new request
	// for this long (60 s).
	IdleTimeout time.Duration
	// ReadTimeout and WriteTimeout are each request's allowance to move its
	// body and its answer, on top of the time MinRate explains (30 s each).
	ReadTimeout, WriteTimeout time.Duration
	// MinRate is the slowest transfer, in bytes per second, that a request
	// body or answer may keep up once past its timeout's allowance (64 KiB/s).
	MinRate int64
	// MaxConns caps the connections open at once; more wait in the
	// kernel's accept backlog until one closes (1024).
	MaxConns int
}

func (l Limits) withDefaults() Limits {
	if l.HeaderTimeout <= 0 {
		l.HeaderTimeout = 10 * time.Second
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 60 * time.Second
	}
	if l.ReadTimeout <= 0 {
		l.ReadTimeout = 30 * time.Second
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = 30 * time.Second
	}
	if l.MinRate <= 0 {
		l.MinRate = 64 << 10
	}
	if l.MaxConns <= 0 {
		l.MaxConns = 1024
	}
	return l
}

// Server is one bounded listener.
type Server struct {
	URL  string // http://host:port actually served
	srv  *http.Server
	done chan error
}

// Serve listens on addr and serves h within l until Stop, over https when
// tc is set.
func Serve(addr string, h http.Handler, l Limits, tc *tls.Config) (*Server, error) {
	l = l.withDefaults()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	scheme := "http://"
	if tc != nil {
		scheme = "https://"
	}
	s := &Server{
		URL:  scheme + ln.Addr().String(),
		done: make(chan error, 1),
		srv: &http.Server{
			Handler:           Bound(h, l),
			ReadHeaderTimeout: l.HeaderTimeout,
			IdleTimeout:       l.IdleTimeout,
			TLSConfig:         tc,
		},
	}
	// The cap counts TCP connections, so it sits below the TLS layer: a
	// handshake that never finishes holds one slot, not more.
	ln = netutil.LimitListener(ln, l.MaxConns)
	if tc != nil {
		ln = tls.NewListener(ln, tc)
	}
	go func() { s.done <- s.srv.Serve(ln) }()
	return s, nil
}

// Stop lets requests in flight finish until ctx ends, then closes.
func (s *Server) Stop(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if serr := <-s.done; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// Bound gives every request of h its read and write deadlines (see the
// package documentation).
func Bound(h http.Handler, l Limits) http.Handler {
	l = l.withDefaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		// A handler that never reads the body must not leave the
		// connection waiting on it beyond the allowance.
		_ = rc.SetReadDeadline(time.Now().Add(l.ReadTimeout))
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = &paced{ReadCloser: r.Body, set: rc.SetReadDeadline, grace: l.ReadTimeout, rate: l.MinRate}
		}
		pw := &pacedWriter{ResponseWriter: w, p: paced{set: rc.SetWriteDeadline, grace: l.WriteTimeout, rate: l.MinRate}}
		h.ServeHTTP(pw, r)
	})
}

// paced moves a connection's deadline ahead as bytes move: from the first
// transfer, grace plus one second per rate bytes.
type paced struct {
	io.ReadCloser
	set   func(time.Time) error
	grace time.Duration
	rate  int64
	start time.Time
	n     int64
}

func (p *paced) deadline() time.Time {
	if p.start.IsZero() {
		p.start = time.Now()
	}
	return p.start.Add(p.grace + time.Duration(float64(p.n)/float64(p.rate)*float64(time.Second)))
}

func (p *paced) Read(b []byte) (int, error) {
	_ = p.set(p.deadline())
	n, err := p.ReadCloser.Read(b)
	p.n += int64(n)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("request body slower than %d bytes/s: %w", p.rate, err)
	}
	return n, err
}

// pacedWriter is the answer's side of paced.
type pacedWriter struct {
	http.ResponseWriter
	p paced
}

func (w *pacedWriter) Write(b []byte) (int, error) {
	_ = w.p.set(w.p.deadline())
	n, err := w.ResponseWriter.Write(b)
	w.p.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection's writer
// (flushes, deadlines).
func (w *pacedWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
