package httpserver

import (
	"net/http"
	"strings"
)

// BaseURL is the URL the caller reached the server by, for links in an
// answer that the caller must be able to follow: the JSON API's and the
// dashboard's links to logs and artifacts. Behind a proxy that ends TLS the
// request arrives over http, so the proxy's X-Forwarded-Proto names the
// scheme; only http and https are taken from it, anything else is ignored.
func BaseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + strings.TrimSuffix(r.Host, "/")
}
