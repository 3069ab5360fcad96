package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
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

// IsUnreachable reports whether err is a failure to reach the engine at
// all (connection refused, no such socket, no route): the request was never
// sent, so nothing can have been created. A deadline or a broken connection
// mid-call is not this: the engine may have acted.
func IsUnreachable(err error) bool {
	if client.IsErrConnectionFailed(err) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
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
	switch {
	case cerrdefs.IsNotFound(err):
		return wrap(ClassJob, errors.Join(ErrNotFound, err))
	case cerrdefs.IsConflict(err):
		return wrap(ClassIgnored, errors.Join(ErrNameConflict, err))
	case cerrdefs.IsNotModified(err):
		return wrap(ClassIgnored, err)
	case cerrdefs.IsInvalidArgument(err), cerrdefs.IsFailedPrecondition(err),
		cerrdefs.IsUnauthorized(err), cerrdefs.IsPermissionDenied(err):
		return wrap(ClassJob, err)
	case cerrdefs.IsInternal(err), cerrdefs.IsUnavailable(err), cerrdefs.IsResourceExhausted(err),
		cerrdefs.IsNotImplemented(err), cerrdefs.IsUnknown(err):
		return wrap(ClassHost, err)
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
