package isolate

import (
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

	"golang.org/x/sync/errgroup"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// MaxMissingDigests bounds the digests of one missing-query.
const MaxMissingDigests = 10000

// CASOptions configures the CAS handler.
type CASOptions struct {
	MaxBlobSize int64 // largest blob accepted; 8 GiB when 0
	// TempDir holds uploads while they are verified; os.TempDir() when empty.
	TempDir string
	Logger  *slog.Logger // nothing is logged when nil
}

// missingRequest and missingResponse are the bodies of POST .../missing.
type missingRequest struct {
	Digests []string `json:"digests"`
}

type missingResponse struct {
	Missing []string `json:"missing"`
}

// casKey is where a blob lives in the store.
func casKey(digest string) string { return "cas/" + digest }

// CAS answers questions about the content-addressed inputs kept in a blob
// store, for a master that serves them itself.
type CAS struct{ store blob.Store }

// NewCAS returns the CAS kept in store.
func NewCAS(store blob.Store) *CAS { return &CAS{store: store} }

// Missing returns, once each and in order, the digests that are not stored.
func (c *CAS) Missing(ctx context.Context, digests []string) ([]string, error) {
	found := make([]bool, len(digests))
	// A remote store answers each Stat in a round trip: ask in parallel.
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i, d := range digests {
		g.Go(func() error {
			_, err := c.store.Stat(gctx, casKey(d))
			switch {
			case err == nil:
				found[i] = true
			case !errors.Is(err, blob.ErrNotFound):
				return fmt.Errorf("stat %s: %w", d, err)
			}
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
	store blob.Store
	opts  CASOptions
	log   *slog.Logger
}

// NewCASHandler serves the content-addressed store of task inputs under
// protocol.PathCAS; mount it on a mux at that prefix, with full paths:
//
//	POST /api/v1/cas/missing   {"digests": [...]} -> {"missing": [...]}
//	PUT  /api/v1/cas/{digest}  the bytes; 201 stored, 200 already there
//	GET, HEAD /api/v1/cas/{digest}
//
// An upload is hashed as it streams to a temporary file and reaches the
// store only once its bytes match its digest, so the store never holds a
// blob whose name lies about its content.
func NewCASHandler(store blob.Store, opts CASOptions) http.Handler {
	if opts.MaxBlobSize <= 0 {
		opts.MaxBlobSize = 8 << 30
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	h := &casHandler{store: store, opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.PathCAS+"/missing", h.missing)
	mux.HandleFunc("PUT "+protocol.PathCAS+"/{digest}", h.put)
	mux.HandleFunc("GET "+protocol.PathCAS+"/{digest}", h.get) // and HEAD
	return mux
}

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
		if _, err := AlgoOf(d); err != nil {
			h.fail(w, r, err)
			return
		}
	}
	missing, err := NewCAS(h.store).Missing(r.Context(), req.Digests)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	resp := missingResponse{Missing: missing}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(resp)
}

func (h *casHandler) put(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	algo, err := AlgoOf(digest)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	max := h.opts.MaxBlobSize
	if r.ContentLength > max {
		h.fail(w, r, fmt.Errorf("blob of %d bytes, at most %d accepted: %w", r.ContentLength, max, model.ErrTooLarge))
		return
	}
	size, stored, err := h.receive(r.Context(), digest, algo, r.Body)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	status := http.StatusOK
	if stored {
		status = http.StatusCreated
	}
	h.log.Debug("cas put", "digest", digest, "size", size, "stored", stored)
	w.WriteHeader(status)
}

// receive streams body to a temporary file while hashing it, and hands it
// to the store only if it matches digest and the store lacks it.
func (h *casHandler) receive(ctx context.Context, digest string, algo Algo, body io.Reader) (size int64, stored bool, err error) {
	tmp, err := os.CreateTemp(h.opts.TempDir, "cas-put-*")
	if err != nil {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
	}
	defer func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}()
	hash := algo.New()
	max := h.opts.MaxBlobSize
	n, err := io.Copy(io.MultiWriter(tmp, hash), io.LimitReader(body, max+1))
	if err != nil {
		// The client went away or sent a broken body: its fault, not ours.
		return 0, false, fmt.Errorf("upload of %s: reading the body: %v: %w", digest, err, model.ErrInvalid)
	}
	if n > max {
		return 0, false, fmt.Errorf("upload of %s: blob over %d bytes: %w", digest, max, model.ErrTooLarge)
	}
	if got := hex.EncodeToString(hash.Sum(nil)); got != digest {
		return 0, false, fmt.Errorf("upload of %s: the %d bytes sent hash to %s, not to the digest they were sent under: %w",
			digest, n, got, model.ErrInvalid)
	}
	if _, err := h.store.Stat(ctx, casKey(digest)); err == nil {
		return n, false, nil
	} else if !errors.Is(err, blob.ErrNotFound) {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
	}
	if err := h.store.Put(ctx, casKey(digest), tmp, n); err != nil {
		return 0, false, fmt.Errorf("upload of %s: %w", digest, err)
	}
	return n, true, nil
}

func (h *casHandler) get(w http.ResponseWriter, r *http.Request) {
	digest := r.PathValue("digest")
	if _, err := AlgoOf(digest); err != nil {
		h.fail(w, r, err)
		return
	}
	setHeaders := func(size int64) {
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		// The name is the content: it never changes.
		w.Header().Set("ETag", `"`+digest+`"`)
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	if r.Method == http.MethodHead {
		info, err := h.store.Stat(r.Context(), casKey(digest))
		if err != nil {
			h.fail(w, r, storeErr(digest, err))
			return
		}
		setHeaders(info.Size)
		return
	}
	rc, info, err := h.store.Get(r.Context(), casKey(digest))
	if err != nil {
		h.fail(w, r, storeErr(digest, err))
		return
	}
	defer rc.Close()
	setHeaders(info.Size)
	if _, err := io.Copy(w, rc); err != nil {
		// Too late for an error body; the short body tells the client.
		h.log.Warn("cas get: sending blob", "digest", digest, "err", err)
	}
}

func storeErr(digest string, err error) error {
	if errors.Is(err, blob.ErrNotFound) {
		return fmt.Errorf("blob %s: %w", digest, model.ErrNotFound)
	}
	return fmt.Errorf("blob %s: %w", digest, err)
}

// fail answers with a protocol.Error body, the status from the one table
// of error kinds; 5xx are logged as errors, 4xx at debug.
func (h *casHandler) fail(w http.ResponseWriter, r *http.Request, err error) {
	status, code := protocol.StatusOf(err)
	if status >= 500 {
		h.log.Error("cas request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	} else {
		h.log.Debug("cas request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(protocol.Error{Error: err.Error(), Code: code})
}
