package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// pageActions are the job page's buttons: plain HTML forms, so that they
// work without JavaScript, posting to these routes, which answer with the
// job's page again. They need write access like the JSON calls they
// mirror, owners_only applies, and a post from another site is refused
// (http.CrossOriginProtection, around every route).
func (a *API) pageActions(r chi.Router, write func(http.Handler) http.Handler) {
	r.With(write).Post("/job/cancel", a.pageAction(func(r *http.Request, id string) error {
		_, err := a.m.Cancel(r.Context(), id)
		return err
	}))
	r.With(write).Post("/job/retry", a.pageAction(func(r *http.Request, id string) error {
		_, err := a.m.Retry(r.Context(), id, nil)
		return err
	}))
}

// pageAction runs do on the job named by the form's job_id and sends the
// browser back to the job's page (303, so that a reload does not post
// again); errors are answered as an HTML page.
func (a *API) pageAction(do func(r *http.Request, jobID string) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		fail := func(err error) { protocol.WriteError(w, r, a.log, protocol.HTML, err) }
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				fail(fmt.Errorf("%w: form over 64 KiB", model.ErrTooLarge))
			} else {
				fail(fmt.Errorf("%w: malformed form", model.ErrInvalid))
			}
			return
		}
		id := r.PostForm.Get("job_id")
		if err := a.mayChange(r, id); err != nil {
			fail(err)
			return
		}
		if err := do(r, id); err != nil {
			fail(err)
			return
		}
		http.Redirect(w, r, "/job?job_id="+url.QueryEscape(id), http.StatusSeeOther)
	}
}
