package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/dist-test/dist_test/internal/auth"
	"github.com/dist-test/dist_test/internal/linksign"
	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
	"github.com/dist-test/dist_test/internal/store"
)

func (a *API) register(r *http.Request) (result, error) {
	var req protocol.Register
	if err := a.decode(r, &req); err != nil {
		return result{}, err
	}
	s, err := a.m.Register(r.Context(), req)
	if err != nil {
		return result{}, err
	}
	cfg := a.m.Config()
	return result{http.StatusCreated, protocol.Registered{SlaveID: s.ID,
		HeartbeatIntervalMS: cfg.HeartbeatInterval.Milliseconds(),
		TouchIntervalMS:     (cfg.TTR / 6).Milliseconds()}}, nil
}

func (a *API) heartbeat(r *http.Request) (result, error) {
	var req protocol.Heartbeat
	if err := a.decode(r, &req); err != nil {
		return result{}, err
	}
	reply, err := a.m.Heartbeat(r.Context(), chi.URLParam(r, "id"), req)
	if err != nil {
		return result{}, err
	}
	return result{value: reply}, nil
}

func (a *API) deregister(r *http.Request) (result, error) {
	if err := a.m.Deregister(r.Context(), chi.URLParam(r, "id")); err != nil {
		return result{}, err
	}
	return result{status: http.StatusNoContent}, nil
}

func (a *API) listSlaves(r *http.Request) (result, error) {
	slaves, err := a.m.Slaves(r.Context(), r.URL.Query().Get("alive") == "1")
	if err != nil {
		return result{}, err
	}
	out := protocol.SlaveList{Slaves: make([]protocol.Slave, len(slaves))}
	for i, s := range slaves {
		out.Slaves[i] = slaveJSON(s)
	}
	return result{value: out}, nil
}

func slaveJSON(s model.Slave) protocol.Slave {
	return protocol.Slave{ID: s.ID, Hostname: s.Hostname, Slots: s.Slots, Version: s.Version,
		State: string(s.State), RegisteredAt: s.RegisteredAt.UTC(), LastHeartbeat: s.LastHeartbeat.UTC(),
		Running: s.Running, Resources: protocol.Resources{CPUs: s.CPUs, MemoryBytes: s.MemoryBytes,
			DiskFreeBytes: s.DiskFreeBytes}}
}

func (a *API) listEvents(r *http.Request) (result, error) {
	q := r.URL.Query()
	f := store.EventFilter{SlaveID: q.Get("slave"), JobID: q.Get("job")}
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return result{}, fmt.Errorf("%w: after must be an event id, got %q", model.ErrInvalid, v)
		}
		f.After = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return result{}, fmt.Errorf("%w: limit must be from 1 to 10000, got %q", model.ErrInvalid, v)
		}
		f.Limit = n
	}
	events, err := a.m.Events(r.Context(), f)
	if err != nil {
		return result{}, err
	}
	out := protocol.EventList{Events: make([]protocol.Event, len(events))}
	for i, e := range events {
		out.Events[i] = protocol.Event{ID: e.ID, At: e.At.UTC(), Kind: string(e.Kind), SlaveID: e.SlaveID,
			JobID: e.JobID, TaskID: e.TaskID, Detail: e.Detail}
		if e.Attempt >= 0 {
			n := e.Attempt
			out.Events[i].Attempt = &n
		}
	}
	return result{value: out}, nil
}

func (a *API) start(r *http.Request) (result, error) {
	var req protocol.Start
	if err := a.decode(r, &req); err != nil {
		return result{}, err
	}
	at, spec, err := a.m.Start(r.Context(), req)
	if err != nil {
		return result{}, err
	}
	return result{value: protocol.Started{Lease: at.Lease, Spec: protocol.SpecFrom(spec)}}, nil
}

func (a *API) upload(r *http.Request) (result, error) {
	size := r.ContentLength // -1 when unknown
	_, err := a.m.Upload(r.Context(), chi.URLParam(r, "lease"), chi.URLParam(r, "name"), r.Body, size)
	if err != nil {
		return result{}, err
	}
	return result{status: http.StatusNoContent}, nil
}

func (a *API) finish(r *http.Request) (result, error) {
	var req protocol.Finish
	if err := a.decode(r, &req); err != nil {
		return result{}, err
	}
	out, requeued, err := a.m.Finish(r.Context(), chi.URLParam(r, "lease"), req)
	if err != nil {
		return result{}, err
	}
	if requeued {
		return result{value: protocol.Finished{State: string(model.Queued), Requeued: true}}, nil
	}
	return result{value: protocol.Finished{State: string(out.Attempt.State), Retried: out.Next != nil}}, nil
}

// output serves a stored output when the blob store cannot presign links.
// A link signed by a master (OutputLink) is served to whoever holds it
// until it expires; without a valid signature the caller needs read access.
// A signature that is wrong or expired is refused even where reads are
// open, so that a link's holder learns it is stale.
func (a *API) output(w http.ResponseWriter, r *http.Request) {
	key := "outputs/" + chi.URLParam(r, "*")
	switch err := a.m.CheckOutputLink(key, r.URL.Query()); {
	case errors.Is(err, linksign.ErrUnsigned):
		g := a.opt.Guard
		id, err := g.Identify(r)
		if err == nil {
			err = g.Allow(auth.Read, id)
		}
		if err != nil {
			g.Refuse(w, r, err)
			return
		}
	case err != nil:
		a.writeError(w, r, fmt.Errorf("%w: %v: ask the master for the task's links again", model.ErrForbidden, err))
		return
	}
	rc, info, err := a.m.OpenOutput(r.Context(), key)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	defer rc.Close()
	name := key[strings.LastIndexByte(key, '/')+1:]
	ctype := "text/plain; charset=utf-8"
	if strings.HasSuffix(name, ".zip") {
		ctype = "application/zip"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf("inline; filename=%q", name))
	if rs, ok := rc.(io.ReadSeeker); ok {
		// A range of a log (the client reads the end of a failed test's)
		// where the store can seek: the local one.
		http.ServeContent(w, r, "", time.Time{}, rs)
		return
	}
	w.Header().Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodHead {
		return
	}
	if _, err := io.Copy(w, rc); err != nil && !errors.Is(err, r.Context().Err()) {
		a.log.WarnContext(r.Context(), "serving output", "key", key, "err", err)
	}
}

func (a *API) abort(r *http.Request) (result, error) {
	var req protocol.Abort
	if r.ContentLength != 0 {
		if err := a.decode(r, &req); err != nil {
			return result{}, err
		}
	}
	if err := a.m.Abort(r.Context(), chi.URLParam(r, "lease"), req.Reason); err != nil {
		return result{}, err
	}
	return result{status: http.StatusNoContent}, nil
}
