package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"fusebox/breaker"
	"fusebox/internal/api"
	"fusebox/internal/config"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/workflow"
	"fusebox/internal/workflow/artifact"
	"fusebox/internal/workflow/def"
	"fusebox/internal/workflow/wfrun"
)

// workflowOptions translates workflows: and retention (the Logger is the
// caller's).
func workflowOptions(c *config.Config) workflow.Options {
	b := c.Workflows.CircuitBreaker
	return workflow.Options{
		CacheTTL:    c.Workflows.CacheTTL,
		MaxRunBytes: int64(c.Workflows.MaxRunBytes),
		Breaker:     breaker.Settings{ConsecutiveFailures: b.FailureThreshold, OpenDuration: b.ResetTimeout, ProbeTimeout: b.HalfOpenTimeout},
		Retention:   c.Retention,
	}
}

// imageIDs resolves the image ID a reference would run from the hosts that
// can be asked now, those known to have it first.
type imageIDs struct{ fl *fleet.Fleet }

func (r imageIDs) ImageID(ctx context.Context, ref string) (string, error) {
	hosts := r.fl.Hosts()
	ordered := make([]*fleet.Host, 0, len(hosts))
	for _, h := range hosts {
		if h.Reachable() && h.HasImage(ref) {
			ordered = append(ordered, h)
		}
	}
	for _, h := range hosts {
		if h.Reachable() && !h.HasImage(ref) {
			ordered = append(ordered, h)
		}
	}
	var errs []error
	for _, h := range ordered {
		var id string
		err := h.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error {
			var err error
			id, err = c.ImageID(ctx, ref)
			return err
		})
		if err == nil {
			h.NoteImage(ref, true)
			return id, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", h.Name(), err))
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("image %s: no host can be asked now", ref)
	}
	return "", fmt.Errorf("image %s: %w", ref, errors.Join(errs...))
}

// workflowsView adapts the runner, the definitions and the artifact store
// to the API's Workflows, translating their types into the API's.
type workflowsView struct {
	r    *workflow.Runner
	arts *artifact.Store
}

func (v workflowsView) Start(ctx context.Context, req api.WorkflowRunRequest) (*api.WorkflowRun, error) {
	src, file := []byte(req.Definition), "definition"
	if req.Template != "" {
		t, ok := def.LookupTemplate(req.Template)
		if !ok {
			return nil, fmt.Errorf("%w: %q (GET /v1/workflows/templates lists them)", api.ErrTemplateNotFound, req.Template)
		}
		src, file = t.Source, t.Name+".yaml"
	}
	w, err := def.Parse(src, file)
	if err != nil {
		return nil, invalidWorkflow(err)
	}
	res, err := w.Resolve(req.Params)
	if err != nil {
		return nil, invalidWorkflow(err)
	}
	run, err := v.r.Submit(ctx, workflow.SubmitRequest{Workflow: res, TaskID: req.TaskID, SkipCache: req.SkipCache, UseCircuitBreaker: req.UseCircuitBreaker})
	if err != nil {
		return nil, err
	}
	return v.Run(ctx, run.ID)
}

// invalidWorkflow turns the definition's problems into the API's.
func invalidWorkflow(err error) error {
	var ps def.Problems
	if !errors.As(err, &ps) {
		return err
	}
	out := &api.InvalidError{Msg: "the workflow has problems; nothing ran: " + err.Error()}
	for _, p := range ps {
		out.Problems = append(out.Problems, api.Problem{Field: p.Field, Message: p.String()})
	}
	return out
}

func (v workflowsView) Run(ctx context.Context, id string) (*api.WorkflowRun, error) {
	run, steps, err := v.r.Get(ctx, id)
	if errors.Is(err, job.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", api.ErrRunNotFound, id)
	}
	if err != nil {
		return nil, err
	}
	out := wireRun(run, steps)
	return &out, nil
}

func (v workflowsView) Runs(ctx context.Context, f api.WorkflowRunFilter) ([]api.WorkflowRun, error) {
	runs, err := v.r.List(ctx, store.WorkflowRunListParams{TaskID: f.TaskID, Workflow: f.Workflow, IDPrefix: f.IDPrefix, States: f.States, Limit: f.Limit})
	if err != nil {
		return nil, err
	}
	out := make([]api.WorkflowRun, 0, len(runs))
	for _, run := range runs {
		_, steps, err := v.r.Get(ctx, run.ID)
		if err != nil && !errors.Is(err, job.ErrNotFound) {
			return nil, err
		}
		out = append(out, wireRun(run, steps))
	}
	return out, nil
}

func (v workflowsView) Cancel(ctx context.Context, id string) (*api.WorkflowRun, error) {
	_, err := v.r.Cancel(ctx, id)
	switch {
	case errors.Is(err, job.ErrNotFound):
		return nil, fmt.Errorf("%w: %s", api.ErrRunNotFound, id)
	case errors.Is(err, job.ErrTerminal):
		return nil, fmt.Errorf("run %s has ended: %w", id, job.ErrTerminal)
	case err != nil:
		return nil, err
	}
	return v.Run(ctx, id)
}

func (v workflowsView) Templates(_ context.Context, category string) ([]api.WorkflowTemplate, error) {
	var out []api.WorkflowTemplate
	for _, t := range def.Templates() {
		if category == "" || t.Category == category {
			out = append(out, wireTemplate(t, false))
		}
	}
	return out, nil
}

func (v workflowsView) Template(_ context.Context, name string) (*api.WorkflowTemplate, error) {
	t, ok := def.LookupTemplate(name)
	if !ok {
		return nil, fmt.Errorf("%w: %q", api.ErrTemplateNotFound, name)
	}
	out := wireTemplate(t, true)
	return &out, nil
}

func (v workflowsView) Artifact(ctx context.Context, runID, step, path string) (io.ReadCloser, int64, error) {
	run, steps, err := v.r.Get(ctx, runID)
	if errors.Is(err, job.ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %s", api.ErrRunNotFound, runID)
	}
	if err != nil {
		return nil, 0, err
	}
	for _, s := range steps {
		if s.ID != step {
			continue
		}
		for _, o := range s.Outputs {
			if o.Path == path {
				rc, size, err := v.arts.Open(o.Digest)
				if errors.Is(err, artifact.ErrUnknownArtifact) {
					return nil, 0, fmt.Errorf("%w: output %s of step %s of run %s (%s) is no longer stored", api.ErrArtifactNotFound, path, step, run.ID, o.Digest)
				}
				return rc, size, err
			}
		}
		return nil, 0, fmt.Errorf("%w: step %s of run %s has no output %s", api.ErrArtifactNotFound, step, run.ID, path)
	}
	return nil, 0, fmt.Errorf("%w: run %s has no step %s", api.ErrArtifactNotFound, run.ID, step)
}

func wireRun(run *wfrun.Run, steps []wfrun.Step) api.WorkflowRun {
	out := api.WorkflowRun{ID: run.ID, Workflow: run.Workflow, TaskID: run.TaskID, State: run.State, Reason: run.Reason,
		Cause: run.Cause, Params: run.Params, SkipCache: run.SkipCache, UseBreaker: run.UseBreaker,
		CreatedAt: run.CreatedAt, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, Steps: []api.WorkflowStep{}}
	deps := map[string][]string{}
	for _, s := range run.Definition.Steps {
		deps[s.ID] = s.DependsOn
	}
	for _, s := range steps {
		out.Steps = append(out.Steps, api.WorkflowStep{ID: s.ID, State: s.State, Reason: s.Reason, DependsOn: deps[s.ID],
			JobID: s.JobID, Try: s.Try, Host: s.Host, Cached: s.Cached, WhyRan: s.WhyRan, CacheKey: s.CacheKey,
			NextAt: s.NextAt, Outputs: s.Outputs, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt})
	}
	for _, r := range run.Results {
		out.Results = append(out.Results, api.WorkflowResult{Step: r.Step, Path: r.Path, Digest: r.Digest, Size: r.Size})
	}
	return out
}

func wireTemplate(t def.Template, source bool) api.WorkflowTemplate {
	out := api.WorkflowTemplate{Name: t.Name, Category: t.Category, Description: strings.TrimSpace(t.Description)}
	for _, p := range t.Params {
		out.Params = append(out.Params, api.WorkflowParam{Name: p.Name, Type: string(p.Type), Default: p.Default,
			Required: p.Required, Description: p.Description})
	}
	if source {
		out.Source = string(t.Source)
	}
	return out
}
