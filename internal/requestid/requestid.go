// Package requestid gives every HTTP request a server answers an id: the
// caller's own X-Request-Id when it is sane (a proxy or load balancer in
// front may have set one), a fresh random one otherwise. The id is echoed
// in the answer's X-Request-Id header, carried by the request's context,
// and added to every log line written with that context through a logger
// whose handler is wrapped by NewHandler. A user who quotes the id of a
// failed request lets an operator find that request's lines in the log.
package requestid

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
)

// Header names the id in requests and answers.
const Header = "X-Request-Id"

// MaxLength bounds an incoming id kept as it is; a longer one is replaced.
const MaxLength = 128

// LogKey is the attribute that carries the id in log lines.
const LogKey = "request_id"

type key struct{}

// From returns the id of the request whose context ctx is, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// With returns ctx carrying id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// New returns a fresh id: 26 characters of base32, 128 random bits.
func New() string { return rand.Text() }

// Valid reports whether an incoming id may be kept: 1 to MaxLength
// letters, digits and "-_.:+/=@". Anything else (spaces, quotes, control
// characters) could forge or break log lines, and is replaced.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '_', c == '.', c == ':', c == '+', c == '/', c == '=', c == '@':
		default:
			return false
		}
	}
	return true
}

// Middleware gives each request its id, puts it in the request's context
// and in the answer's header. A request that already carries one (a
// handler mounted inside another that set it) keeps it.
func Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if id := From(r.Context()); id != "" {
			next.ServeHTTP(w, r)
			return
		}
		id := r.Header.Get(Header)
		if !Valid(id) {
			id = New()
		}
		w.Header().Set(Header, id)
		next.ServeHTTP(w, r.WithContext(With(r.Context(), id)))
	})
}

// Ensure returns the id of r and r's context when r has one; otherwise a
// fresh id, set in w's header, and r's context carrying it. Error writers
// call it, so that an answer written outside Middleware still carries an
// id that its log lines share.
func Ensure(w http.ResponseWriter, r *http.Request) (string, context.Context) {
	if id := From(r.Context()); id != "" {
		return id, r.Context()
	}
	id := New()
	w.Header().Set(Header, id)
	return id, With(r.Context(), id)
}

// NewHandler wraps h so that a record logged with a context that carries a
// request id (Logger.InfoContext and the like) has the id as LogKey.
func NewHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(handler); ok {
		return h
	}
	return handler{h}
}

type handler struct{ slog.Handler }

func (h handler) Handle(ctx context.Context, r slog.Record) error {
	if id := From(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(LogKey, id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h handler) WithAttrs(as []slog.Attr) slog.Handler { return handler{h.Handler.WithAttrs(as)} }
func (h handler) WithGroup(name string) slog.Handler    { return handler{h.Handler.WithGroup(name)} }

// Logger returns l with its handler wrapped by NewHandler (l itself when it
// is already), so that what l logs with a request's context names the
// request.
func Logger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(handler); ok {
		return l
	}
	return slog.New(handler{l.Handler()})
}
