package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/workflow/wfrun"
)

// Workflows is what the API needs of the workflow runner: internal/server
// adapts the runner, the definitions and the artifact store to it, and
// translates their types into the API's own.
type Workflows interface {
	// Start checks the definition (or the template) and its parameters and
	// starts a run. A definition with problems wraps *InvalidError; an
	// open workflow breaker is a *breaker.OpenError (503 with Retry-After).
	Start(ctx context.Context, req WorkflowRunRequest) (*WorkflowRun, error)
	// Run returns one run with its steps; ErrRunNotFound if none. id is
	// a run's id exactly: the API resolves names and prefixes (with Runs).
	Run(ctx context.Context, id string) (*WorkflowRun, error)
	// Runs lists runs, newest first.
	Runs(ctx context.Context, f WorkflowRunFilter) ([]WorkflowRun, error)
	// Cancel asks a run to stop; ErrRunNotFound, or job.ErrTerminal if it
	// has ended.
	Cancel(ctx context.Context, id string) (*WorkflowRun, error)
	// Templates lists the shipped templates ("" category: all).
	Templates(ctx context.Context, category string) ([]WorkflowTemplate, error)
	// Template returns one template with its source; ErrTemplateNotFound.
	Template(ctx context.Context, name string) (*WorkflowTemplate, error)
	// Artifact opens the canonical tar of a step's output; ErrRunNotFound
	// or ErrArtifactNotFound.
	Artifact(ctx context.Context, runID, step, path string) (io.ReadCloser, int64, error)
}

// Errors of Workflows, each a 404.
var (
	ErrRunNotFound      = errors.New("no such workflow run")
	ErrTemplateNotFound = errors.New("no such workflow template")
	ErrArtifactNotFound = errors.New("no such artifact")
)

// InvalidError is a request whose content is wrong in the places its
// Problems name (a workflow definition: file:line and field). It answers
// 400.
type InvalidError struct {
	Msg      string
	Problems []Problem
}

func (e *InvalidError) Error() string { return e.Msg }

// SetWorkflows serves /v1/workflows from w. Call it before Serve; without
// it those endpoints answer 404.
func (s *Server) SetWorkflows(w Workflows) { s.workflows = w }

// WorkflowRunRequest is the body of POST /v1/workflows/runs: a definition
// (YAML, as a workflow file holds it) or the name of a shipped template.
type WorkflowRunRequest struct {
	Definition string            `json:"definition,omitempty"` // YAML
	Template   string            `json:"template,omitempty"`
	TaskID     string            `json:"task_id,omitempty"` // the caller's id for the task this run does; runs are listed by it
	Params     map[string]string `json:"params,omitempty"`
	SkipCache  bool              `json:"skip_cache,omitempty"` // run every step, even those a cache entry would spare
	// UseCircuitBreaker overrides the definition's use_circuit_breaker for
	// this run (absent: the definition's, on by default).
	UseCircuitBreaker *bool `json:"use_circuit_breaker,omitempty"`
}

// WorkflowRun is a run of a workflow with its steps.
type WorkflowRun struct {
	ID         string            `json:"id"`
	Workflow   string            `json:"workflow"`
	TaskID     string            `json:"task_id,omitempty"`
	State      wfrun.RunState    `json:"state"`
	Reason     string            `json:"reason,omitempty"`
	Cause      wfrun.Cause       `json:"cause,omitempty"` // own, fleet, cancelled, timeout
	Params     map[string]string `json:"params,omitempty"`
	SkipCache  bool              `json:"skip_cache,omitempty"`
	UseBreaker bool              `json:"use_circuit_breaker"`
	Steps      []WorkflowStep    `json:"steps"`
	Results    []WorkflowResult  `json:"results,omitempty"` // outputs no step consumes, when it succeeded
	CreatedAt  time.Time         `json:"created_at"`
	StartedAt  time.Time         `json:"started_at,omitzero"`
	FinishedAt time.Time         `json:"finished_at,omitzero"`
}

// WorkflowStep is one step of a run.
type WorkflowStep struct {
	ID         string          `json:"id"`
	State      wfrun.StepState `json:"state"`
	Reason     string          `json:"reason,omitempty"`
	DependsOn  []string        `json:"depends_on,omitempty"`
	JobID      string          `json:"job_id,omitempty"` // of its current or last try
	Try        int             `json:"try"`              // step tries so far (its own failures retry; host faults fail over inside one try)
	Host       string          `json:"host,omitempty"`
	Cached     bool            `json:"cached,omitempty"`
	WhyRan     string          `json:"why_ran,omitempty"` // why it ran instead of hitting the cache
	CacheKey   string          `json:"cache_key,omitempty"`
	NextAt     time.Time       `json:"next_at,omitzero"` // retrying: when the next try starts
	Outputs    []job.Output    `json:"outputs,omitempty"`
	StartedAt  time.Time       `json:"started_at,omitzero"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
}

// WorkflowResult is one output of a run kept for download.
type WorkflowResult struct {
	Step   string `json:"step"`
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// WorkflowRunFilter selects runs of GET /v1/workflows/runs.
type WorkflowRunFilter struct {
	TaskID   string
	Workflow string
	// IDPrefix: only runs whose id starts with it. The API resolves an
	// abbreviated run id with it; GET /v1/workflows/runs does not take it.
	IDPrefix string
	States   []wfrun.RunState
	Limit    int
}

// WorkflowRunList is the body of GET /v1/workflows/runs.
type WorkflowRunList struct {
	Runs []WorkflowRun `json:"runs"`
}

// WorkflowTemplate is a shipped workflow template.
type WorkflowTemplate struct {
	Name        string          `json:"name"`
	Category    string          `json:"category"`
	Description string          `json:"description,omitempty"`
	Params      []WorkflowParam `json:"params,omitempty"`
	Source      string          `json:"source,omitempty"` // the YAML; in GET /v1/workflows/templates/{name} only
}

// WorkflowParam is a declared parameter of a workflow.
type WorkflowParam struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Default     string `json:"default,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}

// WorkflowTemplateList is the body of GET /v1/workflows/templates.
type WorkflowTemplateList struct {
	Templates []WorkflowTemplate `json:"templates"`
}

// WorkflowRunResponse is the body of a run's answers.
type WorkflowRunResponse struct {
	Run WorkflowRun `json:"run"`
}

var errNoWorkflows = &requestError{status: http.StatusNotFound, code: CodeNoRoute, msg: "workflows are not enabled on this server"}

func (s *Server) workflowsOr404(w http.ResponseWriter, r *http.Request) bool {
	if s.workflows == nil {
		s.writeError(w, r, errNoWorkflows)
		return false
	}
	return true
}

// MaxWorkflowBytes bounds a definition in POST /v1/workflows/runs.
const MaxWorkflowBytes = 1 << 20

// startWorkflow: POST /v1/workflows/runs.
func (s *Server) startWorkflow(w http.ResponseWriter, r *http.Request) {
	if !s.workflowsOr404(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, min(s.cfg.MaxBodyBytes, MaxWorkflowBytes+64<<10))
	var req WorkflowRunRequest
	if err := decodeObject(r.Body, &req, `{"template": "diamond", "task_id": "t1", "params": {"n": "3"}}`); err != nil {
		s.writeError(w, r, err)
		return
	}
	switch {
	case (req.Definition == "") == (req.Template == ""):
		s.writeError(w, r, badRequest("definition", "give exactly one of definition (the workflow's YAML) and template (a template's name)"))
		return
	case len(req.Definition) > MaxWorkflowBytes:
		s.writeError(w, r, badRequest("definition", "%d bytes: at most %d", len(req.Definition), MaxWorkflowBytes))
		return
	case len(req.TaskID) > 256:
		s.writeError(w, r, badRequest("task_id", "%d bytes: at most 256", len(req.TaskID)))
		return
	}
	run, err := s.workflows.Start(r.Context(), req)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("api: workflow run started", "run", run.ID, "workflow", run.Workflow, "task_id", run.TaskID, "by", actor(r))
	writeJSON(w, http.StatusCreated, WorkflowRunResponse{Run: *run})
}

// RunIDPrefix starts every workflow run's id; an abbreviated id may leave
// it out.
const RunIDPrefix = "wf-"

// resolveRun finds the run ref means (ResolveRun).
func (s *Server) resolveRun(ctx context.Context, ref string) (*WorkflowRun, error) {
	return ResolveRun(ctx, s.workflows, ref)
}

// RunReader reads workflow runs: what ResolveRun needs (Workflows has it).
type RunReader interface {
	Run(ctx context.Context, id string) (*WorkflowRun, error)
	Runs(ctx context.Context, f WorkflowRunFilter) ([]WorkflowRun, error)
}

// ResolveRun finds the run ref means, as a job reference is resolved: its
// id, else the newest run of the workflow of that name, else the run whose
// id starts with ref (or with RunIDPrefix+ref) if only one does. No match
// is an error with HTTPStatus 404 naming ref; a prefix of several ids one
// with HTTPStatus 400 (CodeAmbiguous) listing some of them.
func ResolveRun(ctx context.Context, s RunReader, ref string) (*WorkflowRun, error) {
	notFound := &requestError{status: http.StatusNotFound, code: CodeNotFound,
		msg: fmt.Sprintf("no workflow run with id, id prefix or workflow name %q", ref)}
	if ref == "" {
		return nil, notFound
	}
	run, err := s.Run(ctx, ref)
	if !errors.Is(err, ErrRunNotFound) {
		return run, err
	}
	runs, err := s.Runs(ctx, WorkflowRunFilter{Workflow: ref, Limit: 1})
	if err != nil {
		return nil, err
	}
	if len(runs) == 1 {
		return &runs[0], nil
	}
	prefixes := []string{ref}
	if !strings.HasPrefix(ref, RunIDPrefix) {
		prefixes = append(prefixes, RunIDPrefix+ref)
	}
	var matches []WorkflowRun
	for _, p := range prefixes {
		runs, err := s.Runs(ctx, WorkflowRunFilter{IDPrefix: p, Limit: maxAmbiguous + 1})
		if err != nil {
			return nil, err
		}
		matches = append(matches, runs...)
	}
	switch len(matches) {
	case 0:
		return nil, notFound
	case 1:
		return &matches[0], nil
	}
	ids := make([]string, 0, maxAmbiguous)
	for _, m := range matches[:min(len(matches), maxAmbiguous)] {
		ids = append(ids, m.ID)
	}
	more := ""
	if len(matches) > maxAmbiguous {
		more = ", ..."
	}
	return nil, &requestError{status: http.StatusBadRequest, code: CodeAmbiguous, field: "id",
		msg: fmt.Sprintf("workflow run id prefix %q matches %s%s; give more of the id", ref, strings.Join(ids, ", "), more)}
}

// getWorkflowRun: GET /v1/workflows/runs/{id}. Here and in every
// /v1/workflows/runs/{id} route, {id} may be a unique id prefix (with or
// without RunIDPrefix) or a workflow's name, meaning its newest run.
func (s *Server) getWorkflowRun(w http.ResponseWriter, r *http.Request) {
	if !s.workflowsOr404(w, r) {
		return
	}
	run, err := s.resolveRun(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, WorkflowRunResponse{Run: *run})
}

// cancelWorkflowRun: POST /v1/workflows/runs/{id}/cancel.
func (s *Server) cancelWorkflowRun(w http.ResponseWriter, r *http.Request) {
	if !s.workflowsOr404(w, r) {
		return
	}
	rr, err := s.resolveRun(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	run, err := s.workflows.Cancel(r.Context(), rr.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.log.Info("api: workflow run cancel", "run", run.ID, "by", actor(r))
	writeJSON(w, http.StatusOK, WorkflowRunResponse{Run: *run})
}

// listWorkflowRuns: GET /v1/workflows/runs?task_id=&workflow=&state=&limit=.
func (s *Server) listWorkflowRuns(w http.ResponseWriter, r *http.Request) {
	if !s.workflowsOr404(w, r) {
		return
	}
	f := WorkflowRunFilter{Limit: ListLimitDefault}
	for k, vs := range r.URL.Query() {
		v := vs[len(vs)-1]
		switch k {
		case "task_id":
			f.TaskID = v
		case "workflow":
			f.Workflow = v
		case "state":
			for _, v := range vs {
				for st := range strings.SplitSeq(v, ",") {
					if st = strings.TrimSpace(st); st == "" {
						continue
					}
					if !wfrun.RunState(st).Valid() {
						s.writeError(w, r, badRequest("state", "unknown run state %q: use one of %v", st, wfrun.RunStates))
						return
					}
					f.States = append(f.States, wfrun.RunState(st))
				}
			}
		case "limit":
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > ListLimitMax {
				s.writeError(w, r, badRequest("limit", "must be a number from 1 to %d (got %q)", ListLimitMax, v))
				return
			}
			f.Limit = n
		default:
			s.writeError(w, r, badRequest(k, "unknown query parameter %q: use task_id, workflow, state or limit", k))
			return
		}
	}
	runs, err := s.workflows.Runs(r.Context(), f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if runs == nil {
		runs = []WorkflowRun{}
	}
	writeJSON(w, http.StatusOK, WorkflowRunList{Runs: runs})
}

// listWorkflowTemplates: GET /v1/workflows/templates?category=.
func (s *Server) listWorkflowTemplates(w http.ResponseWriter, r *http.Request) {
	if !s.workflowsOr404(w, r) {
		return
	}
	category := ""
	for k, vs := range r.URL.Query() {
		if k != "category" {
			s.writeError(w, r, badRequest(k, "unknown query parameter %q: use category", k))
			return
		}
		category = vs[len(vs)-1]
	}
	ts, err := s.workflows.Templates(r.Context(), category)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []WorkflowTemplate{}
	}
	writeJSON(w, http.StatusOK, WorkflowTemplateList{Templates: ts})
}

// getWorkflowTemplate: GET /v1/workflows/templates/{name}.
func (s *Server) getWorkflowTemplate(w http.ResponseWriter, r *http.Request) {
	if !s.workflowsOr404(w, r) {
		return
	}
	t, err := s.workflows.Template(r.Context(), r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// getWorkflowArtifact: GET /v1/workflows/runs/{id}/artifacts/{step}?path=/out:
// the canonical tar of one output of one step (application/x-tar).
func (s *Server) getWorkflowArtifact(w http.ResponseWriter, r *http.Request) {
	if !s.workflowsOr404(w, r) {
		return
	}
	p := ""
	for k, vs := range r.URL.Query() {
		if k != "path" {
			s.writeError(w, r, badRequest(k, "unknown query parameter %q: use path", k))
			return
		}
		p = vs[len(vs)-1]
	}
	run, err := s.resolveRun(r.Context(), r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	id, step := run.ID, r.PathValue("step")
	if p == "" {
		var paths []string
		for _, st := range run.Steps {
			if st.ID == step {
				for _, o := range st.Outputs {
					paths = append(paths, o.Path)
				}
			}
		}
		if len(paths) != 1 {
			s.writeError(w, r, badRequest("path", "step %s of run %s has %d outputs %v: name one with ?path=", step, id, len(paths), paths))
			return
		}
		p = paths[0]
	}
	rc, size, err := s.workflows.Artifact(r.Context(), id, step, p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	defer rc.Close()
	if rec, ok := w.(*recorder); ok {
		rec.streamed = true
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.tar"`, id, step))
	w.WriteHeader(http.StatusOK)
	if _, err := io.Copy(w, rc); err != nil && r.Context().Err() == nil {
		s.log.Warn("api: artifact download cut", "run", id, "step", step, "path", p, "err", err)
	}
}
