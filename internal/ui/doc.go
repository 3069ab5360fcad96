// Package ui is fusebox's dashboard at /ui: server-rendered pages
// (html/template) of the fleet (one card per host, every named breaker,
// the queue), recent jobs and a job's transitions, attempts and logs,
// workflow runs with their DAG drawn as SVG on the server, and a timeline
// of the last hour's breaker transitions and operator actions.
//
// Everything it serves is embedded: templates, one stylesheet and one
// small script, so there is no build step and no request leaves the
// server; every answer carries a strict Content-Security-Policy
// (default-src 'self', no inline script or style). The pages read without
// JavaScript. With it, the fleet page follows the event stream at
// /ui/events (the API's GET /v1/events, so a reconnect resumes with
// Last-Event-ID) and, on each host.breaker, host.state or operator.action
// event, fetches that host's card (GET /ui/hosts/{name}/card) and replaces
// it: no polling, no reload; "breaker" events swap in the breakers table
// (GET /ui/breakers) and job.transition events the queue panel (GET
// /ui/queue). A running job's page follows its output (GET
// /ui/jobs/{id}/logs?follow=true, the API's log follow) and reloads when
// it ends. The script also counts down to each breaker's next probe.
//
// The UI is mounted inside the API server (api.Server.SetUI), which
// authenticates every /ui route but the sign-in form and the static files:
// with tokens configured, /ui/login takes a token and keeps it in an
// HttpOnly, SameSite=Strict cookie (Secure over TLS) that the API accepts
// on /ui routes only. Read tokens see everything; admin tokens also get
// isolate / drain / release / reset on each host card, with a reason.
// Those forms carry a CSRF token (an HMAC of the browser's session cookie
// under a key made when the UI is built), checked before the action is
// applied through the same Fleet.HostAction the API calls, so it is
// stored with who and why. Without tokens the dashboard is open, like the
// API, and the forms are still CSRF-checked.
//
// It reads fusebox only through the small interfaces declared here (Jobs,
// Fleet, Events, Workflows, Breakers, Auth), which the API's own
// interfaces and *api.Server satisfy. The breakers table is the fleet's
// breaker registry (hosts', workflows', ...); without one, the hosts'
// breakers and the last "breaker" event of each other name.
package ui
