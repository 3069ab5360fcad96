package api

import (
	"context"
	"io"

	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Service is what the API needs of the job side of fusebox. The dispatcher
// satisfies it.
//
// Errors are matched with errors.Is against the job package's sentinels:
// job.ErrNotFound (404), job.ErrInvalid (400; *job.FieldError values joined
// into it name the fields), job.ErrQueueFull (429), job.ErrDuplicate and
// job.ErrTerminal and job.ErrConflict (409). Any other error is a 500.
type Service interface {
	// Submit validates spec and commits a new queued job. When
	// spec.IdempotencyKey matches an existing job with the same spec it
	// returns that job with existed == true. A spec no configured host can
	// ever satisfy is refused with an error wrapping job.ErrInvalid.
	Submit(ctx context.Context, spec job.Spec) (j *job.Job, existed bool, err error)
	Get(ctx context.Context, id string) (*job.Job, error)
	List(ctx context.Context, p store.JobListParams) ([]*job.Job, error)
	Transitions(ctx context.Context, id string) ([]job.Transition, error)
	Attempts(ctx context.Context, id string) ([]job.Attempt, error)
	// Cancel cancels a queued job at once and asks for a launching or
	// running one to be stopped (Job.CancelRequested). job.ErrTerminal if
	// the job has already finished.
	Cancel(ctx context.Context, id string) (*job.Job, error)
	// Logs returns a job's collected output; job.ErrNotFound if none was
	// collected yet.
	Logs(ctx context.Context, id string) (job.Logs, error)
	// FollowLogs copies a non-terminal job's output to stdout and stderr as
	// it is written (only what was logged since opts.Since, each line
	// prefixed with its time with opts.Timestamps) and returns when the job
	// ends or ctx is done. (The API serves a terminal job's collected logs
	// itself, without calling it.)
	FollowLogs(ctx context.Context, id string, opts LogOptions, stdout, stderr io.Writer) error
	QueueStats(ctx context.Context) (QueueStats, error)
}

// QueueStats is the state of the queue, served at GET /v1/queue.
type QueueStats struct {
	Queued    int               `json:"queued"`     // jobs waiting for a host
	Running   int               `json:"running"`    // jobs launching or running
	MaxQueued int               `json:"max_queued"` // the queue bound (0: unbounded)
	ByState   map[job.State]int `json:"by_state"`   // every state with at least one job
}

// Fleet is what the API needs of the Docker hosts. The server's view of
// the fleet satisfies it.
type Fleet interface {
	Hosts() []fleet.HostStatus
	HostTransitions() []fleet.Transition
	// HostAction applies an operator action (op.Action: fleet.ActionIsolate,
	// ActionDrain, ActionRelease, ActionReset) to the named host and stores
	// it, with who, why and when, before it returns: the host stays
	// isolated or draining across restarts. It returns an error wrapping
	// ErrHostNotFound for a name that is not configured.
	HostAction(ctx context.Context, name string, op fleet.Operator) error
}

// ErrHostNotFound is wrapped by Fleet errors for a host name that is not
// configured (404). It is the fleet's own sentinel, so the fleet's errors
// map without translation.
var ErrHostNotFound = fleet.ErrHostNotFound
