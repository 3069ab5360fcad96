package store

import (
	"context"
	"time"

	"fusebox/internal/job"
	"fusebox/internal/workflow/wfrun"
)

// WorkflowStore keeps workflow runs, their steps and the step cache
// (internal/workflow). It is part of Store.
//
// Every change of a run or a step appends its event (event.TypeWorkflowRun,
// event.TypeWorkflowStep, with event.WorkflowRun or event.WorkflowStep as
// Data) in the transaction that makes it, and the event hook is called
// after the commit as for every append. Unknown runs and steps are
// job.ErrNotFound; a compare-and-set that finds another state is
// job.ErrConflict.
type WorkflowStore interface {
	// WorkflowRunInsert commits a new run with all its steps and the run's
	// first event ("" -> p.Run.State), in one transaction. The run's ID,
	// Workflow, a valid State and CreatedAt are required, and every step
	// needs an ID unique in the run and a valid State; their RunID and
	// UpdatedAt are set from the run. A run with an ID already stored is
	// refused.
	WorkflowRunInsert(ctx context.Context, p WorkflowRunInsertParams) error

	// WorkflowRunGet returns a run and its steps, in the order they were
	// inserted.
	WorkflowRunGet(ctx context.Context, id string) (*wfrun.Run, []wfrun.Step, error)

	// WorkflowRunList returns runs matching p, newest first (CreatedAt
	// desc, ID desc).
	WorkflowRunList(ctx context.Context, p WorkflowRunListParams) ([]*wfrun.Run, error)

	// WorkflowRunListActive returns every run not in a terminal state,
	// oldest first: the runs a runner resumes.
	WorkflowRunListActive(ctx context.Context) ([]*wfrun.Run, error)

	// WorkflowRunUpdate changes a run that is in one of p.From (all
	// states when From is empty) to p.To, applies p's fields and appends
	// its event, in one transaction, and returns the run after it.
	WorkflowRunUpdate(ctx context.Context, p WorkflowRunUpdateParams) (*wfrun.Run, error)

	// WorkflowStepUpdate changes a step that is in one of p.From (all
	// states when From is empty) to p.To, applies p's fields and appends
	// its event, in one transaction, and returns the step after it. A step
	// of a run in a terminal state is refused with job.ErrTerminal.
	WorkflowStepUpdate(ctx context.Context, p WorkflowStepUpdateParams) (*wfrun.Step, error)

	// WorkflowRunDeleteFinished deletes up to p.Limit runs in a terminal
	// state that finished before p.Before, oldest first, with their steps,
	// and up to p.Limit cache entries that expired before p.Before, in one
	// transaction; it returns how many runs it deleted. Runs follow the
	// retention of jobs (their events have no job and follow it already,
	// see JobDeleteFinished).
	WorkflowRunDeleteFinished(ctx context.Context, p JobDeleteFinishedParams) (int, error)

	// WorkflowCacheGet returns the cache entry with key whose ExpiresAt is
	// after now; ok is false when there is none.
	WorkflowCacheGet(ctx context.Context, key string, now time.Time) (e wfrun.CacheEntry, ok bool, err error)

	// WorkflowCachePut stores e by its Key, replacing an entry with the
	// same key. Key, Workflow, Step, CreatedAt and ExpiresAt are required.
	WorkflowCachePut(ctx context.Context, e wfrun.CacheEntry) error

	// WorkflowCacheLatest returns the newest entry (by CreatedAt) of a
	// workflow's step, expired or not, for saying why a step missed the
	// cache; ok is false when there is none.
	WorkflowCacheLatest(ctx context.Context, workflow, step string) (e wfrun.CacheEntry, ok bool, err error)
}

// WorkflowRunInsertParams are the arguments of Store.WorkflowRunInsert.
type WorkflowRunInsertParams struct {
	Run   *wfrun.Run
	Steps []wfrun.Step
}

// WorkflowRunListParams filter Store.WorkflowRunList. Zero values do not
// filter.
type WorkflowRunListParams struct {
	TaskID   string
	Workflow string // the first run listed is the one a workflow's name means
	// IDPrefix: only runs whose id starts with it (resolving an
	// abbreviated id: ask for two to learn whether it is unique).
	IDPrefix string
	States   []wfrun.RunState
	Limit    int // 0: 100
}

// WorkflowRunUpdateParams are the arguments of Store.WorkflowRunUpdate.
// Pointer fields left nil are not changed.
type WorkflowRunUpdateParams struct {
	ID     string
	From   []wfrun.RunState // empty: any state
	To     wfrun.RunState
	Reason string
	Now    time.Time // required: the run's UpdatedAt and the event's time

	Cause           *wfrun.Cause
	CancelRequested *bool
	Results         []wfrun.Result // nil: unchanged
	StartedAt       *time.Time
	FinishedAt      *time.Time
}

// WorkflowStepUpdateParams are the arguments of Store.WorkflowStepUpdate.
// Pointer fields left nil are not changed.
type WorkflowStepUpdateParams struct {
	RunID  string
	ID     string
	From   []wfrun.StepState // empty: any state
	To     wfrun.StepState
	Reason string
	Now    time.Time // required

	JobID      *string
	Try        *int
	Host       *string
	NextAt     *time.Time
	CacheKey   *string
	Cached     *bool
	WhyRan     *string
	JobCause   *job.Cause
	Outputs    []job.Output // nil: unchanged
	StartedAt  *time.Time
	FinishedAt *time.Time
}
