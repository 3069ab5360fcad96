package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/event"
	"fusebox/internal/workflow/wfrun"
)

// RunWorkflowIn is the input of run_workflow.
type RunWorkflowIn struct {
	Template          string            `json:"template,omitempty" jsonschema:"a shipped template's name (list_workflow_templates); give this or definition"`
	Definition        string            `json:"definition,omitempty" jsonschema:"a workflow definition in YAML (get_workflow_template shows examples); give this or template"`
	TaskID            string            `json:"task_id,omitempty" jsonschema:"your id for the task this run does: list_workflow_runs finds runs by it"`
	Params            map[string]string `json:"params,omitempty" jsonschema:"the workflow's parameters by name"`
	SkipCache         bool              `json:"skip_cache,omitempty" jsonschema:"run every step, even those whose cached result could be reused"`
	UseCircuitBreaker *bool             `json:"use_circuit_breaker,omitempty" jsonschema:"false: bypass the workflow's circuit breaker (default true: a workflow failing again and again is refused fast with a retry-after)"`
	WaitSeconds       int               `json:"wait_seconds,omitempty" jsonschema:"0 (default) returns at once; 1..25 waits that long for the run to end"`
}

// RunOut is the output of the tools that return one run.
type RunOut struct {
	Run      Run    `json:"run"`
	Finished bool   `json:"finished" jsonschema:"true when the run had ended before the call returned"`
	Note     string `json:"note,omitempty"`
}

// RunIDIn is the input of the tools that take a run id.
type RunIDIn struct {
	CallOptions
	ID string `json:"id" jsonschema:"the run's id (from run_workflow or list_workflow_runs), a unique prefix of it, or a workflow's name for its newest run"`
}

// ListRunsIn is the input of list_workflow_runs.
type ListRunsIn struct {
	CallOptions
	TaskID   string `json:"task_id,omitempty" jsonschema:"only runs started with this task_id"`
	Workflow string `json:"workflow,omitempty" jsonschema:"only runs of this workflow"`
	State    string `json:"state,omitempty" jsonschema:"only runs in this state: pending, running, succeeded, failed or cancelled"`
	Limit    int    `json:"limit,omitempty" jsonschema:"at most this many, newest first (default 20, at most 200)"`
}

// RunsOut is the output of list_workflow_runs.
type RunsOut struct {
	Runs []Run `json:"runs,omitempty"`
}

// TemplatesIn is the input of list_workflow_templates.
type TemplatesIn struct {
	CallOptions
	Category string `json:"category,omitempty" jsonschema:"only templates of this category"`
}

// TemplatesOut is the output of list_workflow_templates.
type TemplatesOut struct {
	Templates []Template `json:"templates,omitempty"`
}

// TemplateIn is the input of get_workflow_template.
type TemplateIn struct {
	CallOptions
	Name string `json:"name" jsonschema:"the template's name (from list_workflow_templates)"`
}

// TemplateOut is the output of get_workflow_template.
type TemplateOut struct {
	Template Template `json:"template"`
}

func (s *server) addWorkflowTools() {
	register(s, tool{Tool: &mcp.Tool{Name: "run_workflow",
		Description: "Start a workflow run (a DAG of container steps; unchanged steps reuse their cached results) from a template or a YAML definition. " +
			"Returns at once with the run's id, or waits up to wait_seconds (at most 25) for it to end. A workflow whose breaker is open is refused with the time to retry after.",
		Annotations: writes("Run a workflow", false, false, true)}}, s.runWorkflow)
	register(s, tool{Tool: &mcp.Tool{Name: "get_workflow_run",
		Description: "Get one workflow run: its state and each step's state, job, host and whether it was cached; results once it succeeded.",
		Annotations: readOnly("Get a workflow run")}}, s.getRun)
	register(s, tool{Tool: &mcp.Tool{Name: "list_workflow_runs",
		Description: "List workflow runs, newest first, by task id, workflow or state.",
		Annotations: readOnly("List workflow runs")}}, s.listRuns)
	register(s, tool{Tool: &mcp.Tool{Name: "cancel_workflow_run",
		Description: "Cancel a workflow run: its running steps' containers are stopped and the steps not started never run.",
		Annotations: writes("Cancel a workflow run", true, true, false)}}, s.cancelRun)
	register(s, tool{Tool: &mcp.Tool{Name: "list_workflow_templates",
		Description: "List the shipped workflow templates (name, category, description, parameters), optionally of one category.",
		Annotations: readOnly("List workflow templates")}}, s.listTemplates)
	register(s, tool{Tool: &mcp.Tool{Name: "get_workflow_template",
		Description: "Get one workflow template with its parameters and YAML source.",
		Annotations: readOnly("Get a workflow template")}}, s.getTemplate)
}

func (s *server) runWorkflow(ctx context.Context, in RunWorkflowIn) (RunOut, error) {
	switch {
	case in.Template == "" && in.Definition == "":
		return RunOut{}, badArg("template", "give template (a name from list_workflow_templates) or definition (YAML)")
	case in.Template != "" && in.Definition != "":
		return RunOut{}, badArg("template", "give template or definition, not both")
	case in.WaitSeconds < 0 || time.Duration(in.WaitSeconds)*time.Second > WaitMax:
		return RunOut{}, badArg("wait_seconds", "must be 0..%d (got %d)", int(WaitMax/time.Second), in.WaitSeconds)
	}
	r, err := s.b.StartWorkflow(ctx, api.WorkflowRunRequest{Template: in.Template, Definition: in.Definition, TaskID: in.TaskID,
		Params: in.Params, SkipCache: in.SkipCache, UseCircuitBreaker: in.UseCircuitBreaker})
	if err != nil {
		return RunOut{}, err
	}
	out := RunOut{}
	if in.WaitSeconds > 0 && !r.State.Terminal() {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(in.WaitSeconds)*time.Second)
		err := s.waitRun(wctx, r)
		cancel()
		switch {
		case err == nil:
		case ctx.Err() == nil && wctx.Err() != nil:
			out.Note = fmt.Sprintf("the run is still going after %d s; follow it with get_workflow_run", in.WaitSeconds)
		default:
			return RunOut{}, err
		}
		if now, err := s.b.WorkflowRun(ctx, r.ID); err == nil {
			r = now
		} else if out.Note == "" {
			return RunOut{}, err
		}
	}
	out.Run, out.Finished = runOf(r), r.State.Terminal()
	return out, nil
}

// errRunEnded ends the event stream of waitRun.
var errRunEnded = errors.New("mcpserver: the run ended")

// waitRun follows the event stream from just before r was created until r
// ends, or ctx does, telling the client of each change of the run and its
// steps when it asked for progress.
func (s *server) waitRun(ctx context.Context, r *api.WorkflowRun) error {
	since := r.CreatedAt.Add(-time.Second).UTC().Format(time.RFC3339Nano)
	err := s.b.Events(ctx, apiclient.EventsParams{Types: []string{event.TypeWorkflowRun, event.TypeWorkflowStep}, Since: since, Follow: true},
		func(ev event.Event) error {
			var d struct {
				Run  string `json:"run"`
				Step string `json:"step"`
				To   string `json:"to"`
			}
			if json.Unmarshal(ev.Data, &d) != nil || d.Run != r.ID {
				return nil
			}
			if ev.Type == event.TypeWorkflowStep {
				progress(ctx, "run %s: step %s %s", r.ID, d.Step, d.To)
				return nil
			}
			progress(ctx, "run %s: %s", r.ID, d.To)
			if wfrun.RunState(d.To).Terminal() {
				return errRunEnded
			}
			return nil
		})
	if errors.Is(err, errRunEnded) {
		return nil
	}
	return err
}

func (s *server) getRun(ctx context.Context, in RunIDIn) (RunOut, error) {
	if err := needID(in.ID, "workflow run"); err != nil {
		return RunOut{}, err
	}
	r, err := s.b.WorkflowRun(ctx, in.ID)
	if err != nil {
		return RunOut{}, err
	}
	return RunOut{Run: runOf(r), Finished: r.State.Terminal()}, nil
}

func (s *server) listRuns(ctx context.Context, in ListRunsIn) (RunsOut, error) {
	f := api.WorkflowRunFilter{TaskID: in.TaskID, Workflow: in.Workflow, Limit: in.Limit}
	if in.State != "" {
		st := wfrun.RunState(in.State)
		if !st.Valid() {
			return RunsOut{}, badArg("state", "must be one of pending, running, succeeded, failed, cancelled (got %q)", in.State)
		}
		f.States = []wfrun.RunState{st}
	}
	var err error
	if f.Limit, err = listLimit(in.Limit); err != nil {
		return RunsOut{}, err
	}
	runs, err := s.b.WorkflowRuns(ctx, f)
	if err != nil {
		return RunsOut{}, err
	}
	var out RunsOut
	for i := range runs {
		out.Runs = append(out.Runs, runOf(&runs[i]))
	}
	return out, nil
}

func (s *server) cancelRun(ctx context.Context, in RunIDIn) (RunOut, error) {
	if err := needID(in.ID, "workflow run"); err != nil {
		return RunOut{}, err
	}
	r, err := s.b.CancelWorkflowRun(ctx, in.ID)
	if err != nil {
		return RunOut{}, err
	}
	return RunOut{Run: runOf(r), Finished: r.State.Terminal()}, nil
}

func (s *server) listTemplates(ctx context.Context, in TemplatesIn) (TemplatesOut, error) {
	ts, err := s.b.WorkflowTemplates(ctx, in.Category)
	if err != nil {
		return TemplatesOut{}, err
	}
	var out TemplatesOut
	for i := range ts {
		out.Templates = append(out.Templates, templateOf(&ts[i]))
	}
	return out, nil
}

func (s *server) getTemplate(ctx context.Context, in TemplateIn) (TemplateOut, error) {
	if strings.TrimSpace(in.Name) == "" {
		return TemplateOut{}, badArg("name", "is required: a template's name (list_workflow_templates shows them)")
	}
	t, err := s.b.WorkflowTemplate(ctx, in.Name)
	if err != nil {
		return TemplateOut{}, err
	}
	return TemplateOut{Template: templateOf(t)}, nil
}
