package main

import (
	"errors"
	"fmt"
	"math"
	"net/http"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
)

// explain turns an error into a message and, when there is one, what to
// try instead.
func explain(err error) (msg, hint string) {
	msg = err.Error()
	var he *hintError
	if errors.As(err, &he) {
		return msg, he.hint
	}
	var ce *apiclient.ConnError
	if errors.As(err, &ce) {
		if apiclient.CertError(err) {
			return msg, fmt.Sprintf("The server's TLS certificate is not trusted: pass the CA that signed it with --cacert FILE or $%s.", envCACert)
		}
		return msg, fmt.Sprintf("Is the server running ('fusebox serve')? Point at another one with --server or $%s.", envServer)
	}
	var ae *apiclient.Error
	if !errors.As(err, &ae) {
		return msg, ""
	}
	switch {
	case ae.Status == http.StatusUnauthorized:
		return msg, fmt.Sprintf("Pass a token with --token or $%s.", envToken)
	case ae.Status == http.StatusForbidden:
		return msg, "Use a token with that role."
	case ae.Code == api.CodeNotFound:
		return msg, "List jobs with 'fusebox jobs'."
	case ae.Code == api.CodeHostNotFound:
		return msg, "List hosts with 'fusebox hosts'."
	case ae.Code == api.CodeQueueFull:
		if ae.RetryAfter > 0 {
			return msg, fmt.Sprintf("Nothing was queued; retry in %ds, or see 'fusebox queue' and 'fusebox hosts'.", int(math.Ceil(ae.RetryAfter.Seconds())))
		}
		return msg, "Nothing was queued; retry later, or see 'fusebox queue' and 'fusebox hosts'."
	case ae.Code == api.CodeTooManyFollows:
		return msg, "End another 'fusebox logs -f' made with this token, or read the output with 'fusebox logs ID' once the job has ended."
	case ae.Code == api.CodeDuplicate:
		return msg, "Use another --idempotency-key, or resubmit the same spec to get the existing job."
	case ae.Code == api.CodeTerminal:
		return msg, "See how it ended with 'fusebox job ID'."
	case ae.Status == http.StatusBadRequest && len(ae.Problems) > 1:
		return msg, "Fix each field above and submit again."
	}
	return msg, ""
}

// hintError is an error with what to try instead, for the few a command
// knows better than explain (a workflow run that is not found).
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }
