package protocol

import (
	"errors"
	"net/http"

	"github.com/dist-test/dist_test/internal/model"
)

// errorKinds is the one table between error kinds, HTTP statuses and the
// codes in Error bodies. The servers answer through it (StatusOf, in
// WriteError); clients rebuild the kind of an answer through it (KindOf, in
// StatusError), so that errors.Is works across the wire.
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
	{model.ErrUnsupported, http.StatusUnsupportedMediaType, "unsupported"},
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

// KindOf is StatusOf read backwards: the model error of an answer with this
// status and code. The code decides when it names a kind; an answer
// without one (from a proxy, or a server that is not dist_test's) gets the
// kind of its status when a single kind has that status (not 409, which
// both ErrExists and ErrConflict answer), and nil otherwise.
func KindOf(status int, code string) error {
	if code != "" {
		for _, k := range errorKinds {
			if k.code == code {
				return k.err
			}
		}
	}
	var kind error
	for _, k := range errorKinds {
		if k.status == status {
			if kind != nil {
				return nil
			}
			kind = k.err
		}
	}
	return kind
}
