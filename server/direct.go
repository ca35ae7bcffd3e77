package server

import (
	"context"
	"io"

	"github.com/dist-test/dist_test/internal/model"
	"github.com/dist-test/dist_test/internal/protocol"
)

// Direct is the master as a slave in the same process sees it (dist_test
// local): the calls of the slave's protocol made on the Master itself,
// without HTTP and JSON between them. It answers as the API does, with
// the same errors (model.ErrConflict and the other kinds).
type Direct struct{ M *Master }

// Register registers a slave and answers with the intervals it keeps.
func (d Direct) Register(ctx context.Context, r protocol.Register) (protocol.Registered, error) {
	s, err := d.M.Register(ctx, r)
	if err != nil {
		return protocol.Registered{}, err
	}
	cfg := d.M.Config()
	return protocol.Registered{SlaveID: s.ID, HeartbeatIntervalMS: cfg.HeartbeatInterval.Milliseconds(),
		TouchIntervalMS: (cfg.TTR / 6).Milliseconds()}, nil
}

func (d Direct) Heartbeat(ctx context.Context, slaveID string, hb protocol.Heartbeat) (protocol.HeartbeatReply, error) {
	return d.M.Heartbeat(ctx, slaveID, hb)
}

func (d Direct) Deregister(ctx context.Context, slaveID string) error {
	return d.M.Deregister(ctx, slaveID)
}

func (d Direct) Start(ctx context.Context, s protocol.Start) (protocol.Started, error) {
	a, spec, err := d.M.Start(ctx, s)
	if err != nil {
		return protocol.Started{}, err
	}
	return protocol.Started{Lease: a.Lease, Spec: protocol.SpecFrom(spec)}, nil
}

func (d Direct) Upload(ctx context.Context, lease, name string, r io.Reader, size int64) error {
	_, err := d.M.Upload(ctx, lease, name, r, size)
	return err
}

func (d Direct) Finish(ctx context.Context, lease string, f protocol.Finish) (protocol.Finished, error) {
	out, requeued, err := d.M.Finish(ctx, lease, f)
	switch {
	case err != nil:
		return protocol.Finished{}, err
	case requeued:
		return protocol.Finished{State: string(model.Queued), Requeued: true}, nil
	}
	return protocol.Finished{State: string(out.Attempt.State), Retried: out.Next != nil}, nil
}

func (d Direct) Abort(ctx context.Context, lease, reason string) error {
	return d.M.Abort(ctx, lease, reason)
}
