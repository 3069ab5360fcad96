package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/event"
	"fusebox/internal/workflow/wfrun"
)

// The resources. Those whose id varies are resource templates; a
// subscription (resources/subscribe) to a job, its logs or a workflow run
// sends notifications/resources/updated each time the event stream says it
// changed, until it ends or the client unsubscribes.
const (
	uriHosts        = "fusebox://hosts"
	uriStats        = "fusebox://stats"
	uriJobPrefix    = "fusebox://jobs/"
	uriRunPrefix    = "fusebox://workflows/runs/"
	uriTemplatePref = "fusebox://workflows/templates/"
	logsSuffix      = "/logs"
)

// subscriptionMax bounds the watches one server keeps at once.
const subscriptionMax = 64

func (s *server) addResources() {
	s.srv.AddResource(&mcp.Resource{URI: uriHosts, Name: "hosts", MIMEType: "application/json",
		Description: "Every Docker host of the fleet with its state and breaker (as list_hosts)."}, s.readHosts)
	s.srv.AddResource(&mcp.Resource{URI: uriStats, Name: "stats", MIMEType: "application/json",
		Description: "The queue: jobs queued and running, by state, and the queue bound."}, s.readStats)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: uriJobPrefix + "{id}", Name: "job", MIMEType: "application/json",
		Description: "A job with its transitions (as get_job); subscribe to hear when it changes."}, s.readJob)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: uriJobPrefix + "{id}" + logsSuffix, Name: "job logs", MIMEType: "application/json",
		Description: "The tail of a job's output (as get_job_logs with its defaults); subscribe to hear when the job changes."}, s.readJobLogs)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: uriRunPrefix + "{id}", Name: "workflow run", MIMEType: "application/json",
		Description: "A workflow run with its steps (as get_workflow_run); subscribe to hear when it or a step changes."}, s.readRun)
	s.srv.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: uriTemplatePref + "{name}", Name: "workflow template", MIMEType: "application/json",
		Description: "A shipped workflow template with its YAML (as get_workflow_template)."}, s.readTemplate)
}

// resourceJSON answers a read with v as JSON, or err as the error a client
// gets: resource-not-found for an unknown id, else the tool error's text.
func (s *server) resourceJSON(uri string, v any, err error) (*mcp.ReadResourceResult, error) {
	if err != nil {
		var ae *apiclient.Error
		if errors.As(err, &ae) && ae.Status == 404 && ae.Code != api.CodeNoLogs {
			return nil, mcp.ResourceNotFoundError(uri)
		}
		return nil, errors.New(s.message(err))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", uri, err)
	}
	return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
}

// read runs a read through the client breaker, like a tool call.
func read[T any](ctx context.Context, s *server, req *mcp.ReadResourceRequest, fn func(context.Context) (T, error)) (*mcp.ReadResourceResult, error) {
	v, err := call(ctx, s, "resource "+req.Params.URI, true, fn)
	return s.resourceJSON(req.Params.URI, v, err)
}

// idOf cuts prefix and suffix off uri; "" if what is left is empty or has
// a slash.
func idOf(uri, prefix, suffix string) string {
	id, ok := strings.CutPrefix(uri, prefix)
	if !ok {
		return ""
	}
	id, ok = strings.CutSuffix(id, suffix)
	if !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

func (s *server) readHosts(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return read(ctx, s, req, func(ctx context.Context) (HostsOut, error) { return s.listHosts(ctx, NoIn{}) })
}

func (s *server) readStats(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	return read(ctx, s, req, s.b.Queue)
}

func (s *server) readJob(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	id := idOf(req.Params.URI, uriJobPrefix, "")
	if id == "" {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	return read(ctx, s, req, func(ctx context.Context) (GetJobOut, error) { return s.getJob(ctx, JobIDIn{ID: id}) })
}

func (s *server) readJobLogs(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	id := idOf(req.Params.URI, uriJobPrefix, logsSuffix)
	if id == "" {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	return read(ctx, s, req, func(ctx context.Context) (JobLogsOut, error) { return s.logs(ctx, id, JobLogsIn{}) })
}

func (s *server) readRun(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	id := idOf(req.Params.URI, uriRunPrefix, "")
	if id == "" {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	return read(ctx, s, req, func(ctx context.Context) (RunOut, error) { return s.getRun(ctx, RunIDIn{ID: id}) })
}

func (s *server) readTemplate(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
	name := idOf(req.Params.URI, uriTemplatePref, "")
	if name == "" {
		return nil, mcp.ResourceNotFoundError(req.Params.URI)
	}
	return read(ctx, s, req, func(ctx context.Context) (TemplateOut, error) { return s.getTemplate(ctx, TemplateIn{Name: name}) })
}

// watches are the event-stream follows behind subscriptions, one per
// session and URI.
type watches struct {
	mu       sync.Mutex
	m        map[watchKey]context.CancelFunc
	sessions map[*mcp.ServerSession]bool // those with a goroutine waiting for their end
}

type watchKey struct {
	session *mcp.ServerSession
	uri     string
}

// subscribe starts following the events of the job or run a URI names, for
// the session that asked.
func (s *server) subscribe(_ context.Context, req *mcp.SubscribeRequest) error {
	uri := req.Params.URI
	var follow func(context.Context, func()) error
	switch {
	case idOf(uri, uriJobPrefix, "") != "":
		follow = s.followJob(idOf(uri, uriJobPrefix, ""))
	case idOf(uri, uriJobPrefix, logsSuffix) != "":
		follow = s.followJob(idOf(uri, uriJobPrefix, logsSuffix))
	case idOf(uri, uriRunPrefix, "") != "":
		follow = s.followRun(idOf(uri, uriRunPrefix, ""))
	default:
		return fmt.Errorf("%s cannot be subscribed to: only %s{id}, %s{id}/logs and %s{id} change", uri, uriJobPrefix, uriJobPrefix, uriRunPrefix)
	}
	k := watchKey{req.Session, uri}
	s.watches.mu.Lock()
	defer s.watches.mu.Unlock()
	if s.watches.m == nil {
		s.watches.m, s.watches.sessions = map[watchKey]context.CancelFunc{}, map[*mcp.ServerSession]bool{}
	}
	if _, ok := s.watches.m[k]; ok {
		return nil
	}
	if len(s.watches.m) >= subscriptionMax {
		return fmt.Errorf("too many subscriptions (%d) on this server; unsubscribe from some first", subscriptionMax)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.watches.m[k] = cancel
	if session := req.Session; !s.watches.sessions[session] {
		s.watches.sessions[session] = true
		go func() { // the session's end ends its watches
			session.Wait()
			s.unwatchSession(session)
		}()
	}
	go func() {
		defer s.unwatch(k)
		notify := func() {
			_ = s.srv.ResourceUpdated(ctx, &mcp.ResourceUpdatedNotificationParams{URI: uri})
		}
		if err := follow(ctx, notify); err != nil && ctx.Err() == nil {
			s.opts.Logger.Warn("mcp: following a subscription", "uri", uri, "err", err)
		}
	}()
	return nil
}

func (s *server) unsubscribe(_ context.Context, req *mcp.UnsubscribeRequest) error {
	s.unwatch(watchKey{req.Session, req.Params.URI})
	return nil
}

func (s *server) unwatch(k watchKey) {
	s.watches.mu.Lock()
	defer s.watches.mu.Unlock()
	if cancel, ok := s.watches.m[k]; ok {
		cancel()
		delete(s.watches.m, k)
	}
}

func (s *server) unwatchSession(session *mcp.ServerSession) {
	s.watches.mu.Lock()
	defer s.watches.mu.Unlock()
	for k, cancel := range s.watches.m {
		if k.session == session {
			cancel()
			delete(s.watches.m, k)
		}
	}
	delete(s.watches.sessions, session)
}

// errWatchEnded ends a follow whose job or run has ended.
var errWatchEnded = errors.New("mcpserver: what was watched ended")

// followJob notifies on each of a job's transitions (from the one that set
// its current state on), until it ends.
func (s *server) followJob(id string) func(context.Context, func()) error {
	return func(ctx context.Context, notify func()) error {
		d, err := s.b.Get(ctx, id)
		if err != nil {
			return err
		}
		if d.Job.State.Terminal() {
			return nil
		}
		since := d.Job.UpdatedAt.Add(-time.Millisecond).UTC().Format(time.RFC3339Nano)
		err = s.b.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeJobTransition}, JobID: id, Since: since, Follow: true},
			func(ev event.Event) error {
				notify()
				var t event.JobTransition
				if json.Unmarshal(ev.Data, &t) == nil && jobTerminal(t.To) {
					return errWatchEnded
				}
				return nil
			})
		if errors.Is(err, errWatchEnded) {
			return nil
		}
		return err
	}
}

func jobTerminal(state string) bool {
	switch state {
	case "succeeded", "failed", "timed_out", "cancelled", "lost":
		return true
	}
	return false
}

// followRun notifies on each change of a run or its steps, until it ends.
func (s *server) followRun(id string) func(context.Context, func()) error {
	return func(ctx context.Context, notify func()) error {
		r, err := s.b.WorkflowRun(ctx, id)
		if err != nil {
			return err
		}
		if r.State.Terminal() {
			return nil
		}
		since := time.Now().Add(-time.Second).UTC().Format(time.RFC3339Nano)
		err = s.b.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeWorkflowRun, event.TypeWorkflowStep}, Since: since, Follow: true},
			func(ev event.Event) error {
				var d struct {
					Run string `json:"run"`
					To  string `json:"to"`
				}
				if json.Unmarshal(ev.Data, &d) != nil || d.Run != r.ID { // id may be a prefix or a name
					return nil
				}
				notify()
				if ev.Type == event.TypeWorkflowRun && wfrun.RunState(d.To).Terminal() {
					return errWatchEnded
				}
				return nil
			})
		if errors.Is(err, errWatchEnded) {
			return nil
		}
		return err
	}
}
