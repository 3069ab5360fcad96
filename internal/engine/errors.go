package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptrace"
	"sync/atomic"
	"syscall"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
)

// Class says who is at fault for an error, and so whether it counts against
// the host's circuit breaker.
type Class int

const (
	ClassNone    Class = iota // no error
	ClassHost                 // the host is at fault: counts against its breaker
	ClassJob                  // the job is at fault: fail the job, not the host
	ClassIgnored              // nobody is: caller cancelled, expected 404/409
)

func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassHost:
		return "host"
	case ClassJob:
		return "job"
	case ClassIgnored:
		return "ignored"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Error is an error from one Docker API call on one host.
type Error struct {
	Host  string // the host's name
	Op    string // e.g. "container create"
	Class Class
	Err   error
	// NotSent: the request never reached the daemon (no connection, or
	// the connection failed before the request was written), so the
	// daemon cannot have acted on it.
	NotSent bool
	// Answered: the daemon answered with an error status. It read the
	// request and refused it; nothing happened beyond what it said.
	Answered bool
}

func (e *Error) Error() string {
	return fmt.Sprintf("engine %s: %s: %s: %v", e.Host, e.Op, e.Class, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// ClassOf returns the class of err: ClassNone for nil, the class recorded in
// an *Error in its chain, and ClassHost for any other error (an error nobody
// classified is most likely the transport's).
func ClassOf(err error) Class {
	if err == nil {
		return ClassNone
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Class
	}
	if errors.Is(err, context.Canceled) {
		return ClassIgnored
	}
	return ClassHost
}

// IsUnreachable reports whether err proves that the request never reached
// the engine (connection refused, no such socket, DNS failure, TLS
// handshake failure: nothing was written on a connection), so the engine
// cannot have acted on it. A deadline, an EOF or a reset once the request
// was written is not this, whatever the Docker client calls it: the engine
// may have acted, and the outcome is unknown.
func IsUnreachable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.NotSent && e.Class == ClassHost
}

// Answered reports whether err is the engine's own answer (an error status):
// it read the request and refused it, so the outcome is known.
func Answered(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Answered
}

// traceSent returns ctx traced so that sent reports whether a request made
// with it had its headers written to a connection (the daemon may act on
// it from then on), on its last try: the transport tries again on a new
// connection (GetConn) only a request the old one provably did not take,
// or one that is safe to repeat (GET, HEAD), so a write to a reused
// connection that the daemon had closed, followed by a refused dial, is a
// request that never left.
func traceSent(ctx context.Context) (context.Context, *atomic.Bool) {
	sent := new(atomic.Bool)
	return httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GetConn:      func(string) { sent.Store(false) },
		WroteHeaders: func() { sent.Store(true) },
	}), sent
}

// markNotSent records on err (an *Error from classify) whether its request
// never left.
func markNotSent(err error, sent *atomic.Bool) {
	var e *Error
	if errors.As(err, &e) && !sent.Load() {
		e.NotSent = true
	}
}

// IsHostFault reports whether err counts against the host.
func IsHostFault(err error) bool { return ClassOf(err) == ClassHost }

// Sentinel errors callers can test with errors.Is.
var (
	// ErrNameConflict: a container with the requested name exists. For a
	// launch retried after a crash this means "adopt it if it is ours".
	ErrNameConflict = errors.New("container name already in use")
	// ErrNotFound: the container or image does not exist.
	ErrNotFound = errors.New("not found")
)

// classify wraps err from op on host. callerCtx is the context the caller
// passed in (before this package added the call's deadline): if it is done,
// the error is the caller's own doing and ignored. expect lists the errdefs
// classes that are expected for this call (ignored rather than job faults).
func classify(callerCtx context.Context, host, op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) {
		return err
	}
	wrap := func(c Class, e error) error { return &Error{Host: host, Op: op, Class: c, Err: e} }

	// The caller gave up: whatever the call says, it is not the host's fault.
	if callerCtx.Err() != nil {
		return wrap(ClassIgnored, fmt.Errorf("%w (caller: %w)", err, context.Cause(callerCtx)))
	}
	// Our own per-call deadline passed while the caller still waited: the
	// host did not answer in time.
	if errors.Is(err, context.DeadlineExceeded) {
		return wrap(ClassHost, fmt.Errorf("no answer within the call's deadline: %w", err))
	}
	if client.IsErrConnectionFailed(err) {
		return wrap(ClassHost, err)
	}
	answered := func(c Class, e error) error {
		return &Error{Host: host, Op: op, Class: c, Err: e, Answered: true}
	}
	switch {
	case cerrdefs.IsNotFound(err):
		return answered(ClassJob, errors.Join(ErrNotFound, err))
	case cerrdefs.IsConflict(err):
		return answered(ClassIgnored, errors.Join(ErrNameConflict, err))
	case cerrdefs.IsNotModified(err):
		return answered(ClassIgnored, err)
	case cerrdefs.IsInvalidArgument(err), cerrdefs.IsFailedPrecondition(err),
		cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		return answered(ClassJob, err)
	case cerrdefs.IsInternal(err), cerrdefs.IsUnavailable(err), cerrdefs.IsResourceExhausted(err),
		cerrdefs.IsNotImplemented(err), cerrdefs.IsUnknown(err):
		return answered(ClassHost, err)
	}
	var netErr net.Error
	var tlsErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	switch {
	case errors.As(err, &tlsErr), errors.As(err, &unknownAuth):
		return wrap(ClassHost, err)
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return wrap(ClassHost, err)
	}
	// Unclassified: count it against the host; a job fault always arrives
	// as a typed 4xx.
	return wrap(ClassHost, err)
}
