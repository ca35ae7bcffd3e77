package protocol

import (
	"errors"
	"net/http"

	"github.com/dist-test/dist_test/internal/model"
)

// errorKinds is the one table between error kinds, HTTP statuses and the
// codes in Error bodies. The master uses it to answer, the client to rebuild
// the master's error so that errors.Is works across the wire.
var errorKinds = []struct {
	err    error
	status int
	code   string
}{
	{model.ErrInvalid, http.StatusBadRequest, "invalid"},
	{model.ErrNotFound, http.StatusNotFound, "not_found"},
	{model.ErrExists, http.StatusConflict, "exists"},
	{model.ErrConflict, http.StatusConflict, "conflict"},
	{model.ErrTooLarge, http.StatusRequestEntityTooLarge, "too_large"},
	{model.ErrPoison, http.StatusGone, "poison"},
	{model.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated"},
	{model.ErrForbidden, http.StatusForbidden, "forbidden"},
	{model.ErrUnavailable, http.StatusServiceUnavailable, "unavailable"},
}

// StatusOf returns the HTTP status and code for err: 500/"internal" for an
// error of no known kind.
func StatusOf(err error) (int, string) {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.status, k.code
		}
	}
	return http.StatusInternalServerError, "internal"
}

// KindOf returns the model error for a code from an Error body, or nil.
func KindOf(code string) error {
	for _, k := range errorKinds {
		if k.code == code {
			return k.err
		}
	}
	return nil
}
