package httpserver

import (
	"crypto/tls"
	"net/http/httptest"
	"testing"
)

func TestBaseURL(t *testing.T) {
	tests := []struct {
		name      string
		tls       bool
		forwarded string
		host      string
		want      string
	}{
		{"plain", false, "", "master:8081", "http://master:8081"},
		{"tls", true, "", "master:8081", "https://master:8081"},
		{"proxy ending tls", false, "https", "dist-test.example.com", "https://dist-test.example.com"},
		{"proxy over plain http to a tls listener", true, "http", "master", "http://master"},
		{"unknown scheme ignored", false, "javascript", "master", "http://master"},
		{"scheme with a host ignored", false, "https://evil.example", "master", "http://master"},
		{"uppercase not taken", true, "HTTP", "master", "https://master"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/job", nil)
			r.Host = tt.host
			r.TLS = nil
			if tt.tls {
				r.TLS = &tls.ConnectionState{}
			}
			if tt.forwarded != "" {
				r.Header.Set("X-Forwarded-Proto", tt.forwarded)
			}
			if got := BaseURL(r); got != tt.want {
				t.Errorf("BaseURL = %q, want %q", got, tt.want)
			}
		})
	}
}
