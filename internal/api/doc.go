// Package api owns fusebox's HTTP API: the /v1 JSON endpoints, /healthz,
// /metrics and the OpenAPI document served at /v1/openapi.json; bearer-token
// authentication with roles; the mapping of fusebox's errors to HTTP
// statuses; TLS from a certificate and key that are read again when their
// files change; the refusal to listen beyond loopback without tokens, or
// without TLS unless InsecureHTTP says so; and the bounds that keep one
// client from exhausting the server: read and write timeouts on every route
// but log follows (which bound each write instead), a page size cap on
// GET /v1/jobs, at most MaxFollowsPerToken open follows per token, and a
// follow of a job that does not run ending after FollowStartTimeout.
//
// Errors that know when to retry say so through RetryHint (or, for a
// *breaker.OpenError, its RetryAfter field): the 429 or 503 answer carries
// it as Retry-After. Errors of packages the API must not import are given
// their hint by whoever adapts them (internal/server, with WithRetryAfter).
//
// It reaches the rest of fusebox only through two narrow interfaces declared
// here, Service (jobs: the dispatcher satisfies it), Fleet (hosts: the
// fleet satisfies it) and Events (the event log and bus, given with
// SetEvents), plus *metrics.Metrics. It must not import the
// dispatcher, the fleet's implementation, the engine or the store's
// implementation, and it keeps no job state of its own.
//
// The wire types (SubmitResponse, JobDetail, LogEvent, ErrorResponse, ...)
// are declared here once and shared with internal/apiclient. The hosts'
// (Host, HostBreaker, HostTransition, ...) are converted here from the
// fleet's status types, which carry no JSON of their own, so that a field
// renamed inside the fleet does not change /v1; states travel typed
// (breaker.State, fleet.HostState), encoded as their names.
//
// Routes (role needed when tokens are configured):
//
//	GET  /healthz                         open
//	GET  /v1/openapi.json                 open
//	GET  /metrics                         read
//	POST /v1/jobs                         submit
//	GET  /v1/jobs                         read
//	GET  /v1/jobs/{id}                    read
//	GET  /v1/jobs/{id}/logs[?follow=true] read
//	POST /v1/jobs/{id}/cancel             submit
//	GET  /v1/queue                        read
//	GET  /v1/whoami                       read
//	GET  /v1/events                       read   (server-sent events)
//	GET  /v1/hosts                        read
//	GET  /v1/hosts/transitions            read
//	GET  /v1/hosts/{name}                 read
//	POST /v1/hosts/{name}/isolate         admin  (also drain, release, reset; body {"reason": "..."})
//	/ui, /ui/...                          read   (the dashboard, with SetUI; a UICookie stands in for the token)
//	/ui/login, /ui/static/...             open
package api
