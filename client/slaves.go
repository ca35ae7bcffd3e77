package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/dist-test/dist_test/internal/protocol"
)

// Register records a slave with the master. It is not retried: each call
// makes a new registration; the slave's launcher decides when to try again.
func (c *Client) Register(ctx context.Context, r protocol.Register) (protocol.Registered, error) {
	var out protocol.Registered
	if err := c.call(ctx, request{method: http.MethodPost, path: protocol.PathSlaves, in: r, out: &out}); err != nil {
		return protocol.Registered{}, fmt.Errorf("register slave: %w", err)
	}
	return out, nil
}

// Heartbeat tells the master which leases a slave runs; the answer says
// what to stop. Bound ctx by the heartbeat interval: a newer heartbeat
// supersedes one still being retried.
func (c *Client) Heartbeat(ctx context.Context, slaveID string, h protocol.Heartbeat) (protocol.HeartbeatReply, error) {
	var out protocol.HeartbeatReply
	if err := c.call(ctx, request{method: http.MethodPost, path: slavePath(slaveID, "/heartbeat"), in: h, out: &out, mode: idempotent}); err != nil {
		return protocol.HeartbeatReply{}, fmt.Errorf("heartbeat of slave %s: %w", slaveID, err)
	}
	return out, nil
}

// Deregister tells the master that a slave leaves.
func (c *Client) Deregister(ctx context.Context, slaveID string) error {
	if err := c.call(ctx, request{method: http.MethodDelete, path: slavePath(slaveID, ""), mode: idempotent}); err != nil {
		return fmt.Errorf("deregister slave %s: %w", slaveID, err)
	}
	return nil
}

// Slaves lists the slaves the master knows.
func (c *Client) Slaves(ctx context.Context) ([]protocol.Slave, error) {
	var out protocol.SlaveList
	if err := c.call(ctx, request{method: http.MethodGet, path: protocol.PathSlaves, out: &out, mode: idempotent}); err != nil {
		return nil, fmt.Errorf("list slaves: %w", err)
	}
	return out.Slaves, nil
}

// Start asks to run the attempt of a reserved queue entry. It is not
// retried: with no answer the slave releases the entry and moves on. A
// stale entry fails with model.ErrConflict.
func (c *Client) Start(ctx context.Context, s protocol.Start) (protocol.Started, error) {
	var out protocol.Started
	if err := c.call(ctx, request{method: http.MethodPost, path: protocol.PathAttempts + "/start", in: s, out: &out}); err != nil {
		return protocol.Started{}, fmt.Errorf("start %s attempt %d: %w", s.Entry.TaskID, s.Entry.Attempt, err)
	}
	return out, nil
}

// Upload stores one output of a run (protocol.OutputStdout, OutputStderr or
// OutputArtifacts): size bytes from r (-1 when unknown). It is retried only
// when r is an io.Seeker, which lets each try start from the beginning.
func (c *Client) Upload(ctx context.Context, lease, name string, r io.Reader, size int64) error {
	seeker, canRewind := r.(io.Seeker)
	mode := never
	if canRewind {
		mode = idempotent
	}
	target := c.url(attemptPath(lease, "/outputs/"+url.PathEscape(name)), nil)
	err := c.retry(ctx, mode, func(ctx context.Context, n int) error {
		if n > 1 {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				return permanent(fmt.Errorf("rewinding the %s: %w", name, err))
			}
		}
		return c.once(ctx, http.MethodPut, target, r, size, nil)
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", name, err)
	}
	return nil
}

// Finish reports the result of a run. It is idempotent on the master, so
// it is retried; a lease that is no longer current fails with
// model.ErrConflict, and the slave then drops the result.
func (c *Client) Finish(ctx context.Context, lease string, f protocol.Finish) (protocol.Finished, error) {
	var out protocol.Finished
	if err := c.call(ctx, request{method: http.MethodPost, path: attemptPath(lease, "/finish"), in: f, out: &out, mode: idempotent}); err != nil {
		return protocol.Finished{}, fmt.Errorf("finish: %w", err)
	}
	return out, nil
}

// Abort gives a run back unfinished (the slave is shutting down): the
// master queues the attempt again without using a retry. It is retried
// like Finish; bound ctx by the shutdown deadline. A lease that is no
// longer current (a repeat that the first try already settled, say) fails
// with model.ErrConflict.
func (c *Client) Abort(ctx context.Context, lease, reason string) error {
	if err := c.call(ctx, request{method: http.MethodPost, path: attemptPath(lease, "/abort"), in: protocol.Abort{Reason: reason}, mode: idempotent}); err != nil {
		return fmt.Errorf("abort: %w", err)
	}
	return nil
}

func slavePath(id, rest string) string {
	return protocol.PathSlaves + "/" + url.PathEscape(id) + rest
}

func attemptPath(lease, rest string) string {
	return protocol.PathAttempts + "/" + url.PathEscape(lease) + rest
}

// Drain tells a slave to take no new task, finish and report what it runs,
// and leave. It answers the slave, draining. Draining twice is harmless,
// so it is retried.
func (c *Client) Drain(ctx context.Context, slaveID string) (protocol.Slave, error) {
	var out protocol.Slave
	if err := c.call(ctx, request{method: http.MethodPost, path: slavePath(slaveID, "/drain"), out: &out, mode: idempotent}); err != nil {
		return protocol.Slave{}, fmt.Errorf("drain slave %s: %w", slaveID, err)
	}
	return out, nil
}

// Capacity reads the master's unfinished work and the slots to run it.
func (c *Client) Capacity(ctx context.Context) (protocol.Capacity, error) {
	var out protocol.Capacity
	if err := c.call(ctx, request{method: http.MethodGet, path: protocol.PathCapacity, out: &out, mode: idempotent}); err != nil {
		return protocol.Capacity{}, fmt.Errorf("capacity: %w", err)
	}
	return out, nil
}
