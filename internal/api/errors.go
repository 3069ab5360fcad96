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

	"fusebox/internal/job"
)

// requestError is an error the API itself finds in a request, before or
// instead of calling the Service.
type requestError struct {
	status   int
	code     string
	msg      string
	field    string
	problems []Problem
}

func (e *requestError) Error() string { return e.msg }

func badRequest(field, format string, args ...any) *requestError {
	msg := fmt.Sprintf(format, args...)
	return &requestError{status: http.StatusBadRequest, code: CodeInvalid, msg: msg, field: field,
		problems: []Problem{{Field: field, Message: msg}}}
}

// retryAfterer is implemented by errors that know when to retry.
type retryAfterer interface{ RetryAfter() time.Duration }

// errorResponse maps err to a status and a body.
func (s *Server) errorResponse(err error) (int, ErrorResponse) {
	var re *requestError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &re):
		return re.status, ErrorResponse{Error: re.msg, Code: re.code, Field: re.field, Problems: re.problems}
	case errors.As(err, &mbe):
		return http.StatusRequestEntityTooLarge, ErrorResponse{Code: CodeTooLarge,
			Error: fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.Is(err, job.ErrInvalid):
		return http.StatusBadRequest, invalidResponse(err)
	case errors.Is(err, job.ErrNotFound):
		return http.StatusNotFound, ErrorResponse{Error: err.Error(), Code: CodeNotFound}
	case errors.Is(err, ErrHostNotFound):
		return http.StatusNotFound, ErrorResponse{Error: err.Error(), Code: CodeHostNotFound}
	case errors.Is(err, job.ErrQueueFull):
		return http.StatusTooManyRequests, ErrorResponse{Error: err.Error(), Code: CodeQueueFull}
	case errors.Is(err, job.ErrDuplicate):
		return http.StatusConflict, ErrorResponse{Error: err.Error(), Code: CodeDuplicate}
	case errors.Is(err, job.ErrTerminal):
		return http.StatusConflict, ErrorResponse{Error: err.Error(), Code: CodeTerminal}
	case errors.Is(err, job.ErrConflict):
		return http.StatusConflict, ErrorResponse{Error: err.Error() + "; retry", Code: CodeConflict}
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
	if status == http.StatusTooManyRequests {
		d := s.cfg.QueueFullRetryAfter
		var ra retryAfterer
		if errors.As(err, &ra) && ra.RetryAfter() > 0 {
			d = ra.RetryAfter()
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(d.Seconds()))))
	}
	if status >= 500 {
		s.log.Error("api: request failed", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	}
	writeJSON(w, status, body)
}
