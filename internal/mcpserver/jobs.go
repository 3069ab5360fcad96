package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// SubmitJobIn is the input of submit_job.
type SubmitJobIn struct {
	CallOptions
	Image          string            `json:"image" jsonschema:"the container image, e.g. alpine:3.20"`
	Command        []string          `json:"command,omitempty" jsonschema:"the command and its arguments, e.g. [\"sh\",\"-c\",\"echo hi\"]; the image's default when empty"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"environment variables of the container"`
	Constraints    map[string]string `json:"constraints,omitempty" jsonschema:"host labels the host must carry, e.g. {\"gpu\":\"true\"}"`
	Timeout        string            `json:"timeout,omitempty" jsonschema:"how long the job may run, e.g. 10m or 90s; none when empty"`
	IdempotencyKey string            `json:"idempotency_key,omitempty" jsonschema:"a key of your own: submitting again with the same key and spec returns the same job instead of a second one"`
	WaitSeconds    int               `json:"wait_seconds,omitempty" jsonschema:"0 (default) returns at once with the job's id; 1..25 waits that long for the job to end and returns its exit code and log tail"`
}

// SubmitJobOut is the output of submit_job.
type SubmitJobOut struct {
	Job      Job    `json:"job"`
	Existed  bool   `json:"existed" jsonschema:"true when the idempotency key matched a job submitted before (that job is returned)"`
	Finished bool   `json:"finished" jsonschema:"true when the job had ended before the call returned"`
	Stdout   string `json:"stdout,omitempty" jsonschema:"the last lines of its output, when it finished"`
	Stderr   string `json:"stderr,omitempty" jsonschema:"the last lines of its error output, when it finished"`
	Note     string `json:"note,omitempty"`
}

// JobIDIn is the input of the tools that take a job id.
type JobIDIn struct {
	CallOptions
	ID string `json:"id" jsonschema:"the job's id (from submit_job or list_jobs)"`
}

// GetJobOut is the output of get_job.
type GetJobOut struct {
	Job         Job          `json:"job"`
	Transitions []Transition `json:"transitions,omitempty" jsonschema:"its state changes, oldest first"`
}

// ListJobsIn is the input of list_jobs.
type ListJobsIn struct {
	CallOptions
	State string `json:"state,omitempty" jsonschema:"only jobs in this state: queued, launching, running, succeeded, failed, timed_out, cancelled or lost"`
	Host  string `json:"host,omitempty" jsonschema:"only jobs whose current or last attempt is on this host"`
	Limit int    `json:"limit,omitempty" jsonschema:"at most this many, newest first (default 20, at most 200)"`
}

// ListJobsOut is the output of list_jobs.
type ListJobsOut struct {
	Jobs []Job `json:"jobs,omitempty"`
}

// JobLogsIn is the input of get_job_logs.
type JobLogsIn struct {
	CallOptions
	ID        string `json:"id" jsonschema:"the job's id"`
	TailLines int    `json:"tail_lines,omitempty" jsonschema:"the last this many lines of each stream (default 100, at most 5000)"`
	MaxBytes  int    `json:"max_bytes,omitempty" jsonschema:"at most this many bytes of each stream (default 16384, at most 262144)"`
}

// JobLogsOut is the output of get_job_logs.
type JobLogsOut struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Stdout    string `json:"stdout"`
	Stderr    string `json:"stderr"`
	Truncated bool   `json:"truncated" jsonschema:"true when earlier output was left out"`
	Note      string `json:"note,omitempty"`
}

// JobOut is the output of cancel_job and retry_job (the new job).
type JobOut struct {
	Job Job `json:"job"`
}

func (s *server) addJobTools() {
	register(s, tool{Tool: &mcp.Tool{Name: "submit_job",
		Description: "Run a container job on the fleet. Returns at once with the job's id and state (queued), or, with wait_seconds (at most 25), " +
			"waits for it to end and returns its state, exit code and the tail of its output; a job still running then is left running (follow it with get_job). " +
			"Give an idempotency_key to make retries of this call safe.",
		Annotations: writes("Submit a container job", false, false, true)}}, s.submitJob)
	register(s, tool{Tool: &mcp.Tool{Name: "get_job",
		Description: "Get one job: its state, reason, host, exit code and state changes.",
		Annotations: readOnly("Get a job")}}, s.getJob)
	register(s, tool{Tool: &mcp.Tool{Name: "list_jobs",
		Description: "List jobs, newest first, optionally only those in one state or on one host.",
		Annotations: readOnly("List jobs")}}, s.listJobs)
	register(s, tool{Tool: &mcp.Tool{Name: "get_job_logs",
		Description: "Get the tail of a job's output (stdout and stderr), bounded: by default the last 100 lines and at most 16 KiB of each, " +
			"so a big log does not flood your context; truncated says when earlier output was left out.",
		Annotations: readOnly("Get a job's logs")}}, s.jobLogs)
	register(s, tool{Tool: &mcp.Tool{Name: "cancel_job",
		Description: "Cancel a job: a queued one never runs, a running one's container is stopped. A job that has already ended cannot be cancelled.",
		Annotations: writes("Cancel a job", true, true, false)}}, s.cancelJob)
	register(s, tool{Tool: &mcp.Tool{Name: "retry_job",
		Description: "Run a job that has ended (failed, timed out, cancelled, lost, or succeeded) again: a new job with the same spec. " +
			"Returns the new job at once; follow it with get_job. A job that has not ended cannot be retried: cancel it first, or wait.",
		Annotations: writes("Retry a job", false, false, true)}}, s.retryJob)
}

func (s *server) submitJob(ctx context.Context, in SubmitJobIn) (SubmitJobOut, error) {
	if strings.TrimSpace(in.Image) == "" {
		return SubmitJobOut{}, badArg("image", "is required, e.g. alpine:3.20")
	}
	if in.WaitSeconds < 0 || time.Duration(in.WaitSeconds)*time.Second > WaitMax {
		return SubmitJobOut{}, badArg("wait_seconds", "must be 0..%d (got %d)", int(WaitMax/time.Second), in.WaitSeconds)
	}
	spec := job.Spec{Image: in.Image, Command: in.Command, Env: in.Env, Constraints: in.Constraints, IdempotencyKey: in.IdempotencyKey}
	if in.Timeout != "" {
		d, err := time.ParseDuration(in.Timeout)
		if err != nil || d <= 0 {
			return SubmitJobOut{}, badArg("timeout", "must be a positive duration such as 10m or 90s (got %q)", in.Timeout)
		}
		spec.Timeout = job.Duration(d)
	}
	j, existed, err := s.b.Submit(ctx, spec)
	if err != nil {
		return SubmitJobOut{}, err
	}
	out := SubmitJobOut{Existed: existed}
	if in.WaitSeconds > 0 && !j.State.Terminal() {
		wctx, cancel := context.WithTimeout(ctx, time.Duration(in.WaitSeconds)*time.Second)
		ended, err := s.b.WaitTransitions(wctx, j.ID, func(t job.Transition) {
			progress(ctx, "job %s: %s", j.ID, t.To)
		})
		cancel()
		switch {
		case err == nil:
			j = ended
		case ctx.Err() == nil && wctx.Err() != nil:
			if d, err := s.b.Get(ctx, j.ID); err == nil {
				j = d.Job
			}
			out.Note = fmt.Sprintf("the job is still %s after %d s; it goes on: follow it with get_job and get_job_logs", j.State, in.WaitSeconds)
		default:
			return SubmitJobOut{}, err
		}
	}
	out.Job = jobOf(j)
	if j.State.Terminal() {
		out.Finished = true
		if in.WaitSeconds > 0 {
			logs, err := s.logs(ctx, j.ID, JobLogsIn{})
			if err == nil {
				out.Stdout, out.Stderr = logs.Stdout, logs.Stderr
				if logs.Note != "" {
					out.Note = logs.Note
				}
			}
		}
	}
	return out, nil
}

func needID(id, what string) error {
	if strings.TrimSpace(id) == "" {
		return badArg("id", "is required: the %s's id", what)
	}
	return nil
}

func (s *server) getJob(ctx context.Context, in JobIDIn) (GetJobOut, error) {
	if err := needID(in.ID, "job"); err != nil {
		return GetJobOut{}, err
	}
	d, err := s.b.Get(ctx, in.ID)
	if err != nil {
		return GetJobOut{}, err
	}
	out := GetJobOut{Job: jobOf(d.Job)}
	for _, t := range d.Transitions {
		out.Transitions = append(out.Transitions, Transition{From: string(t.From), To: string(t.To), Reason: t.Reason, Host: t.Host, At: timeText(t.At)})
	}
	return out, nil
}

// listLimit is the limit of a list tool: 1..200, 0 meaning 20.
func listLimit(n int) (int, error) {
	switch {
	case n < 0 || n > 200:
		return 0, badArg("limit", "must be 1..200 (got %d)", n)
	case n == 0:
		return 20, nil
	}
	return n, nil
}

func (s *server) listJobs(ctx context.Context, in ListJobsIn) (ListJobsOut, error) {
	p := store.JobListParams{Host: in.Host, Limit: in.Limit}
	if in.State != "" {
		st := job.State(in.State)
		if !st.Valid() {
			return ListJobsOut{}, badArg("state", "must be one of queued, launching, running, succeeded, failed, timed_out, cancelled, lost (got %q)", in.State)
		}
		p.States = []job.State{st}
	}
	var err error
	if p.Limit, err = listLimit(in.Limit); err != nil {
		return ListJobsOut{}, err
	}
	jobs, err := s.b.List(ctx, p)
	if err != nil {
		return ListJobsOut{}, err
	}
	var out ListJobsOut
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, jobOf(j))
	}
	return out, nil
}

func (s *server) jobLogs(ctx context.Context, in JobLogsIn) (JobLogsOut, error) {
	if err := needID(in.ID, "job"); err != nil {
		return JobLogsOut{}, err
	}
	switch {
	case in.TailLines < 0 || in.TailLines > TailLinesMax:
		return JobLogsOut{}, badArg("tail_lines", "must be 1..%d (got %d)", TailLinesMax, in.TailLines)
	case in.MaxBytes < 0 || in.MaxBytes > MaxBytesMax:
		return JobLogsOut{}, badArg("max_bytes", "must be 1..%d (got %d)", MaxBytesMax, in.MaxBytes)
	}
	return s.logs(ctx, in.ID, in)
}

// logs reads a job's collected output and tails it.
func (s *server) logs(ctx context.Context, id string, in JobLogsIn) (JobLogsOut, error) {
	lines, maxBytes := cmpOr(in.TailLines, TailLinesDefault), cmpOr(in.MaxBytes, MaxBytesDefault)
	d, err := s.b.Get(ctx, id)
	if err != nil {
		return JobLogsOut{}, err
	}
	out := JobLogsOut{ID: id, State: string(d.Job.State)}
	logs, err := s.b.Logs(ctx, id)
	var ae *apiclient.Error
	if errors.As(err, &ae) && ae.Code == api.CodeNoLogs {
		out.Note = fmt.Sprintf("no output collected yet: the job is %s; output is collected while it runs and when it ends", d.Job.State)
		return out, nil
	}
	if err != nil {
		return JobLogsOut{}, err
	}
	var cutOut, cutErr int
	out.Stdout, cutOut = tail(logs.Stdout, lines, maxBytes)
	out.Stderr, cutErr = tail(logs.Stderr, lines, maxBytes)
	out.Truncated = logs.Truncated || cutOut > 0 || cutErr > 0
	switch {
	case cutOut > 0 || cutErr > 0:
		out.Note = fmt.Sprintf("showing the tail only (%d lines / %d bytes of each stream at most): %d bytes of stdout and %d of stderr left out before it; "+
			"raise tail_lines or max_bytes to see more", lines, maxBytes, cutOut, cutErr)
	case logs.Truncated:
		out.Note = "the server kept only part of this job's output (logs.max_bytes)"
	}
	if !d.Job.State.Terminal() {
		out.Note = strings.TrimPrefix(out.Note+"; the job is still "+string(d.Job.State)+": this is its output so far", "; ")
	}
	return out, nil
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func (s *server) cancelJob(ctx context.Context, in JobIDIn) (JobOut, error) {
	if err := needID(in.ID, "job"); err != nil {
		return JobOut{}, err
	}
	j, err := s.b.Cancel(ctx, in.ID)
	if err != nil {
		return JobOut{}, err
	}
	return JobOut{Job: jobOf(j)}, nil
}

func (s *server) retryJob(ctx context.Context, in JobIDIn) (JobOut, error) {
	if err := needID(in.ID, "job"); err != nil {
		return JobOut{}, err
	}
	j, err := s.b.Retry(ctx, in.ID)
	if err != nil {
		return JobOut{}, err
	}
	return JobOut{Job: jobOf(j)}, nil
}
