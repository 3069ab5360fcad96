package mcpserver

import (
	"time"

	"fusebox/internal/api"
	"fusebox/internal/job"
)

// The tools' outputs: plain JSON types (strings for times and durations),
// so that the schemas clients get from the SDK say exactly what comes back.

// Job is a job as the tools show it.
type Job struct {
	ID              string     `json:"id" jsonschema:"the job's id"`
	State           string     `json:"state" jsonschema:"queued, launching, running, succeeded, failed, timed_out, cancelled or lost"`
	Reason          string     `json:"reason,omitempty" jsonschema:"why it is in this state"`
	Image           string     `json:"image"`
	Command         []string   `json:"command,omitempty"`
	Host            string     `json:"host,omitempty" jsonschema:"the host of its current or last attempt"`
	Attempt         int        `json:"attempt" jsonschema:"launch attempts so far"`
	ExitCode        *int       `json:"exit_code,omitempty" jsonschema:"the container's exit code, once it ended"`
	Cause           string     `json:"cause,omitempty" jsonschema:"why it ended, typed"`
	CancelRequested bool       `json:"cancel_requested,omitempty"`
	Outputs         []Artifact `json:"outputs,omitempty"`
	CreatedAt       string     `json:"created_at"`
	StartedAt       string     `json:"started_at,omitempty"`
	FinishedAt      string     `json:"finished_at,omitempty"`
}

// Artifact is a collected output of a job or a workflow.
type Artifact struct {
	Step   string `json:"step,omitempty"`
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Transition is one change of a job's state.
type Transition struct {
	From   string `json:"from,omitempty"`
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
	Host   string `json:"host,omitempty"`
	At     string `json:"at"`
}

// Breaker is a circuit breaker's state.
type Breaker struct {
	Name                string `json:"name"`
	Kind                string `json:"kind" jsonschema:"host: a Docker host's breaker; workflow: a workflow's (its runs are refused while it is open); mcp-client: this MCP client's own breaker in front of the fusebox server"`
	State               string `json:"state" jsonschema:"closed, open, half-open, forced-open, disabled or metrics-only"`
	ConsecutiveFailures int    `json:"consecutive_failures"`
	Trips               int    `json:"trips" jsonschema:"consecutive trips (each keeps it open longer)"`
	Rejected            int64  `json:"rejected" jsonschema:"calls refused since start"`
	OpenedAt            string `json:"opened_at,omitempty"`
	NextProbeAt         string `json:"next_probe_at,omitempty"`
}

// Host is a Docker host of the fleet.
type Host struct {
	Name      string            `json:"name"`
	Address   string            `json:"address"`
	Labels    map[string]string `json:"labels,omitempty"`
	State     string            `json:"state" jsonschema:"ready, degraded, unavailable, isolated, draining, ..."`
	Reason    string            `json:"reason,omitempty"`
	Capacity  int               `json:"capacity" jsonschema:"jobs it runs at once"`
	Running   int               `json:"running" jsonschema:"jobs launching or running on it now"`
	Breaker   Breaker           `json:"breaker"`
	LastCheck string            `json:"last_check,omitempty"`
	LastError string            `json:"last_error,omitempty"`
	LatencyMS float64           `json:"latency_ms" jsonschema:"last health check's round trip"`
	Operator  *Operator         `json:"operator,omitempty" jsonschema:"the last operator action on it"`
}

// Operator is an operator action on a host.
type Operator struct {
	Action string `json:"action"`
	By     string `json:"by"`
	Reason string `json:"reason,omitempty"`
	At     string `json:"at"`
}

// Run is a workflow run.
type Run struct {
	ID         string            `json:"id"`
	Workflow   string            `json:"workflow"`
	TaskID     string            `json:"task_id,omitempty"`
	State      string            `json:"state" jsonschema:"pending, running, succeeded, failed or cancelled"`
	Reason     string            `json:"reason,omitempty"`
	Cause      string            `json:"cause,omitempty" jsonschema:"why it ended: own, fleet, cancelled, timeout"`
	Params     map[string]string `json:"params,omitempty"`
	SkipCache  bool              `json:"skip_cache,omitempty"`
	UseBreaker bool              `json:"use_circuit_breaker"`
	Steps      []Step            `json:"steps,omitempty"`
	Results    []Artifact        `json:"results,omitempty" jsonschema:"outputs no step consumes, when it succeeded"`
	CreatedAt  string            `json:"created_at"`
	StartedAt  string            `json:"started_at,omitempty"`
	FinishedAt string            `json:"finished_at,omitempty"`
}

// Step is a step of a workflow run.
type Step struct {
	ID     string `json:"id"`
	State  string `json:"state" jsonschema:"pending, waiting, submitted, running, retrying, succeeded, cached, failed, cancelled or skipped"`
	Reason string `json:"reason,omitempty"`
	JobID  string `json:"job_id,omitempty" jsonschema:"its current or last job: get_job and get_job_logs take it"`
	Try    int    `json:"try"`
	Host   string `json:"host,omitempty"`
	Cached bool   `json:"cached,omitempty"`
	WhyRan string `json:"why_ran,omitempty"`
}

// Template is a shipped workflow template.
type Template struct {
	Name        string  `json:"name"`
	Category    string  `json:"category"`
	Description string  `json:"description,omitempty"`
	Params      []Param `json:"params,omitempty"`
	Source      string  `json:"source,omitempty" jsonschema:"the YAML definition (get_workflow_template only)"`
}

// Param is a parameter of a template.
type Param struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Default     string `json:"default,omitempty"`
	Required    bool   `json:"required,omitempty"`
	Description string `json:"description,omitempty"`
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func jobOf(j *job.Job) Job {
	out := Job{ID: j.ID, State: string(j.State), Reason: j.Reason, Image: j.Spec.Image, Command: j.Spec.Command,
		Host: j.Host, Attempt: j.Attempt, ExitCode: j.ExitCode, Cause: string(j.Cause), CancelRequested: j.CancelRequested,
		CreatedAt: timeText(j.CreatedAt), StartedAt: timeText(j.StartedAt), FinishedAt: timeText(j.FinishedAt)}
	for _, o := range j.Outputs {
		out.Outputs = append(out.Outputs, Artifact{Path: o.Path, Digest: o.Digest, Size: o.Size})
	}
	return out
}

func breakerOf(name, kind string, b api.HostBreaker) Breaker {
	return Breaker{Name: name, Kind: kind, State: b.State.String(), ConsecutiveFailures: b.ConsecutiveFailures, Trips: b.Trips,
		Rejected: b.Rejected, OpenedAt: timeText(b.OpenedAt), NextProbeAt: timeText(b.NextProbeAt)}
}

func hostOf(h *api.Host) Host {
	out := Host{Name: h.Name, Address: h.Address, Labels: h.Labels, State: string(h.State), Reason: h.Reason,
		Capacity: h.Capacity, Running: h.Running, Breaker: breakerOf("host/"+h.Name, "host", h.Breaker),
		LastCheck: timeText(h.LastCheck), LastError: h.LastError, LatencyMS: float64(h.Latency) / float64(time.Millisecond)}
	if op := h.Operator; op != nil {
		out.Operator = &Operator{Action: op.Action, By: op.By, Reason: op.Reason, At: timeText(op.At)}
	}
	return out
}

func runOf(r *api.WorkflowRun) Run {
	out := Run{ID: r.ID, Workflow: r.Workflow, TaskID: r.TaskID, State: string(r.State), Reason: r.Reason, Cause: string(r.Cause),
		Params: r.Params, SkipCache: r.SkipCache, UseBreaker: r.UseBreaker,
		CreatedAt: timeText(r.CreatedAt), StartedAt: timeText(r.StartedAt), FinishedAt: timeText(r.FinishedAt)}
	for _, st := range r.Steps {
		out.Steps = append(out.Steps, Step{ID: st.ID, State: string(st.State), Reason: st.Reason, JobID: st.JobID,
			Try: st.Try, Host: st.Host, Cached: st.Cached, WhyRan: st.WhyRan})
	}
	for _, res := range r.Results {
		out.Results = append(out.Results, Artifact{Step: res.Step, Path: res.Path, Digest: res.Digest, Size: res.Size})
	}
	return out
}

func templateOf(t *api.WorkflowTemplate) Template {
	out := Template{Name: t.Name, Category: t.Category, Description: t.Description, Source: t.Source}
	for _, p := range t.Params {
		out.Params = append(out.Params, Param(p))
	}
	return out
}
