package api

import (
	"fmt"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/server"
)

// drainSlave tells a slave to finish what it runs and leave. A slave is no
// user's: under [master] owners_only, where users may change only their
// own jobs, only admins may drain one. The body, when there is one, is an
// empty JSON object.
func (a *API) drainSlave(r *http.Request) (result, error) {
	if a.opt.OwnersOnly && auth.IdentityOf(r.Context()).Role != auth.Admin {
		return result{}, fmt.Errorf("%w: only an admin may drain a slave ([master] owners_only)", model.ErrForbidden)
	}
	if r.ContentLength != 0 {
		var req protocol.Drain
		if err := a.decodeStrict(r, &req); err != nil {
			return result{}, err
		}
	}
	s, err := a.m.Drain(r.Context(), chi.URLParam(r, "id"))
	if err != nil {
		return result{}, err
	}
	return result{value: slaveJSON(s)}, nil
}

func (a *API) capacity(r *http.Request) (result, error) {
	c, err := a.m.Capacity(r.Context())
	if err != nil {
		return result{}, err
	}
	return result{value: capacityJSON(c)}, nil
}

func capacityJSON(c server.Capacity) protocol.Capacity {
	return protocol.Capacity{Queued: c.Queued, Running: c.Running,
		QueuedUnknown: c.QueuedUnknown, RunningUnknown: c.RunningUnknown,
		QueuedWorkMS: c.QueuedWork.Milliseconds(), RunningWorkMS: c.RunningWork.Milliseconds(),
		SlavesAlive: c.SlavesAlive, SlotsAlive: c.SlotsAlive, SlavesDraining: c.SlavesDraining,
		SlotsPerSlave: c.SlotsPerSlave}
}
