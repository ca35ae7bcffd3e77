package cas

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dist-test/dist_test/internal/blob/local"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/isolate"
	"github.com/dist-test/dist_test/isolate/isolatetest"
)

// gzipCAS is a real CAS server that records the encodings of what went
// over the wire, and can play a server from before compression.
type gzipCAS struct {
	srv     *httptest.Server
	store   *local.Store
	tempDir string
	client  *Client

	mu          sync.Mutex
	putEncoding map[string]string // digest -> Content-Encoding of its PUT
	putBytes    map[string]int64  // digest -> bytes on the wire
	getEncoding map[string]string // digest -> Content-Encoding of the answer
}

func newGzipCAS(t *testing.T, opts Options, oldServer bool) *gzipCAS {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := &gzipCAS{store: st, tempDir: t.TempDir(), putEncoding: map[string]string{}, putBytes: map[string]int64{},
		getEncoding: map[string]string{}}
	opts.TempDir = g.tempDir
	h := serve(st, opts)
	g.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
		if r.Method == http.MethodPut {
			if oldServer && r.Header.Get("Content-Encoding") != "" {
				// A server from before compression would store the
				// compressed bytes; the digest check refuses them.
				http.Error(w, "old server: unexpected encoding", http.StatusBadRequest)
				return
			}
			cr := &isolatetest.CountingReader{R: r.Body}
			r.Body = io.NopCloser(cr)
			defer func() {
				g.mu.Lock()
				g.putEncoding[d], g.putBytes[d] = r.Header.Get("Content-Encoding"), cr.N
				g.mu.Unlock()
			}()
		}
		rw := &recordingWriter{ResponseWriter: w, dropAccept: oldServer}
		h.ServeHTTP(rw, r)
		if r.Method == http.MethodGet {
			g.mu.Lock()
			g.getEncoding[d] = w.Header().Get("Content-Encoding")
			g.mu.Unlock()
		}
	}))
	t.Cleanup(g.srv.Close)
	g.client = NewClient(g.srv.URL, g.srv.Client())
	g.client.backoff = time.Millisecond
	return g
}

// recordingWriter can hide the server's Accept-Encoding, as a server from
// before compression would not send it.
type recordingWriter struct {
	http.ResponseWriter
	dropAccept bool
}

func (w *recordingWriter) WriteHeader(code int) {
	if w.dropAccept {
		w.Header().Del("Accept-Encoding")
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recordingWriter) Write(p []byte) (int, error) {
	if w.dropAccept {
		w.Header().Del("Accept-Encoding")
	}
	return w.ResponseWriter.Write(p)
}

func (g *gzipCAS) stored(t *testing.T, digest string) []byte {
	t.Helper()
	rc, _, err := g.store.Get(context.Background(), casKey(digest))
	if err != nil {
		t.Fatalf("blob %s: %v", digest, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestCASUploadCompression(t *testing.T) {
	g := newGzipCAS(t, Options{}, false)
	ctx := context.Background()
	text := isolatetest.TextBlob(3 << 20) // larger than a sample and a chunk
	random := isolatetest.RandomBlob(1, 200<<10)
	small := isolatetest.TextBlob(minCompressSize - 1)
	dText, dRandom, dSmall := isolate.HashBytes(isolate.SHA1, text), isolate.HashBytes(isolate.SHA256, random), isolate.HashBytes(isolate.SHA1, small)

	// Before the server has said it accepts gzip, nothing is compressed.
	early := isolatetest.TextBlob(5000)
	dEarly := isolate.HashBytes(isolate.SHA1, early)
	if err := g.client.Upload(ctx, dEarly, bytes.NewReader(early), int64(len(early))); err != nil {
		t.Fatal(err)
	}
	if enc := g.putEncoding[dEarly]; enc != "" {
		t.Fatalf("first upload sent with %q before the server said it accepts it", enc)
	}
	if _, err := g.client.Missing(ctx, []string{dText}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name    string
		digest  string
		data    []byte
		size    int64
		wantEnc string
	}{
		{"text", dText, text, int64(len(text)), "gzip"},
		{"text of unknown size", isolate.HashBytes(isolate.SHA1, text[:100<<10]), text[:100<<10], -1, "gzip"},
		{"random", dRandom, random, int64(len(random)), ""},
		{"small", dSmall, small, int64(len(small)), ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := io.Reader(bytes.NewReader(tt.data))
			if tt.size < 0 {
				r = io.MultiReader(r) // no Len, no Seek
			}
			if err := g.client.Upload(ctx, tt.digest, r, tt.size); err != nil {
				t.Fatal(err)
			}
			g.mu.Lock()
			enc, wire := g.putEncoding[tt.digest], g.putBytes[tt.digest]
			g.mu.Unlock()
			if enc != tt.wantEnc {
				t.Fatalf("sent with Content-Encoding %q, want %q", enc, tt.wantEnc)
			}
			if enc == "gzip" && wire > int64(len(tt.data))/4 {
				t.Fatalf("%d bytes on the wire for %d of text", wire, len(tt.data))
			}
			if got := g.stored(t, tt.digest); !bytes.Equal(got, tt.data) {
				t.Fatalf("stored %d bytes, not the %d uploaded", len(got), len(tt.data))
			}
		})
	}
}

// A file is compressed again from the start when an upload is retried.
func TestCASUploadCompressedRetry(t *testing.T) {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := serve(st, Options{TempDir: t.TempDir()})
	var puts int
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		puts++
		first := r.Method == http.MethodPut && puts == 1
		mu.Unlock()
		if first {
			io.CopyN(io.Discard, r.Body, 100)
			w.Header().Set("Accept-Encoding", "gzip")
			http.Error(w, "hiccup", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	c := NewClient(srv.URL, srv.Client())
	c.backoff = time.Millisecond
	c.serverGzip.Store(true)
	data := isolatetest.TextBlob(1 << 20)
	f, err := os.CreateTemp(t.TempDir(), "blob")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.Write(data)
	f.Seek(0, io.SeekStart)
	d := isolate.HashBytes(isolate.SHA1, data)
	if err := c.Upload(context.Background(), d, f, int64(len(data))); err != nil {
		t.Fatalf("retried compressed upload: %v", err)
	}
	rc, _, err := st.Get(context.Background(), casKey(d))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	rc.Close()
	if !bytes.Equal(got, data) || puts != 2 {
		t.Fatalf("stored %d bytes after %d PUTs", len(got), puts)
	}
}

// A client never compresses for a server that does not say it accepts gzip.
func TestCASUploadToOldServer(t *testing.T) {
	g := newGzipCAS(t, Options{}, true)
	ctx := context.Background()
	data := isolatetest.TextBlob(1 << 20)
	d := isolate.HashBytes(isolate.SHA1, data)
	if _, err := g.client.Missing(ctx, []string{d}); err != nil {
		t.Fatal(err)
	}
	if err := g.client.Upload(ctx, d, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatalf("upload to a server without gzip: %v", err)
	}
	if enc := g.putEncoding[d]; enc != "" {
		t.Fatalf("sent with %q to a server that does not accept it", enc)
	}
}

func TestCASDownloadCompression(t *testing.T) {
	g := newGzipCAS(t, Options{}, false)
	ctx := context.Background()
	text, random, small := isolatetest.TextBlob(2<<20+123), isolatetest.RandomBlob(2, 300<<10), isolatetest.TextBlob(900)
	for _, data := range [][]byte{text, random, small} {
		if err := g.client.Upload(ctx, isolate.HashBytes(isolate.SHA1, data), bytes.NewReader(data), int64(len(data))); err != nil {
			t.Fatal(err)
		}
	}
	for _, tt := range []struct {
		name    string
		data    []byte
		wantEnc string
	}{{"text", text, "gzip"}, {"random", random, ""}, {"small", small, ""}} {
		t.Run(tt.name, func(t *testing.T) {
			d := isolate.HashBytes(isolate.SHA1, tt.data)
			rc, size, err := g.client.Open(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(rc)
			rc.Close()
			if err != nil || !bytes.Equal(got, tt.data) || size != int64(len(tt.data)) {
				t.Fatalf("Open: %d bytes, size %d, %v; want %d", len(got), size, err, len(tt.data))
			}
			g.mu.Lock()
			enc := g.getEncoding[d]
			g.mu.Unlock()
			if enc != tt.wantEnc {
				t.Fatalf("answered with Content-Encoding %q, want %q", enc, tt.wantEnc)
			}
		})
	}

	// On the wire: compressed, with the blob's own size in the header.
	d := isolate.HashBytes(isolate.SHA1, text)
	noAuto := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	req, _ := http.NewRequest(http.MethodGet, g.srv.URL+protocol.PathCAS+"/"+d, nil)
	req.Header.Set("Accept-Encoding", "br, gzip;q=0.8")
	resp, err := noAuto.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	wire, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Encoding") != "gzip" || resp.Header.Get(SizeHeader) != strconv.Itoa(len(text)) ||
		len(wire) > len(text)/4 || resp.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("raw GET: encoding %q, size header %q, %d bytes on the wire, vary %q", resp.Header.Get("Content-Encoding"),
			resp.Header.Get(SizeHeader), len(wire), resp.Header.Get("Vary"))
	}
	zr, err := gzip.NewReader(bytes.NewReader(wire))
	if err != nil {
		t.Fatal(err)
	}
	if plain, err := io.ReadAll(zr); err != nil || !bytes.Equal(plain, text) {
		t.Fatalf("decompressed %d bytes, %v", len(plain), err)
	}

	// An old client, which does not ask for gzip (or refuses it), gets the
	// bytes as they are, with their length.
	for _, accept := range []string{"", "identity", "gzip;q=0"} {
		req, _ := http.NewRequest(http.MethodGet, g.srv.URL+protocol.PathCAS+"/"+d, nil)
		if accept != "" {
			req.Header.Set("Accept-Encoding", accept)
		}
		resp, err := noAuto.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "" || resp.ContentLength != int64(len(text)) || !bytes.Equal(body, text) {
			t.Fatalf("Accept-Encoding %q: encoding %q, length %d, %d bytes", accept, resp.Header.Get("Content-Encoding"),
				resp.ContentLength, len(body))
		}
	}
	// Go's default client asks for gzip on its own and undoes it unseen.
	resp, err = http.Get(g.srv.URL + protocol.PathCAS + "/" + d)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Equal(body, text) || !resp.Uncompressed {
		t.Fatalf("default client: %d bytes, uncompressed by the transport %v", len(body), resp.Uncompressed)
	}
}

// A client without compression uploads as before.
func TestCASOldClientUpload(t *testing.T) {
	g := newGzipCAS(t, Options{}, false)
	data := isolatetest.TextBlob(100 << 10)
	d := isolate.HashBytes(isolate.SHA1, data)
	req, _ := http.NewRequest(http.MethodPut, g.srv.URL+protocol.PathCAS+"/"+d, bytes.NewReader(data))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !bytes.Equal(g.stored(t, d), data) {
		t.Fatalf("plain PUT: status %d", resp.StatusCode)
	}
	if acc := resp.Header.Get("Accept-Encoding"); acc != "gzip" {
		t.Fatalf("Accept-Encoding %q in the answer, want gzip", acc)
	}
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

func rawPut(t *testing.T, url string, body []byte, headers map[string]string) (int, protocol.Error) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, url, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e protocol.Error
	data, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(data, &e)
	return resp.StatusCode, e
}

func TestCASCompressedUploadRefused(t *testing.T) {
	const max = 1 << 20
	g := newGzipCAS(t, Options{MaxBlobSize: max}, false)
	url := func(d string) string { return g.srv.URL + protocol.PathCAS + "/" + d }

	// A bomb: 16 MiB of zeros in 16 KiB. Its digest is right, so only the
	// bound on what is decompressed stops it.
	zeros := make([]byte, 16<<20)
	dZeros := isolate.HashBytes(isolate.SHA1, zeros)
	bomb := gzipped(t, zeros)
	if len(bomb) > 32<<10 {
		t.Fatalf("bomb of %d bytes", len(bomb))
	}
	for _, size := range []string{"", "1000"} { // with or without a lying size
		h := map[string]string{"Content-Encoding": "gzip"}
		if size != "" {
			h[SizeHeader] = size
		}
		if status, e := rawPut(t, url(dZeros), bomb, h); status != http.StatusRequestEntityTooLarge || e.Code != "too_large" {
			t.Fatalf("bomb (size %q): %d %+v, want 413", size, status, e)
		}
	}
	// Through the client too: the error says why.
	err := g.client.Upload(context.Background(), dZeros, bytes.NewReader(zeros), -1)
	if !errors.Is(err, model.ErrTooLarge) {
		t.Fatalf("client upload of a blob over the limit: %v", err)
	}
	if status, _ := rawPut(t, url(dZeros), nil, map[string]string{SizeHeader: strconv.Itoa(64 << 20)}); status != http.StatusRequestEntityTooLarge {
		t.Fatalf("declared size over the limit: %d, want 413", status)
	}

	data := isolatetest.TextBlob(10 << 10)
	d := isolate.HashBytes(isolate.SHA1, data)
	for _, tt := range []struct {
		name    string
		body    []byte
		headers map[string]string
		status  int
		want    string
	}{
		{"not gzip", data, map[string]string{"Content-Encoding": "gzip"}, 400, "gzip header"},
		{"cut short", gzipped(t, data)[:200], map[string]string{"Content-Encoding": "gzip"}, 400, "reading the body"},
		{"trailing junk", append(gzipped(t, data), "junk"...), map[string]string{"Content-Encoding": "gzip"}, 400, "reading the body"},
		{"wrong content", gzipped(t, isolatetest.TextBlob(10<<10+1)), map[string]string{"Content-Encoding": "gzip"}, 400, "hash to"},
		{"size mismatch", gzipped(t, data), map[string]string{"Content-Encoding": "gzip", SizeHeader: "10"}, 400, "says 10"},
		{"bad size", data, map[string]string{SizeHeader: "-3"}, 400, SizeHeader},
		{"unknown encoding", data, map[string]string{"Content-Encoding": "br"}, 415, `"br" is not supported`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, e := rawPut(t, url(d), tt.body, tt.headers)
			if status != tt.status || !strings.Contains(e.Error, tt.want) {
				t.Fatalf("%d %+v, want %d and %q", status, e, tt.status, tt.want)
			}
		})
	}
	for _, dd := range []string{d, dZeros} {
		if _, err := g.store.Stat(context.Background(), casKey(dd)); err == nil {
			t.Fatalf("refused blob %s was stored", dd)
		}
	}
	if entries, _ := os.ReadDir(g.tempDir); len(entries) != 0 {
		t.Fatalf("%d temporary files left behind", len(entries))
	}
	// And a good compressed upload, for contrast.
	if status, e := rawPut(t, url(d), gzipped(t, data), map[string]string{"Content-Encoding": "gzip", SizeHeader: strconv.Itoa(len(data))}); status != 201 {
		t.Fatalf("good compressed upload: %d %+v", status, e)
	}
}

func TestAcceptsGzip(t *testing.T) {
	for h, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "deflate, gzip;q=1.0, *;q=0.5": true, "x-gzip": true,
		"gzip;q=0": false, "gzip; q=0": false, "identity": false, "br": false, "*": true, "gzip;q=0.001": true,
	} {
		if got := acceptsGzip(h); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", h, got, want)
		}
	}
}

// casKey is where a handler with no retention set keeps a blob written now.
func casKey(digest string) string { return key(newGens(nil, 0, time.Now).current(), digest) }
