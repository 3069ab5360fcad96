package api

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fusebox/breaker"
	"fusebox/internal/job"
)

// requestError is an error the API itself finds in a request, before or
// instead of calling the Service.
type requestError struct {
	status     int
	code       string
	msg        string
	field      string
	problems   []Problem
	retryAfter time.Duration // sent as Retry-After when > 0
}

func (e *requestError) Error() string { return e.msg }

// HTTPStatus is the status the API answers the error with.
func (e *requestError) HTTPStatus() int { return e.status }

// RetryAfterHint is the requestError's Retry-After.
func (e *requestError) RetryAfterHint() time.Duration { return e.retryAfter }

func badRequest(field, format string, args ...any) *requestError {
	msg := fmt.Sprintf(format, args...)
	return &requestError{status: http.StatusBadRequest, code: CodeInvalid, msg: msg, field: field,
		problems: []Problem{{Field: field, Message: msg}}}
}

// RetryHint is implemented by errors that know when a refused request may
// be tried again; a 429 or 503 answer to such an error carries it as
// Retry-After (rounded up to the second). A *breaker.OpenError is read by
// its RetryAfter field instead; errors of other packages that only have a
// field are given a hint with WithRetryAfter by whoever adapts them.
type RetryHint interface {
	RetryAfterHint() time.Duration
}

// WithRetryAfter returns err (still matched by errors.Is and errors.As) with
// the RetryHint d.
func WithRetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	return &retryAfterError{err: err, d: d}
}

type retryAfterError struct {
	err error
	d   time.Duration
}

func (e *retryAfterError) Error() string                 { return e.err.Error() }
func (e *retryAfterError) Unwrap() error                 { return e.err }
func (e *retryAfterError) RetryAfterHint() time.Duration { return e.d }

// retryAfter returns when err says to retry; 0 if it does not say.
func retryAfter(err error) time.Duration {
	var h RetryHint
	if errors.As(err, &h) && h.RetryAfterHint() > 0 {
		return h.RetryAfterHint()
	}
	var oe *breaker.OpenError
	if errors.As(err, &oe) && oe.RetryAfter > 0 {
		return oe.RetryAfter
	}
	return 0
}

// errorResponse maps err to a status and a body.
func (s *Server) errorResponse(err error) (int, ErrorResponse) {
	var re *requestError
	var ie *InvalidError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		return re.status, ErrorResponse{Error: re.msg, Code: re.code, Field: re.field, Problems: re.problems}
	case errors.As(err, &ie):
		r := ErrorResponse{Error: ie.Msg, Code: CodeInvalid, Problems: ie.Problems}
		if len(ie.Problems) > 0 {
			r.Field = ie.Problems[0].Field
		}
		return http.StatusBadRequest, r
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, ErrorResponse{Code: CodeTooLarge,
			Error: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, job.ErrInvalid):
		return http.StatusBadRequest, invalidResponse(err)
	case errors.Is(err, job.ErrNotFound):
		// The store's own words (and name) stay out of the answer.
		return http.StatusNotFound, ErrorResponse{Error: job.ErrNotFound.Error(), Code: CodeNotFound}
	case errors.As(err, new(*job.NameInUseError)):
		var ne *job.NameInUseError
		errors.As(err, &ne)
		return http.StatusConflict, ErrorResponse{Error: ne.Error() + "; choose another name, or wait for it to end", Code: CodeNameInUse, Field: "name"}
	case errors.Is(err, ErrHostNotFound):
		return http.StatusNotFound, ErrorResponse{Error: err.Error(), Code: CodeHostNotFound}
	case errors.Is(err, ErrReceiverNotFound):
		return http.StatusNotFound, ErrorResponse{Error: err.Error(), Code: CodeReceiverNotFound}
	case errors.Is(err, ErrRunNotFound), errors.Is(err, ErrTemplateNotFound), errors.Is(err, ErrArtifactNotFound):
		return http.StatusNotFound, ErrorResponse{Error: err.Error(), Code: CodeNotFound}
	case errors.Is(err, job.ErrQueueFull):
		return http.StatusTooManyRequests, ErrorResponse{Error: err.Error(), Code: CodeQueueFull}
	case errors.Is(err, job.ErrDuplicate):
		return http.StatusConflict, ErrorResponse{Error: err.Error(), Code: CodeDuplicate}
	case errors.Is(err, job.ErrTerminal):
		return http.StatusConflict, ErrorResponse{Error: err.Error(), Code: CodeTerminal}
	case errors.Is(err, job.ErrConflict):
		return http.StatusConflict, ErrorResponse{Error: err.Error() + "; retry", Code: CodeConflict}
	case errors.Is(err, breaker.ErrOpen):
		return http.StatusServiceUnavailable, ErrorResponse{Error: err.Error(), Code: CodeUnavailable}
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, ErrorResponse{Error: "request timed out: " + err.Error(), Code: CodeUnavailable}
	}
	return http.StatusInternalServerError, ErrorResponse{Error: err.Error(), Code: CodeInternal}
}

// invalidResponse turns a validation error (job.ErrInvalid joined with
// *job.FieldError values) into a body naming every field.
func invalidResponse(err error) ErrorResponse {
	var fes []*job.FieldError
	walk(err, func(e error) {
		if fe, ok := e.(*job.FieldError); ok {
			fes = append(fes, fe)
		}
	})
	if len(fes) == 0 {
		return ErrorResponse{Error: err.Error(), Code: CodeInvalid}
	}
	r := ErrorResponse{Code: CodeInvalid, Field: fes[0].Field}
	parts := make([]string, len(fes))
	for i, fe := range fes {
		msg := fe.Reason
		if fe.Value != nil {
			msg = fmt.Sprintf("%s (got %v)", fe.Reason, fe.Value)
		}
		r.Problems = append(r.Problems, Problem{Field: fe.Field, Message: msg})
		parts[i] = fe.Field + ": " + msg
	}
	r.Error = job.ErrInvalid.Error() + ": " + strings.Join(parts, "; ")
	return r
}

// walk calls fn on err and on every error it wraps, depth first.
func walk(err error, fn func(error)) {
	if err == nil {
		return
	}
	fn(err)
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			walk(e, fn)
		}
	case interface{ Unwrap() error }:
		walk(u.Unwrap(), fn)
	}
}

// writeError writes err as JSON with its status, and logs server faults.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, body := s.errorResponse(err)
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		d := retryAfter(err)
		if d == 0 && errors.Is(err, job.ErrQueueFull) {
			d = s.cfg.QueueFullRetryAfter
		}
		if d > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
		}
	}
	if status >= 500 {
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, body)
}
