package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
)

// Transport returns a transport like http.DefaultTransport that keeps
// maxIdle connections per host (0: the default) and trusts the CA
// certificates of the PEM file caFile in addition to the system's ("": the
// system's only). Certificates are always verified.
func Transport(caFile string, maxIdle int) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if maxIdle > 0 {
		t.MaxIdleConnsPerHost = maxIdle
	}
	if caFile == "" {
		return t, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("[dist_test] ca_file: %w", err)
	}
	pool, err := x509.SystemCertPool()
	if err != nil || pool == nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("[dist_test] ca_file %s: no PEM certificate in it", caFile)
	}
	t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return t, nil
}

// New returns an HTTP client of the server at serverURL: it trusts caFile
// (see Transport) and presents cred to that server only.
func New(serverURL, caFile string, cred Credentials, maxIdle int) (*http.Client, error) {
	t, err := Transport(caFile, maxIdle)
	if err != nil {
		return nil, err
	}
	if cred.Empty() {
		return &http.Client{Transport: t}, nil
	}
	at, err := NewAuthTransport(t, serverURL, cred)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: at}, nil
}
