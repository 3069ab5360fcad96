package mcpserver

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/event"
)

// WaitMax bounds every wait a tool does (wait_seconds), well under the
// 60 s after which MCP clients commonly give up on a call.
const WaitMax = 25 * time.Second

// recordTimeout bounds the append of one mcp.tool_call event.
const recordTimeout = 5 * time.Second

// Options configure a server.
type Options struct {
	// ReadOnly offers only the tools annotated read-only.
	ReadOnly bool
	// Role is the role of the token the Backend calls the API with; the
	// admin tools are offered only for api.RoleAdmin.
	Role api.Role
	// RoleUnknown says Role could not be asked (the server was down): it is
	// asked again after the first call that reaches the server, and the
	// admin tools are added then (the client hears tools/list_changed) if
	// it is admin.
	RoleUnknown bool
	// Actor is who the tool calls are recorded as (the token's name).
	Actor string
	// Recorder, if not nil, gets an mcp.tool_call event for every call.
	Recorder Recorder
	// Breaker, if not nil, is put in front of every tool's calls of the
	// Backend (see NewClientBreaker); it shows in list_breakers.
	Breaker *breaker.Breaker
	// ServerURL names the fusebox server in error messages.
	ServerURL string
	// Version is the server's version in the MCP handshake.
	Version string
	// Logger logs failures to record (slog.Default() if nil).
	Logger *slog.Logger
}

// server is one MCP server and what its tools use.
type server struct {
	b     Backend
	opts  Options
	srv   *mcp.Server
	tools []string // registered, in order

	watches watches // behind resource subscriptions

	roleMu    sync.Mutex
	roleKnown bool // Options.RoleUnknown was resolved
}

// instructions is what a client shows the model about the server.
const instructions = `fusebox runs container jobs across a fleet of Docker hosts, each behind a circuit breaker.
Submit a job with submit_job (wait_seconds up to 25 waits for it and returns its exit code and log tail),
then follow it with get_job and get_job_logs. Workflows (DAGs of container steps with a cache) start with
run_workflow from a template (list_workflow_templates) or a YAML definition. list_hosts and list_breakers show
the fleet's health. Errors say what to do: a breaker that is open comes with the time to retry after.`

// New returns an MCP server whose tools call b. Serve it with
// srv.Run(ctx, &mcp.StdioTransport{}) or through NewHTTPHandler.
func New(b Backend, o Options) *mcp.Server {
	s := newServer(b, o)
	return s.srv
}

func newServer(b Backend, o Options) *server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	s := &server{b: b, opts: o}
	s.srv = mcp.NewServer(&mcp.Implementation{Name: "fusebox", Title: "fusebox", Version: o.Version},
		&mcp.ServerOptions{Instructions: instructions, Logger: slog.New(warnOnly{o.Logger.Handler()}), SubscribeHandler: s.subscribe, UnsubscribeHandler: s.unsubscribe})
	s.addResources()
	s.addJobTools()
	s.addFleetTools()
	s.addWorkflowTools()
	s.addAdminTools()
	return s
}

// CallOptions are the options every tool takes (run_workflow has its own
// use_circuit_breaker, which means both breakers).
type CallOptions struct {
	UseCircuitBreaker *bool `json:"use_circuit_breaker,omitempty" jsonschema:"false: this call skips the client-side circuit breaker of fusebox mcp, which otherwise answers at once while the fusebox server cannot be reached (default true)"`
}

func (o CallOptions) breakerOff() bool { return o.UseCircuitBreaker != nil && !*o.UseCircuitBreaker }

// breakerOff is run_workflow's: its use_circuit_breaker: false skips the
// workflow's breaker and the client's.
func (in RunWorkflowIn) breakerOff() bool {
	return in.UseCircuitBreaker != nil && !*in.UseCircuitBreaker
}

// tool is a tool's definition and whether it needs an admin token.
type tool struct {
	*mcp.Tool
	admin bool
}

// register is the one gate that decides which tools a server offers: in
// read-only mode only those annotated read-only; admin tools only for an
// admin token. Every handler it adds turns errors and panics into tool
// errors, goes through the client breaker, and is recorded.
func register[In, Out any](s *server, t tool, h func(context.Context, In) (Out, error)) {
	if t.Annotations == nil {
		panic("mcpserver: tool " + t.Name + " has no annotations")
	}
	if s.opts.ReadOnly && !t.Annotations.ReadOnlyHint {
		return
	}
	if t.admin && s.opts.Role != api.RoleAdmin {
		return
	}
	s.tools = append(s.tools, t.Name)
	mcp.AddTool(s.srv, t.Tool, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
		ctx = withProgress(ctx, req)
		useBreaker := true
		if o, ok := any(in).(interface{ breakerOff() bool }); ok && o.breakerOff() {
			useBreaker = false
		}
		out, err := call(ctx, s, t.Name, useBreaker, func(ctx context.Context) (Out, error) { return h(ctx, in) })
		s.record(ctx, t.Name, err)
		if err == nil && s.opts.RoleUnknown {
			s.resolveRole(ctx)
		}
		if err != nil {
			var zero Out
			return nil, zero, fmt.Errorf("%s", s.message(err))
		}
		return nil, out, nil
	})
}

// resolveRole asks the token's role once the server answers, and adds
// the admin tools if it is admin.
func (s *server) resolveRole(ctx context.Context) {
	s.roleMu.Lock()
	defer s.roleMu.Unlock()
	if s.roleKnown {
		return
	}
	who, err := s.b.WhoAmI(ctx)
	if err != nil {
		return
	}
	s.roleKnown = true
	s.opts.Role = who.Role
	s.addAdminTools()
}

// progressKey is the context key of a tool call's progress func.
type progressKey struct{}

// withProgress gives ctx a progress func that sends the client progress
// notifications, when it asked for them with a progress token.
func withProgress(ctx context.Context, req *mcp.CallToolRequest) context.Context {
	if req == nil || req.Session == nil || req.Params == nil {
		return ctx
	}
	token := req.Params.GetProgressToken()
	if token == nil {
		return ctx
	}
	var mu sync.Mutex
	n := 0
	return context.WithValue(ctx, progressKey{}, func(msg string) {
		mu.Lock()
		n++
		p := &mcp.ProgressNotificationParams{ProgressToken: token, Progress: float64(n), Message: msg}
		mu.Unlock()
		_ = req.Session.NotifyProgress(ctx, p)
	})
}

// progress tells the client how a long call goes, if it asked.
func progress(ctx context.Context, format string, a ...any) {
	if f, ok := ctx.Value(progressKey{}).(func(string)); ok {
		f(fmt.Sprintf(format, a...))
	}
}

// call runs fn through the client breaker (if any and useBreaker), turning
// a panic into an error.
func call[Out any](ctx context.Context, s *server, name string, useBreaker bool, fn func(context.Context) (Out, error)) (out Out, err error) {
	guarded := func(ctx context.Context) (out Out, err error) {
		defer func() {
			if p := recover(); p != nil {
				s.opts.Logger.Error("mcp: tool panicked", "tool", name, "panic", p)
				err = fmt.Errorf("internal error in tool %s: %v; report it to fusebox's operators", name, p)
			}
		}()
		return fn(ctx)
	}
	if s.opts.Breaker == nil || !useBreaker {
		return guarded(ctx)
	}
	return breaker.Do(ctx, s.opts.Breaker, guarded)
}

// record appends an mcp.tool_call event for a call, when there is a
// Recorder. A failure to record is logged; the call's answer stands.
func (s *server) record(ctx context.Context, name string, callErr error) {
	if s.opts.Recorder == nil {
		return
	}
	d := event.MCPToolCall{Tool: name, By: s.opts.Actor, OK: callErr == nil}
	if callErr != nil {
		d.Err = s.message(callErr)
		if len(d.Err) > 500 {
			d.Err = d.Err[:500]
		}
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	ev := event.Event{At: time.Now().UTC(), Type: event.TypeMCPToolCall, Data: event.MarshalData(d)}
	if err := s.opts.Recorder.Record(rctx, ev); err != nil {
		s.opts.Logger.Warn("mcp: recording a tool call", "tool", name, "err", err)
	}
}

// warnOnly passes on warnings and errors only: the SDK logs every request
// and notification at info.
type warnOnly struct{ slog.Handler }

func (w warnOnly) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}
func (w warnOnly) WithAttrs(as []slog.Attr) slog.Handler { return warnOnly{w.Handler.WithAttrs(as)} }
func (w warnOnly) WithGroup(name string) slog.Handler    { return warnOnly{w.Handler.WithGroup(name)} }

func ptr[T any](v T) *T { return &v }

// Annotations, honest: read-only tools change nothing and reach nothing
// outside fusebox.
func readOnly(title string) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{Title: title, ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}
}

func writes(title string, destructive, idempotent, openWorld bool) *mcp.ToolAnnotations {
	return &mcp.ToolAnnotations{Title: title, DestructiveHint: ptr(destructive), IdempotentHint: idempotent, OpenWorldHint: ptr(openWorld)}
}
