package cas_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/cas"
	"github.com/dist-test/dist_test/isolate/cas/castest"
)

func TestCASPutGetHead(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	ctx := context.Background()
	data := []byte("test input bytes\n")
	d := isolate.HashBytes(isolate.SHA1, data)

	put := func() int {
		req, _ := http.NewRequest(http.MethodPut, tc.URL+protocol.PathCAS+"/"+d, bytes.NewReader(data))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := put(); got != http.StatusCreated {
		t.Fatalf("first PUT: status %d, want 201", got)
	}
	if got := put(); got != http.StatusOK {
		t.Fatalf("second PUT: status %d, want 200", got)
	}

	resp, err := http.Get(tc.URL + protocol.PathCAS + "/" + d)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.ContentLength != int64(len(data)) ||
		resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("GET: %d %q len %d type %q", resp.StatusCode, body, resp.ContentLength, resp.Header.Get("Content-Type"))
	}
	resp, err = http.Head(tc.URL + protocol.PathCAS + "/" + d)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(data)) {
		t.Fatalf("HEAD: %d len %d", resp.StatusCode, resp.ContentLength)
	}

	// Through the client.
	rc, size, err := tc.Client.Open(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) || size != int64(len(data)) {
		t.Fatalf("Open: %q size %d", got, size)
	}
	absent := isolate.HashBytes(isolate.SHA1, []byte("absent"))
	if ok, err := tc.Client.Exists(ctx, d); !ok || err != nil {
		t.Fatalf("Exists(stored) = %v, %v", ok, err)
	}
	if ok, err := tc.Client.Exists(ctx, absent); ok || err != nil {
		t.Fatalf("Exists(absent) = %v, %v", ok, err)
	}
	if _, _, err := tc.Client.Open(ctx, absent); !errors.Is(err, model.ErrNotFound) {
		t.Fatalf("Open(absent): %v, want model.ErrNotFound", err)
	}
}

func TestCASRefusesMismatchedUpload(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	d := isolate.HashBytes(isolate.SHA256, []byte("the real content"))
	err := tc.Client.Upload(context.Background(), d, strings.NewReader("other content"), 13)
	if !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("Upload of wrong bytes: %v, want model.ErrInvalid", err)
	}
	if !strings.Contains(err.Error(), "hash to") {
		t.Errorf("error %q does not say the bytes do not match", err)
	}
	if tc.Stored(t, d) {
		t.Fatal("mismatched blob was stored")
	}
	if n := tc.Count(http.MethodPut); n != 1 {
		t.Errorf("%d PUTs, want 1 (a 4xx is never retried)", n)
	}
}

func TestCASTooLarge(t *testing.T) {
	tc := castest.New(t, cas.Options{MaxBlobSize: 10})
	data := []byte("eleven byte")
	d := isolate.HashBytes(isolate.SHA1, data)
	err := tc.Client.Upload(context.Background(), d, bytes.NewReader(data), int64(len(data)))
	if !errors.Is(err, model.ErrTooLarge) {
		t.Fatalf("Upload over the limit: %v, want model.ErrTooLarge", err)
	}
	// Without a Content-Length the server finds out while reading.
	err = tc.Client.Upload(context.Background(), d, io.MultiReader(bytes.NewReader(data)), -1)
	if !errors.Is(err, model.ErrTooLarge) {
		t.Fatalf("chunked upload over the limit: %v, want model.ErrTooLarge", err)
	}
	if tc.Stored(t, d) {
		t.Fatal("blob over the limit was stored")
	}
	small := []byte("ten bytes!")
	if err := tc.Client.Upload(context.Background(), isolate.HashBytes(isolate.SHA1, small), bytes.NewReader(small), 10); err != nil {
		t.Fatalf("upload at the limit: %v", err)
	}
}

func TestCASMissing(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	ctx := context.Background()
	var have, lack []string
	for i := range 6 {
		data := []byte{byte(i)}
		d := isolate.HashBytes(isolate.SHA1, data)
		if i%2 == 0 {
			if err := tc.Client.Upload(ctx, d, bytes.NewReader(data), 1); err != nil {
				t.Fatal(err)
			}
			have = append(have, d)
		} else {
			lack = append(lack, d)
		}
	}
	got, err := tc.Client.Missing(ctx, append(append([]string{}, have...), lack...))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != strings.Join(lack, ",") {
		t.Fatalf("Missing = %v, want %v", got, lack)
	}

	// A malformed digest is refused as a whole.
	_, err = tc.Client.Missing(ctx, []string{have[0], "XYZ"})
	if !errors.Is(err, model.ErrInvalid) {
		t.Fatalf("Missing with a bad digest: %v, want model.ErrInvalid", err)
	}
	resp, err := http.Post(tc.URL+protocol.PathCAS+"/missing", "application/json", strings.NewReader(`{"digests":["ABCDEF"]}`))
	if err != nil {
		t.Fatal(err)
	}
	var e protocol.Error
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != 400 || e.Code != "invalid" || !strings.Contains(e.Error, "ABCDEF") {
		t.Fatalf("raw bad query: %d %+v", resp.StatusCode, e)
	}
}

func TestCASMissingBatches(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	digests := make([]string, cas.MaxMissingDigests+5)
	for i := range digests {
		digests[i] = isolate.HashBytes(isolate.SHA1, []byte{byte(i), byte(i >> 8)})
	}
	got, err := tc.Client.Missing(context.Background(), digests)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(digests) {
		t.Fatalf("%d missing, want %d", len(got), len(digests))
	}
	if n := tc.Count(http.MethodPost); n != 2 {
		t.Fatalf("%d queries, want 2 batches", n)
	}
	// The server refuses a larger query outright.
	body, _ := json.Marshal(cas.MissingRequest{Digests: digests})
	resp, err := http.Post(tc.URL+protocol.PathCAS+"/missing", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized query: status %d, want 413", resp.StatusCode)
	}
}

func TestCASBadDigestInPath(t *testing.T) {
	tc := castest.New(t, cas.Options{})
	for _, p := range []string{"abc", strings.Repeat("A", 40), strings.Repeat("g", 64)} {
		resp, err := http.Get(tc.URL + protocol.PathCAS + "/" + p)
		if err != nil {
			t.Fatal(err)
		}
		var e protocol.Error
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != 400 || e.Code != "invalid" {
			t.Errorf("GET %s: %d %+v, want 400 invalid", p, resp.StatusCode, e)
		}
	}
}
