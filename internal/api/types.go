package api

import (
	"fusebox/internal/job"
)

// SubmitResponse is the body of POST /v1/jobs: 201 with Existed false for a
// new job, 200 with Existed true when the idempotency key matched a job.
type SubmitResponse struct {
	Job     *job.Job `json:"job"`
	Existed bool     `json:"existed"`
	RetryOf string   `json:"retry_of,omitempty"` // POST /v1/jobs/{id}/retry: the job it retries
}

// JobList is the body of GET /v1/jobs. NextBefore, when set, is the cursor
// for the next (older) page: pass it as ?before=.
type JobList struct {
	Jobs       []*job.Job `json:"jobs"`
	NextBefore string     `json:"next_before,omitempty"`
}

// JobDetail is the body of GET /v1/jobs/{id}.
type JobDetail struct {
	Job         *job.Job         `json:"job"`
	Transitions []job.Transition `json:"transitions"`
	Attempts    []job.Attempt    `json:"attempts"`
}

// LogsResponse is the body of GET /v1/jobs/{id}/logs. Output is text; bytes
// that are not valid UTF-8 are replaced by U+FFFD.
type LogsResponse struct {
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Truncated bool   `json:"truncated"`
}

// LogEvent is one line of GET /v1/jobs/{id}/logs?follow=true, a stream of
// newline-delimited JSON (application/x-ndjson):
//
//	{"stream":"stdout","data":"hello\n"}
//	{"stream":"stderr","data":"warning\n"}
//	{"end":true,"state":"succeeded","exit_code":0}
//
// The last line is an end event, or an error event when the stream could
// not go on ({"error":"..."}). A stream that stops without either was cut.
type LogEvent struct {
	Stream   string    `json:"stream,omitempty"` // "stdout" or "stderr"
	Data     string    `json:"data,omitempty"`
	Error    string    `json:"error,omitempty"`
	End      bool      `json:"end,omitempty"`
	State    job.State `json:"state,omitempty"`     // end: the job's state
	ExitCode *int      `json:"exit_code,omitempty"` // end: the job's exit code, if it has one
}

// HostList is the body of GET /v1/hosts.
type HostList struct {
	Hosts []Host `json:"hosts"`
}

// HostResponse is the body of GET /v1/hosts/{name} and of the operator
// actions (the host as it is after the action).
type HostResponse struct {
	Host Host `json:"host"`
}

// HostActionRequest is the optional body of the operator actions (POST
// /v1/hosts/{name}/isolate, drain, release, reset). Reason is kept with the
// action (at most MaxReasonBytes, one line) and shown with the host.
type HostActionRequest struct {
	Reason string `json:"reason,omitempty"`
}

// HostTransitionList is the body of GET /v1/hosts/transitions.
type HostTransitionList struct {
	Transitions []HostTransition `json:"transitions"`
}

// WhoAmI is the body of GET /v1/whoami: the name the request's token acts
// as (the actor recorded with what it does) and its role. Without tokens
// configured every request may do everything: name ActorLocal, role admin.
type WhoAmI struct {
	Name string `json:"name"`
	Role Role   `json:"role"`
}

// ErrorResponse is the body of every error. Code is stable and meant for
// programs; Error is for people. Field and Problems name bad input.
type ErrorResponse struct {
	Error    string    `json:"error"`
	Code     string    `json:"code,omitempty"`
	Field    string    `json:"field,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
}

// Problem is one thing wrong with a request, naming its field ("env.FOO",
// "memory_bytes", "state").
type Problem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error codes of ErrorResponse.Code.
const (
	CodeInvalid          = "invalid"            // 400: bad JSON, unknown field, wrong type, validation
	CodeUnauthorized     = "unauthorized"       // 401: no token or an unknown token
	CodeForbidden        = "forbidden"          // 403: the token's role is too low
	CodeNotFound         = "not_found"          // 404: no such job
	CodeHostNotFound     = "host_not_found"     // 404: no such host
	CodeReceiverNotFound = "receiver_not_found" // 404: no such alert receiver
	CodeNoLogs           = "no_logs"            // 404: the job exists but has no collected output yet
	CodeNoLogTimes       = "no_log_times"       // 409: since or timestamps asked of output kept without times
	CodeNoRoute          = "no_route"           // 404: no such endpoint
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeDuplicate        = "duplicate"          // 409: idempotency key reused with another spec
	CodeTerminal         = "terminal"           // 409: the job has already finished
	CodeNameInUse        = "name_in_use"        // 409: a job that has not ended holds the name
	CodeAmbiguous        = "ambiguous"          // 400: an id prefix matches more than one job
	CodeConflict         = "conflict"           // 409: the job changed concurrently; retry
	CodeTooLarge         = "too_large"          // 413: body over the limit
	CodeQueueFull        = "queue_full"         // 429: see Retry-After
	CodeTooManyFollows   = "too_many_follows"   // 429: the token has too many log follows open; see Retry-After
	CodeInternal         = "internal"           // 500
	CodeUnavailable      = "unavailable"        // 503: timed out, shutting down, or a breaker is open (see Retry-After)
)
