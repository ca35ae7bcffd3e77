package beanstalk

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"strings"
	"time"

	"github.com/beanstalkd/go-beanstalk"
)

// defaultPort is beanstalkd's port, used when the address names only a host.
const defaultPort = "11300"

// ioTimeout bounds how long one command waits for beanstalkd's answer
// (beyond a reserve's own timeout): a server that vanished without closing
// the connection, as after a host crash, is then noticed and redialed.
const ioTimeout = 10 * time.Second

// nameChars are the characters beanstalkd allows in a tube name.
const nameChars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+/;.$_()"

// maxDuration is the longest delay or TTR beanstalkd accepts (32-bit
// seconds).
const maxDuration = math.MaxUint32 * time.Second

// conn is one connection to beanstalkd. One goroutine at a time runs
// commands on it; close may be called from any goroutine, and cuts short a
// command in progress.
type conn struct {
	nc    net.Conn
	bc    *beanstalk.Conn
	tube  *beanstalk.Tube    // put and stats-tube
	watch *beanstalk.TubeSet // reserve: watches only the tube, not "default"
}

// dial connects to beanstalkd. The error names the address, for the
// start-up of a master or slave that cannot reach it.
func dial(ctx context.Context, addr, tube string, timeout time.Duration) (*conn, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		// The net error repeats the address; keep only its cause.
		var op *net.OpError
		if errors.As(err, &op) && op.Err != nil {
			err = op.Err
		}
		return nil, fmt.Errorf("cannot connect to beanstalkd at %s: %w", addr, err)
	}
	bc := beanstalk.NewConn(nc)
	return &conn{
		nc:    nc,
		bc:    bc,
		tube:  beanstalk.NewTube(bc, tube),
		watch: beanstalk.NewTubeSet(bc, tube),
	}, nil
}

func (cn *conn) close() { _ = cn.nc.Close() }

// do runs fn, one exchange with beanstalkd, with the connection's deadline
// limit from now. With interrupt, the end of ctx also cuts fn short; the
// connection is then broken and must be dropped, and do returns ctx's error.
func (cn *conn) do(ctx context.Context, limit time.Duration, interrupt bool, fn func() error) error {
	if err := cn.nc.SetDeadline(time.Now().Add(limit)); err != nil {
		return err
	}
	if !interrupt {
		return fn()
	}
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		_ = cn.nc.SetDeadline(time.Now())
		close(fired)
	})
	err := fn()
	if !stop() {
		// Let it finish, so that it cannot move the deadline of the
		// next command.
		<-fired
	}
	if broken(err) && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// answers are the errors go-beanstalk makes of beanstalkd's replies: after
// them the connection is still in step. Any other error (I/O, a garbled
// reply, an interrupted command) leaves it unusable.
var answers = []error{
	beanstalk.ErrNotFound, beanstalk.ErrTimeout, beanstalk.ErrDeadline,
	beanstalk.ErrBuried, beanstalk.ErrJobTooBig, beanstalk.ErrDraining,
	beanstalk.ErrOOM, beanstalk.ErrInternal, beanstalk.ErrBadFormat,
	beanstalk.ErrUnknown, beanstalk.ErrNoCRLF, beanstalk.ErrNotIgnored,
}

// broken reports whether err leaves the connection unusable.
func broken(err error) bool {
	if err == nil {
		return false
	}
	for _, a := range answers {
		if errors.Is(err, a) {
			return false
		}
	}
	return true
}

// seconds rounds d up to whole seconds, as beanstalkd counts them, so that
// nothing happens earlier than asked.
func seconds(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	if d >= maxDuration {
		return maxDuration
	}
	s := d.Truncate(time.Second)
	if s < d {
		s += time.Second
	}
	return s
}

// hostPort adds beanstalkd's port to an address that names only a host.
func hostPort(addr string) (string, error) {
	if addr == "" {
		return "", errors.New("beanstalkd address is empty (want host:port)")
	}
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return addr, nil
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	if strings.ContainsAny(host, "[]") {
		return "", fmt.Errorf("bad beanstalkd address %q (want host:port)", addr)
	}
	return net.JoinHostPort(host, defaultPort), nil
}

// checkTube checks a tube name against beanstalkd's rules up front, rather
// than have every command refused later.
func checkTube(tube string) error {
	switch {
	case tube == "":
		return errors.New("beanstalkd tube name is empty")
	case len(tube) >= 200:
		return fmt.Errorf("beanstalkd tube name %q is too long (at most 199 bytes)", tube)
	case strings.HasPrefix(tube, "-"):
		return fmt.Errorf("beanstalkd tube name %q may not begin with a hyphen", tube)
	}
	for _, r := range tube {
		if !strings.ContainsRune(nameChars, r) {
			return fmt.Errorf("beanstalkd tube name %q has %q: use letters, digits and -+/;.$_()", tube, r)
		}
	}
	return nil
}
