package apiclient

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"fusebox/internal/api"
)

func runPath(id string, rest ...string) string {
	return "/v1/workflows/runs/" + url.PathEscape(id) + strings.Join(rest, "")
}

// StartWorkflow starts a run of a definition or a template. A definition
// with problems is an *Error whose Problems name them (file:line: field);
// an open workflow breaker an *Error with status 503 and RetryAfter.
func (c *Client) StartWorkflow(ctx context.Context, req api.WorkflowRunRequest) (*api.WorkflowRun, error) {
	var out api.WorkflowRunResponse
	if _, err := c.do(ctx, http.MethodPost, "/v1/workflows/runs", nil, req, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// WorkflowRun returns one run with its steps.
func (c *Client) WorkflowRun(ctx context.Context, id string) (*api.WorkflowRun, error) {
	var out api.WorkflowRunResponse
	if _, err := c.do(ctx, http.MethodGet, runPath(id), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// WorkflowRuns lists runs, newest first.
func (c *Client) WorkflowRuns(ctx context.Context, f api.WorkflowRunFilter) ([]api.WorkflowRun, error) {
	q := url.Values{}
	if f.TaskID != "" {
		q.Set("task_id", f.TaskID)
	}
	if f.Workflow != "" {
		q.Set("workflow", f.Workflow)
	}
	for _, s := range f.States {
		q.Add("state", string(s))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out api.WorkflowRunList
	if _, err := c.do(ctx, http.MethodGet, "/v1/workflows/runs", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Runs, nil
}

// CancelWorkflowRun asks a run to stop.
func (c *Client) CancelWorkflowRun(ctx context.Context, id string) (*api.WorkflowRun, error) {
	var out api.WorkflowRunResponse
	if _, err := c.do(ctx, http.MethodPost, runPath(id, "/cancel"), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out.Run, nil
}

// WorkflowTemplates lists the shipped templates of a category ("": all).
func (c *Client) WorkflowTemplates(ctx context.Context, category string) ([]api.WorkflowTemplate, error) {
	var q url.Values
	if category != "" {
		q = url.Values{"category": {category}}
	}
	var out api.WorkflowTemplateList
	if _, err := c.do(ctx, http.MethodGet, "/v1/workflows/templates", q, nil, &out); err != nil {
		return nil, err
	}
	return out.Templates, nil
}

// WorkflowTemplate returns one template with its source.
func (c *Client) WorkflowTemplate(ctx context.Context, name string) (*api.WorkflowTemplate, error) {
	var out api.WorkflowTemplate
	if _, err := c.do(ctx, http.MethodGet, "/v1/workflows/templates/"+url.PathEscape(name), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// WorkflowArtifact opens the canonical tar of a step's output (path "":
// the step's only output). The caller closes it.
func (c *Client) WorkflowArtifact(ctx context.Context, runID, step, path string) (io.ReadCloser, error) {
	var q url.Values
	if path != "" {
		q = url.Values{"path": {path}}
	}
	req, err := c.request(ctx, http.MethodGet, runPath(runID, "/artifacts/", url.PathEscape(step)), q, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/x-tar")
	res, err := c.send(req)
	if err != nil {
		return nil, err
	}
	return res.Body, nil
}
