package cas

import (
	"bufio"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-chi/chi/v5"
	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/requestid"
	"github.com/dist-test/dist_test/isolate"
)

// MaxMissingDigests bounds the digests of one missing-query.
const MaxMissingDigests = 10000

// Options configures the CAS handler.
type Options struct {
	MaxBlobSize int64 // largest blob accepted; 8 GiB when 0
	// MaxGzipRatio bounds how many times its compressed size a compressed
	// upload may unpack to, beyond its first MiB (100 when 0).
	MaxGzipRatio int
	// TempDir holds uploads while they are verified; os.TempDir() when empty.
	TempDir string
	// MaxTempBytes bounds the bytes all uploads being verified hold in
	// TempDir at once (2 × MaxBlobSize when 0); past it uploads get 503.
	MaxTempBytes int64
	// RetentionDays: blobs no job used for this many days are deleted by
	// Service.Sweep (see gens); 0 keeps them.
	RetentionDays int
	Now           func() time.Time // the clock; time.Now when nil
	Logger        *slog.Logger     // nothing is logged when nil
}

// missingRequest and missingResponse are the bodies of POST .../missing.
type missingRequest struct {
	Digests []string `json:"digests"`
	// Manifests: the digests are manifests a job is about to use; each is
	// missing unless its whole tree is there, which is then kept for
	// another retention period.
	Manifests bool `json:"manifests,omitempty"`
}

type missingResponse struct {
	Missing []string `json:"missing"`
}

// Service answers questions about the content-addressed inputs kept in a blob
// store, for a master that serves them itself, and collects its garbage.
type Service struct{ g *gens }

// NewService returns the CAS kept in store, whose blobs live retentionDays
// after their last use (0: forever) as now tells time (time.Now when nil).
func NewService(store blob.Store, retentionDays int, now func() time.Time) *Service {
	if now == nil {
		now = time.Now
	}
	return &Service{g: newGens(store, retentionDays, now)}
}

// Missing returns, once each and in order, the digests that are not
// stored; those that are stay for another retention period.
func (c *Service) Missing(ctx context.Context, digests []string) ([]string, error) {
	return missingOf(ctx, digests, c.g.refresh)
}

// UseManifests is Missing for the manifests of a job: a manifest is
// missing unless its whole tree is stored, which then stays for another
// retention period.
func (c *Service) UseManifests(ctx context.Context, digests []string) ([]string, error) {
	return missingOf(ctx, digests, c.g.useTree)
}

// Sweep deletes what retention lets go and returns how many blobs went.
func (c *Service) Sweep(ctx context.Context) (int, error) { return c.g.sweep(ctx) }

func missingOf(ctx context.Context, digests []string, have func(context.Context, string) (bool, error)) ([]string, error) {
	found := make([]bool, len(digests))
	// A remote store answers each Stat in a round trip: ask in parallel.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, d := range digests {
		g.Go(func() error {
			ok, err := have(gctx, d)
			if err != nil {
				return fmt.Errorf("stat %s: %w", d, err)
			}
			found[i] = ok
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	missing := []string{}
	seen := map[string]bool{}
	for i, d := range digests {
		if !found[i] && !seen[d] {
			seen[d] = true
			missing = append(missing, d)
		}
	}
	return missing, nil
}

type casHandler struct {
	cas  *Service
	opts Options
	log  *slog.Logger
	gz   gzipWriters
	temp atomic.Int64 // bytes the spools hold on disk
}

// NewHandler serves the content-addressed store of task inputs. Its
// routes are relative to where it is mounted, which is protocol.PathCAS
// (with chi, r.Mount(protocol.PathCAS, h)):
//
//	POST /api/v1/cas/missing   {"digests": [...]} -> {"missing": [...]}
//	PUT  /api/v1/cas/{digest}  the bytes; 201 stored, 200 already there
//	GET, HEAD /api/v1/cas/{digest}
//
// An upload is hashed as it streams to memory (to a temporary file beyond
// 256 KiB) and reaches the store only once its bytes match its digest, so
// the store never holds a blob whose name lies about its content.
//
// Every answer carries Accept-Encoding: gzip, telling clients that uploads
// may come with Content-Encoding: gzip; they are decompressed as they are
// hashed, never beyond MaxBlobSize. A GET that accepts gzip gets a blob
// that compresses compressed. SizeHeader gives a blob's own size on GET and
// HEAD and, on a PUT, the size the client says it sends.
func NewHandler(store blob.Store, opts Options) http.Handler {
	if opts.MaxBlobSize <= 0 {
		opts.MaxBlobSize = 8 << 30
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if opts.MaxGzipRatio <= 0 {
		opts.MaxGzipRatio = 100
	}
	if opts.MaxTempBytes <= 0 {
		opts.MaxTempBytes = 2 * opts.MaxBlobSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &casHandler{cas: &Service{g: newGens(store, opts.RetentionDays, opts.Now)}, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = requestid.Logger(h.log)
	r := chi.NewRouter()
	// Mounted on the master, a request has its id already; served alone,
	// it gets one here.
	r.Use(requestid.Middleware)
	r.Use(func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Accept-Encoding", "gzip") // RFC 7694: uploads may be compressed
			next.ServeHTTP(w, r)
		})
	})
	r.Post("/missing", h.missing)
	r.Put("/{digest}", h.put)
	r.Get("/{digest}", h.get)
	r.Head("/{digest}", h.get)
	return r
}

// maxCompressedSize bounds the compressed body of an upload of at most
// max bytes: gzip adds a little to data that does not compress.
func maxCompressedSize(max int64) int64 { return max + max/8 + 1<<20 }

func (h *casHandler) missing(w http.ResponseWriter, r *http.Request) {
	var req missingRequest
	// 10,000 sha-256 digests fit well within 1 MiB.
	body := http.MaxBytesReader(w, r.Body, 1<<20)
	if err := json.NewDecoder(body).Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			h.fail(w, r, fmt.Errorf("missing-query body over %d bytes: %w", tooBig.Limit, model.ErrTooLarge))
			return
		}
		h.fail(w, r, fmt.Errorf("missing-query body: %v: %w", err, model.ErrInvalid))
		return
	}
	if len(req.Digests) > MaxMissingDigests {
		h.fail(w, r, fmt.Errorf("%d digests in one query, at most %d: %w", len(req.Digests), MaxMissingDigests, model.ErrTooLarge))
		return
	}
	for _, d := range req.Digests {
		if _, err := isolate.AlgoOf(d); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	have := h.cas.Missing
	if req.Manifests {
		have = h.cas.UseManifests
	}
	missing, err := have(r.Context(), req.Digests)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := missingResponse{Missing: missing}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (h *casHandler) put(w http.ResponseWriter, r *http.Request) {
	digest := chi.URLParam(r, "digest")
	algo, err := isolate.AlgoOf(digest)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	max := h.opts.MaxBlobSize
	declared := int64(-1)
	if s := r.Header.Get(SizeHeader); s != "" {
		if declared, err = strconv.ParseInt(s, 10, 64); err != nil || declared < 0 {
			h.fail(w, r, fmt.Errorf("%s %q: want the blob's size in bytes: %w", SizeHeader, model.Clip(s, 80), model.ErrInvalid))
			return
		}
		if declared > max {
			h.fail(w, r, fmt.Errorf("blob of %d bytes, at most %d accepted: %w", declared, max, model.ErrTooLarge))
			return
		}
	}
	gzipped := false
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
		if r.ContentLength > max {
			h.fail(w, r, fmt.Errorf("blob of %d bytes, at most %d accepted: %w", r.ContentLength, max, model.ErrTooLarge))
			return
		}
	case "gzip", "x-gzip":
		if limit := maxCompressedSize(max); r.ContentLength > limit {
			h.fail(w, r, fmt.Errorf("compressed blob of %d bytes, at most %d accepted: %w", r.ContentLength, limit, model.ErrTooLarge))
			return
		}
		if declared >= 0 && r.ContentLength > 0 && declared > h.unpackAllowance(r.ContentLength) {
			h.fail(w, r, h.ratioError(digest))
			return
		}
		gzipped = true
	default:
		h.fail(w, r, model.WithKind(model.ErrUnsupported,
			fmt.Errorf("upload of %s: Content-Encoding %q is not supported (send gzip or nothing)", digest, model.Clip(enc, 80))))
		return
	}
	size, stored, err := h.receive(r.Context(), digest, algo, r.Body, gzipped, declared)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if stored {
		status = http.StatusCreated
	}
	h.log.DebugContext(r.Context(), "cas put", "digest", digest, "size", size, "stored", stored)
	w.WriteHeader(status)
}

// unpackAllowance is how many bytes a compressed upload that has sent
// compressed bytes so far may have unpacked to.
func (h *casHandler) unpackAllowance(compressed int64) int64 {
	return max(1<<20, compressed*int64(h.opts.MaxGzipRatio))
}

func (h *casHandler) ratioError(digest string) error {
	return fmt.Errorf("upload of %s: it unpacks to more than %d times its compressed size; send it uncompressed: %w",
		digest, h.opts.MaxGzipRatio, model.ErrTooLarge)
}

// receive verifies an upload and hands it to the store only if its bytes
// hash to digest (and number declared, unless -1) and the store lacks it.
//
// What is held while verifying is what came over the wire: a compressed
// upload is spooled compressed, unpacked once to be hashed (into nothing)
// and once more into the store when it proved right. So a decompression
// bomb costs at most its own size on disk, and its unpacking stops at
// MaxBlobSize bytes or at MaxGzipRatio times the compressed bytes read,
// whichever comes first. The spools of all uploads share MaxTempBytes.
func (h *casHandler) receive(ctx context.Context, digest string, algo isolate.Algo, body io.Reader, gzipped bool, declared int64) (size int64, stored bool, err error) {
	sp := &spool{dir: h.opts.TempDir, used: &h.temp, limit: h.opts.MaxTempBytes}
	defer sp.Close()
	hash := algo.New()
	max := h.opts.MaxBlobSize
	var n int64
	if gzipped {
		wire := &wireCounter{r: io.TeeReader(io.LimitReader(body, maxCompressedSize(max)), sp)}
		zr, zerr := gzip.NewReader(wire)
		if zerr != nil {
			return 0, false, fmt.Errorf("upload of %s: reading the gzip header: %v: %w", digest, zerr, model.ErrInvalid)
		} else {
			n, err = io.Copy(hash, &ratioReader{r: io.LimitReader(zr, max+1), wire: wire, allow: h.unpackAllowance})
			zr.Close()
		}
	} else {
		n, err = io.Copy(io.MultiWriter(sp, hash), io.LimitReader(body, max+1))
	}
	if sp.err != nil {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, sp.err)
	}
	if errors.Is(err, errRatio) {
		return 0, false, h.ratioError(digest)
	}
	if err != nil {
		// The client went away or sent a broken body: its fault, not ours.
		return 0, false, fmt.Errorf("upload of %s: reading the body: %v: %w", digest, err, model.ErrInvalid)
	}
	if n > max {
		return 0, false, fmt.Errorf("upload of %s: blob over %d bytes: %w", digest, max, model.ErrTooLarge)
	}
	if declared >= 0 && n != declared {
		return 0, false, fmt.Errorf("upload of %s: %d bytes sent, %s says %d: %w", digest, n, SizeHeader, declared, model.ErrInvalid)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != digest {
		return 0, false, fmt.Errorf("upload of %s: the %d bytes sent hash to %s, not to the digest they were sent under: %w",
			digest, n, got, model.ErrInvalid)
	}
	if ok, err := h.cas.g.refresh(ctx, digest); err != nil {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
	} else if ok {
		return n, false, nil
	}
	r, err := sp.reader()
	if err != nil {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
	}
	if gzipped {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
		}
		defer zr.Close()
		r = zr
	}
	if err := h.cas.g.put(ctx, digest, r, n); err != nil {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
	}
	return n, true, nil
}

// wireCounter counts the bytes read through it.
type wireCounter struct {
	r io.Reader
	n int64
}

func (c *wireCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

var errRatio = errors.New("unpacks too far")

// ratioReader fails once the bytes unpacked pass what the compressed bytes
// read so far allow.
type ratioReader struct {
	r     io.Reader
	wire  *wireCounter
	allow func(compressed int64) int64
	n     int64
}

func (r *ratioReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.n += int64(n)
	if r.n > r.allow(r.wire.n) {
		return n, errRatio
	}
	return n, err
}

func (h *casHandler) get(w http.ResponseWriter, r *http.Request) {
	digest := chi.URLParam(r, "digest")
	if _, err := isolate.AlgoOf(digest); err != nil {
		h.fail(w, r, err)
		return
	}
	setHeaders := func(size int64) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set(SizeHeader, strconv.FormatInt(size, 10))
		// The name is the content: it never changes.
		w.Header().Set("ETag", `"`+digest+`"`)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		w.Header().Set("Vary", "Accept-Encoding")
	}
	if r.Method == http.MethodHead {
		_, info, ok, err := h.cas.g.locate(r.Context(), digest)
		if err == nil && !ok {
			err = blob.ErrNotFound
		}
		if err != nil {
			h.fail(w, r, storeErr(digest, err))
			return
		}
		setHeaders(info.Size)
		return
	}
	rc, info, err := h.cas.g.get(r.Context(), digest)
	if err != nil {
		h.fail(w, r, storeErr(digest, err))
		return
	}
	defer rc.Close()
	setHeaders(info.Size)
	var body io.Reader = rc
	if info.Size >= minCompressSize && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		br := bufio.NewReaderSize(rc, compressSample)
		sample, _ := br.Peek(compressSample) // short at the end of the blob; an error shows again below
		body = br
		if compressible(&h.gz, sample) {
			w.Header().Del("Content-Length")
			w.Header().Set("Content-Encoding", "gzip")
			w.Header().Set("ETag", `"`+digest+`.gz"`)
			zw := h.gz.get(w)
			defer h.gz.put(zw)
			if _, err := io.Copy(zw, br); err != nil {
				h.log.WarnContext(r.Context(), "cas get: sending blob", "digest", digest, "err", err)
				return // no gzip trailer: the client sees a broken body
			}
			if err := zw.Close(); err != nil {
				h.log.WarnContext(r.Context(), "cas get: sending blob", "digest", digest, "err", err)
			}
			return
		}
	}
	if _, err := io.Copy(w, body); err != nil {
		// Too late for an error body; the short body tells the client.
		h.log.WarnContext(r.Context(), "cas get: sending blob", "digest", digest, "err", err)
	}
}

func storeErr(digest string, err error) error {
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("blob %s: %w", digest, model.ErrNotFound)
	}
	return fmt.Errorf("blob %s: %w", digest, err)
}

// fail answers err as a protocol.Error (protocol.WriteError).
func (h *casHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	protocol.WriteError(w, r, h.log, protocol.JSON, err)
}
