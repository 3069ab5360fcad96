// Package mcpserver is fusebox's MCP server (Model Context Protocol, the
// official github.com/modelcontextprotocol/go-sdk): typed tools an AI agent
// calls to submit and inspect jobs, read bounded logs, look at hosts and
// their breakers, and run and inspect workflows.
//
// It reaches fusebox only through Backend, which *apiclient.Client
// satisfies, so both transports share one implementation and the API's
// roles apply unchanged:
//
//   - stdio: fusebox mcp --server URL [--token T] [--read-only] (cmd/fusebox)
//     serves New over mcp.StdioTransport, with a client of that server's API
//     behind a client-side circuit breaker (Options.Breaker, see
//     NewClientBreaker): with the server down, calls fail at once with
//     "fusebox server unavailable at URL; retry after N s" instead of
//     hanging, and a half-open probe lets them through again when it is back.
//     Started while the server is down, it learns the token's role (GET
//     /v1/whoami) from the first call that gets through, and adds the admin
//     tools then for an admin token.
//     Each tool call is recorded in the server's event stream through the
//     API (NewAPIRecorder: POST /v1/mcp/tool-calls, as the token's name),
//     except while the client breaker is open.
//   - streamable HTTP: fusebox serve mounts NewHTTPHandler at /mcp, behind
//     the API's token auth (role read; loopback-only without tokens, like the
//     API) and the SDK's DNS-rebinding protection. Each bearer token gets its
//     own server whose Backend calls the same fusebox's API over loopback
//     with that token, and each tool call is recorded in the event stream as
//     mcp.tool_call with the token's name (HTTPOptions.Recorder).
//
// # Resources
//
// fusebox://hosts and fusebox://stats (the queue), and the resource
// templates fusebox://jobs/{id}, fusebox://jobs/{id}/logs (its tail),
// fusebox://workflows/runs/{id} and fusebox://workflows/templates/{name},
// all JSON. resources/subscribe on a job, its logs or a run follows the
// event stream and sends notifications/resources/updated at each change
// until it ends (at most 64 watches per server; a session's end stops its
// own).
//
// # Safety
//
// Every tool carries honest annotations (readOnlyHint, destructiveHint,
// idempotentHint, openWorldHint). One gate (register) decides which tools a
// server offers: with Options.ReadOnly only those annotated read-only; the
// admin tools (isolate_host, release_host, drain_host, reset_breaker, each
// with a required reason recorded like any operator action) only for a
// token whose role is admin. No tool runs commands in an existing
// container. Every failure — a bad argument, an unknown id, a breaker open
// with its retry-after, a missing role, the server down — is a tool error
// result (IsError) whose text says what to do, never a protocol error or a
// panic. Logs are tailed (100 lines, 16 KiB by default) so a big log never
// floods a model's context, and no call blocks past WaitMax.
package mcpserver
