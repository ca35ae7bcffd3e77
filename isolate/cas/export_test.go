package cas

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/blob"
	"github.com/dist-test/dist_test/internal/protocol"
)

// MissingRequest lets the tests outside the package write the body of a
// missing-query.
type MissingRequest = missingRequest

// serve is a CAS that serves nothing else: the handler mounted at
// protocol.PathCAS.
func serve(store blob.Store, opts Options) http.Handler {
	r := chi.NewRouter()
	r.Mount(protocol.PathCAS, NewHandler(store, opts))
	return r
}
