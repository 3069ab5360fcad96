package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Backend is what the tools need of fusebox: its API. *apiclient.Client
// satisfies it.
type Backend interface {
	Submit(ctx context.Context, spec job.Spec) (*job.Job, bool, error)
	Get(ctx context.Context, id string) (*api.JobDetail, error)
	List(ctx context.Context, p store.JobListParams) ([]*job.Job, error)
	Logs(ctx context.Context, id string) (job.Logs, error)
	Cancel(ctx context.Context, id string) (*job.Job, error)
	Retry(ctx context.Context, id string) (*job.Job, error)
	WaitTransitions(ctx context.Context, id string, onTransition func(job.Transition)) (*job.Job, error)
	Events(ctx context.Context, p apiclient.EventsParams, fn func(event.Event) error) error

	Hosts(ctx context.Context) ([]api.Host, error)
	Breakers(ctx context.Context) ([]api.BreakerInfo, error)
	Host(ctx context.Context, name string) (*api.Host, error)
	Isolate(ctx context.Context, name, reason string) (*api.Host, error)
	Release(ctx context.Context, name, reason string) (*api.Host, error)
	Drain(ctx context.Context, name, reason string) (*api.Host, error)
	Reset(ctx context.Context, name, reason string) (*api.Host, error)

	StartWorkflow(ctx context.Context, req api.WorkflowRunRequest) (*api.WorkflowRun, error)
	WorkflowRun(ctx context.Context, id string) (*api.WorkflowRun, error)
	WorkflowRuns(ctx context.Context, f api.WorkflowRunFilter) ([]api.WorkflowRun, error)
	CancelWorkflowRun(ctx context.Context, id string) (*api.WorkflowRun, error)
	WorkflowTemplates(ctx context.Context, category string) ([]api.WorkflowTemplate, error)
	WorkflowTemplate(ctx context.Context, name string) (*api.WorkflowTemplate, error)

	Queue(ctx context.Context) (api.QueueStats, error)
	WhoAmI(ctx context.Context) (api.WhoAmI, error)
}

var _ Backend = (*apiclient.Client)(nil)

// Recorder appends an event to fusebox's event stream (the server's store).
type Recorder interface {
	Record(ctx context.Context, ev event.Event) error
}

// NewClientBreaker returns the client-side breaker of fusebox mcp: three
// failures in a row to reach the server (connection errors, 5xx but 503)
// open it for two seconds (growing with each trip, capped at 30 s); every
// other answer of the server counts for nothing.
func NewClientBreaker(serverURL string) *breaker.Breaker {
	return breaker.MustNew("mcp-client "+serverURL, breaker.Settings{
		ConsecutiveFailures: 3,
		OpenDuration:        2 * time.Second,
		MaxOpenDuration:     30 * time.Second,
		ProbeTimeout:        WaitMax + 5*time.Second,
		Classify:            classifyServerFault,
	})
}

// classifyServerFault counts only failures to reach a working server.
func classifyServerFault(err error) breaker.Outcome {
	var ce *apiclient.ConnError
	if errors.As(err, &ce) {
		return breaker.Failure
	}
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.Status >= 500 && ae.Status != http.StatusServiceUnavailable {
		return breaker.Failure
	}
	if errors.Is(err, context.DeadlineExceeded) { // one request timed out: the server hangs
		return breaker.Failure
	}
	return breaker.Ignored
}

// argError is a bad tool argument.
type argError struct{ field, msg string }

func (e *argError) Error() string { return fmt.Sprintf("argument %s: %s", e.field, e.msg) }

func badArg(field, format string, a ...any) error {
	return &argError{field: field, msg: fmt.Sprintf(format, a...)}
}

// message turns err into the text of a tool error: what went wrong and what
// to do about it.
func (s *server) message(err error) string {
	var (
		ae  *argError
		oe  *breaker.OpenError
		ce  *apiclient.ConnError
		api *apiclient.Error
	)
	switch {
	case errors.As(err, &ae):
		return ae.Error() + "; fix the argument and call the tool again"
	case errors.As(err, &oe):
		return fmt.Sprintf("fusebox server unavailable at %s (its last calls failed, so this client stopped trying for a while); retry after %s",
			s.opts.ServerURL, retryText(oe.RetryAfter))
	case errors.As(err, &ce):
		return fmt.Sprintf("fusebox server unavailable at %s: %v; retry after a few seconds", s.opts.ServerURL, ce.Err)
	case errors.As(err, &api):
		return apiMessage(api)
	case errors.Is(err, context.DeadlineExceeded):
		return "fusebox did not answer in time; retry after a few seconds"
	case errors.Is(err, context.Canceled):
		return "the call was cancelled"
	}
	return err.Error()
}

func apiMessage(e *apiclient.Error) string {
	msg := e.Error()
	switch {
	case e.Status == http.StatusForbidden:
		return "not allowed: " + msg + "; call it with a token that has that role, or use a read-only tool instead"
	case e.Status == http.StatusUnauthorized:
		return "the token was refused: " + msg + "; configure a valid fusebox token"
	case e.Status == http.StatusNotFound:
		return msg + "; check the id or name (list_jobs, list_workflow_runs, list_hosts and list_workflow_templates show those that exist)"
	case e.Status == http.StatusBadRequest:
		var b strings.Builder
		b.WriteString(msg)
		for _, p := range e.Problems {
			if p.Message != msg {
				fmt.Fprintf(&b, "; %s: %s", p.Field, p.Message)
			}
		}
		b.WriteString("; fix the argument and call the tool again")
		return b.String()
	case e.Status == http.StatusConflict:
		return msg
	case e.Status == http.StatusTooManyRequests || e.Status == http.StatusServiceUnavailable:
		if e.RetryAfter > 0 {
			return msg + "; retry after " + retryText(e.RetryAfter)
		}
		return msg + "; retry later"
	}
	return msg
}

func retryText(d time.Duration) string {
	if d <= 0 {
		return "an operator releases it"
	}
	secs := int((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%d s", secs)
}

// ToolCallRecorder records a tool call through the fusebox API:
// *apiclient.Client is one.
type ToolCallRecorder interface {
	RecordToolCall(ctx context.Context, tool string, ok bool, errMsg string) error
}

// NewAPIRecorder returns the Recorder of fusebox mcp (stdio): each tool
// call goes to the server's event stream through its API (POST
// /v1/mcp/tool-calls), recorded as the token's name. While br (the client
// breaker; may be nil) is open it records nothing: the server cannot be
// reached.
func NewAPIRecorder(c ToolCallRecorder, br *breaker.Breaker) Recorder {
	return apiRecorder{c: c, br: br}
}

type apiRecorder struct {
	c  ToolCallRecorder
	br *breaker.Breaker
}

func (r apiRecorder) Record(ctx context.Context, ev event.Event) error {
	if r.br != nil && r.br.State() != breaker.StateClosed {
		return nil
	}
	var d event.MCPToolCall
	if err := json.Unmarshal(ev.Data, &d); err != nil {
		return err
	}
	return r.c.RecordToolCall(ctx, d.Tool, d.OK, d.Err)
}
