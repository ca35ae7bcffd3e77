package requestid

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMiddlewareKeepsASaneIDAndReplacesOthers(t *testing.T) {
	var seen string
	h := Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen = From(r.Context()) }))
	for _, tt := range []struct {
		name, in string
		kept     bool
	}{
		{"none", "", false},
		{"uuid", "0f8fad5b-d9cb-469f-a165-70867728950e", true},
		{"haproxy", "7F000001:C4A2_7F000001:1F90_5F3A1B2C_0001:2A1B", true},
		{"base64", "YWJj+/de==", true},
		{"longest", strings.Repeat("a", MaxLength), true},
		{"too long", strings.Repeat("a", MaxLength+1), false},
		{"space", "a b", false},
		{"quote", `a"b`, false},
		{"forged log field", "x request_id=admin", false},
		{"non-ascii", "idé", false},
		{"control", "a\tb", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tt.in != "" {
				req.Header.Set(Header, tt.in)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := rec.Header().Get(Header)
			if got != seen {
				t.Fatalf("header %q, context %q: want the same id", got, seen)
			}
			if tt.kept != (got == tt.in) {
				t.Fatalf("incoming %q gave %q; kept = %v, want %v", tt.in, got, got == tt.in, tt.kept)
			}
			if !Valid(got) {
				t.Fatalf("id %q is not valid", got)
			}
		})
	}
	// Fresh ids differ.
	a, b := httptest.NewRecorder(), httptest.NewRecorder()
	h.ServeHTTP(a, httptest.NewRequest("GET", "/", nil))
	h.ServeHTTP(b, httptest.NewRequest("GET", "/", nil))
	if a.Header().Get(Header) == b.Header().Get(Header) {
		t.Fatalf("two requests got the same id %q", a.Header().Get(Header))
	}
}

// A handler mounted inside another keeps the outer id: one request, one id.
func TestMiddlewareNestedKeepsTheOuterID(t *testing.T) {
	var inner string
	h := Middleware(Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner = From(r.Context()) })))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if vs := rec.Header().Values(Header); len(vs) != 1 || vs[0] != inner {
		t.Fatalf("header %q, inner id %q", vs, inner)
	}
}

func TestEnsure(t *testing.T) {
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/", nil)
	id, ctx := Ensure(rec, req)
	if id == "" || From(ctx) != id || rec.Header().Get(Header) != id {
		t.Fatalf("Ensure without an id: %q, context %q, header %q", id, From(ctx), rec.Header().Get(Header))
	}
	rec = httptest.NewRecorder()
	again, _ := Ensure(rec, req.WithContext(ctx))
	if again != id || rec.Header().Get(Header) != "" {
		t.Fatalf("Ensure with id %q gave %q and set header %q", id, again, rec.Header().Get(Header))
	}
}

func TestHandlerAddsTheIDToLogLines(t *testing.T) {
	var buf bytes.Buffer
	log := Logger(slog.New(slog.NewJSONHandler(&buf, nil))).With("part", "api")
	if Logger(log) != log {
		t.Error("Logger wrapped a logger twice")
	}
	ctx := With(context.Background(), "req-1")
	log.InfoContext(ctx, "in a request")
	log.Info("outside any request")
	log.WithGroup("g").InfoContext(ctx, "in a group", "k", "v")

	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("%v: %s", err, l)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), buf.String())
	}
	if lines[0][LogKey] != "req-1" || lines[0]["part"] != "api" {
		t.Errorf("line in a request: %v", lines[0])
	}
	if _, ok := lines[1][LogKey]; ok {
		t.Errorf("line outside any request has an id: %v", lines[1])
	}
	if g, _ := lines[2]["g"].(map[string]any); g[LogKey] != "req-1" {
		t.Errorf("line in a group: %v", lines[2])
	}
}
