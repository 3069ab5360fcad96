// Package store declares the interface through which fusebox keeps jobs,
// their attempts, their state transitions, their logs, the event log
// (internal/event), the alert outbox (internal/alert) and workflow runs
// with their steps and step cache (internal/workflow) durably.
//
// The dispatcher, the API and the CLI import only this interface; the
// concrete store (SQLite in internal/store/sqlite, PostgreSQL later) is chosen
// in cmd/fusebox. Every implementation runs the same conformance suite,
// internal/store/storetest.
//
// This package owns the contract, not any SQL, and must not import the
// dispatcher, the fleet or the engine.
package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"fusebox/internal/event"
	"fusebox/internal/job"
)

// Store keeps jobs durably. Every method that changes data commits before it
// returns; an error means nothing was changed.
//
// Errors: job.ErrNotFound for an unknown id, job.ErrConflict when a
// compare-and-set transition finds the job in another state,
// job.ErrQueueFull when an insert would pass the queue bound,
// job.ErrDuplicate when an idempotency key is reused with another spec.
type Store interface {
	// JobInsert commits a new job in state queued, with a first transition
	// ("" -> queued, reason "submitted") and its event.TypeJobTransition
	// event, in one transaction.
	//
	// A Spec.Name held by a job that has not ended returns an error
	// wrapping job.ErrNameInUse (the idempotency key is looked at first).
	// If p.Job.Spec.IdempotencyKey is set and a job with that key exists, it
	// returns that job with existed == true and inserts nothing; if the
	// stored spec differs from p.Job.Spec it returns job.ErrDuplicate.
	//
	// If p.MaxQueued > 0 and the number of jobs in state queued is already
	// p.MaxQueued or more, it returns job.ErrQueueFull and inserts nothing.
	// The count and the insert are one transaction.
	JobInsert(ctx context.Context, p JobInsertParams) (j *job.Job, existed bool, err error)

	// JobGetByID returns one job or job.ErrNotFound.
	JobGetByID(ctx context.Context, id string) (*job.Job, error)

	// JobList returns jobs matching p, newest first (CreatedAt desc, ID desc).
	JobList(ctx context.Context, p JobListParams) ([]*job.Job, error)

	// JobListQueued returns queued jobs whose NotBefore is zero or not after
	// p.Now, in dispatch order: Priority desc, CreatedAt asc, ID asc.
	JobListQueued(ctx context.Context, p JobListQueuedParams) ([]*job.Job, error)

	// QueueKeyList returns the constraint keys (see ConstraintsKey) of the
	// queued jobs, ready or waiting for a backoff, each with its constraints
	// and how many queued jobs carry it, in key order. It costs the number
	// of distinct keys, not the length of the queue.
	QueueKeyList(ctx context.Context) ([]QueueKey, error)

	// JobListReady returns up to p.Limit queued jobs with constraints key
	// p.Key whose NotBefore is zero or not after p.Now, in dispatch order
	// (Priority desc, CreatedAt asc, ID asc), starting after p.After when it
	// is set. The rows are light (no spec): their cost does not grow with
	// the spec's size.
	JobListReady(ctx context.Context, p JobListReadyParams) ([]QueuedJob, error)

	// JobSetWaitReason sets the reason (and UpdatedAt, to p.Now) of up to
	// p.Limit queued jobs with constraints key p.Key whose NotBefore is zero
	// or not after p.Now and whose reason differs from p.Reason, in one
	// transaction, and returns how many it changed (p.Limit: there may be
	// more). It records no transition: the state does not change. When no
	// reason differs it writes nothing.
	JobSetWaitReason(ctx context.Context, p JobSetWaitReasonParams) (int, error)

	// JobNextNotBefore returns the earliest NotBefore after now among the
	// queued jobs: when the next backoff ends. Zero if none is waiting for
	// one.
	JobNextNotBefore(ctx context.Context, now time.Time) (time.Time, error)

	// JobDeleteFinished deletes up to p.Limit jobs in a terminal state that
	// finished (their UpdatedAt) before p.Before, oldest first, with their
	// transitions, attempts, logs and events, in one transaction; it returns
	// how many it deleted. Jobs in other states, and jobs with a fence, are
	// never deleted. In the same transaction it deletes up to
	// EventPruneFactor*p.Limit events of no job (hosts, operators) that
	// happened before p.Before, oldest first: events follow the retention
	// of jobs. So do alerts: up to EventPruneFactor*p.Limit alert notices
	// delivered before p.Before and as many alert states resolved (EndsAt)
	// before p.Before go in the same transaction; undelivered notices and
	// firing states are never deleted.
	JobDeleteFinished(ctx context.Context, p JobDeleteFinishedParams) (int, error)

	// JobListActive returns every job in state launching or running (for
	// monitoring and for reconciling after a restart), oldest first.
	JobListActive(ctx context.Context) ([]*job.Job, error)

	// JobCountByState returns how many jobs are in each state (states with
	// none may be absent).
	JobCountByState(ctx context.Context) (map[job.State]int, error)

	// JobTransition moves a job to p.To if it is currently in one of p.From
	// (and, when p.ExpectAttempt is set, on that attempt), applies the field
	// updates in p, records a job.Transition, and keeps the attempts table in
	// step, all in one transaction:
	//   - if p.SetAttempt is set and greater than the job's attempt, a new
	//     attempt row (number, host, started at p.Now) is inserted;
	//   - if p.ContainerID is set, the current attempt row gets it too;
	//   - if the job leaves launching/running for any other state, the
	//     current attempt row is finished at p.Now with outcome
	//     p.AttemptOutcome (default: string(p.To)) and error p.Reason;
	//   - an event.TypeJobTransition event (from, to, reason, host,
	//     attempt, the attempt's outcome if it finished) is appended.
	//
	// It returns the updated job, job.ErrNotFound, or job.ErrConflict when
	// the job is not in one of p.From (or not on p.ExpectAttempt).
	JobTransition(ctx context.Context, p JobTransitionParams) (*job.Job, error)

	// JobSetCancelRequested marks a launching or running job for
	// cancellation (the dispatcher stops its container). It returns the job;
	// job.ErrTerminal if it has already finished, job.ErrConflict if it is
	// queued (cancel it with a transition instead: a queued job has no
	// container to stop, and a flag on it could be missed by the scheduler).
	JobSetCancelRequested(ctx context.Context, id string) (*job.Job, error)

	// JobTransitionList returns a job's transitions in order.
	JobTransitionList(ctx context.Context, jobID string) ([]job.Transition, error)

	// AttemptList returns a job's attempts in order.
	AttemptList(ctx context.Context, jobID string) ([]job.Attempt, error)

	// FenceList returns the fences on host ("" for every host), oldest
	// first. A fence is added by JobTransition (JobTransitionParams.Fence).
	FenceList(ctx context.Context, host string) ([]Fence, error)

	// FenceClear deletes a fence once its container is confirmed gone and
	// appends p.Note to the error of the attempt it fenced, so the job's
	// record says what became of that container. Clearing a fence that
	// does not exist is not an error.
	FenceClear(ctx context.Context, p FenceClearParams) error

	// LogsSet stores the collected output of a job (replacing any earlier).
	LogsSet(ctx context.Context, jobID string, logs job.Logs) error

	// LogsGet returns a job's stored output; job.ErrNotFound if none was
	// stored yet.
	LogsGet(ctx context.Context, jobID string) (job.Logs, error)

	// EventAppend appends ev (its Seq is ignored) and returns its sequence
	// number, greater than every earlier event's. For events that describe
	// no state change of the store's own; a job transition appends its
	// event itself.
	EventAppend(ctx context.Context, ev event.Event) (int64, error)

	// EventList returns up to p.Limit (0: 100) events matching p.Filter
	// with Seq greater than p.AfterSeq, in Seq order. Sequence numbers are
	// committed in order: once an event is listed, no event with a smaller
	// Seq appears later.
	EventList(ctx context.Context, p EventListParams) ([]event.Event, error)

	// EventLastSeq returns the greatest Seq appended so far (even if that
	// event was since deleted), 0 if none.
	EventLastSeq(ctx context.Context) (int64, error)

	// SetEventHook sets fn (nil: none) to be called after every commit
	// that appended events, with the greatest Seq it appended; fn must not
	// block (event.Bus.Notify does not). Set it before the store is used.
	SetEventHook(fn func(lastSeq int64))

	// HostActionRecord stores an operator action on a host and returns the
	// host's operator state after it, in one transaction with its
	// event.TypeOperatorAction event (Host; Data is {"action", "by",
	// "reason"}). The state changes by the action: isolate sets Isolated,
	// drain sets Draining, release clears both, reset clears Isolated (it
	// closes the host's breaker). An empty Host or By, an unknown Action or
	// a zero At is refused.
	HostActionRecord(ctx context.Context, a HostAction) (HostOperator, error)

	// HostOperatorList returns the operator state of every host an
	// operator has acted on, by host name. The actions before the last one
	// are in the event log.
	HostOperatorList(ctx context.Context) ([]HostOperator, error)

	// AlertEnqueue upserts p.States (by Fingerprint), appends p.Notices
	// to the outbox (their ID, Attempts, NextAt and DeliveredAt are
	// ignored; a zero CreatedAt is p.At) and, when p.Cursor > 0, stores it
	// as the alert cursor (see AlertCursor), in one transaction. A state
	// without a fingerprint or with a status other than firing or resolved,
	// a notice without a receiver, webhook id or body, or a zero p.At is
	// refused.
	AlertEnqueue(ctx context.Context, p AlertEnqueueParams) error

	// AlertStates returns the last known state of every alert, by
	// fingerprint.
	AlertStates(ctx context.Context) ([]AlertState, error)

	// AlertCursor returns the sequence number of the last event the alert
	// evaluator has processed (AlertEnqueueParams.Cursor), 0 if never set.
	AlertCursor(ctx context.Context) (int64, error)

	// AlertNextNotice returns the oldest undelivered notice of receiver (by
	// ID), whatever its NextAt; ok is false when it has none.
	AlertNextNotice(ctx context.Context, receiver string) (n AlertNotice, ok bool, err error)

	// AlertNoticeDelivered marks notice id delivered at at and appends ev
	// (of type event.TypeAlertDelivery) in the same transaction; the event
	// hook is called as for every append. A notice already delivered is
	// left as it is and ev is not appended; an unknown id is
	// job.ErrNotFound.
	AlertNoticeDelivered(ctx context.Context, id int64, at time.Time, ev event.Event) error

	// AlertNoticeFailed records a failed attempt to deliver notice id: its
	// Attempts grows by one, LastError is errMsg, NextAt is nextAt, and its
	// receiver's last error (AlertReceiverStats) is errMsg at at. A notice
	// already delivered is left as it is; an unknown id is job.ErrNotFound.
	AlertNoticeFailed(ctx context.Context, id int64, errMsg string, nextAt, at time.Time) error

	// AlertReceiverStats returns, by receiver name, every receiver that has
	// notices or has been delivered to or failed: its undelivered notices,
	// its last delivery and its last error.
	AlertReceiverStats(ctx context.Context) ([]AlertReceiverStats, error)

	// WorkflowStore: workflow runs, their steps and the step cache.
	WorkflowStore

	// ArtifactsInUse returns the digests of every artifact a stored job,
	// workflow step, run result or cache entry refers to: what artifact
	// garbage collection keeps.
	ArtifactsInUse(ctx context.Context) (map[string]bool, error)

	// InstanceID returns the id of the fusebox this store belongs to: made
	// once, when the store is created, and the same for every replica
	// sharing it. fusebox labels its containers with it.
	InstanceID(ctx context.Context) (string, error)

	// Close releases the store. Safe to call twice.
	Close() error
}

// Operator actions on a host (HostAction.Action).
const (
	HostActionIsolate = "isolate"
	HostActionDrain   = "drain"
	HostActionRelease = "release"
	HostActionReset   = "reset"
)

// HostAction is an operator's action on a host: what, who, why, when.
type HostAction struct {
	Host   string
	Action string // HostActionIsolate, ...
	By     string // the API token's name
	Reason string
	At     time.Time
}

// HostOperator is a host's operator state, as the operator actions left
// it, with the last of them.
type HostOperator struct {
	Host     string
	Isolated bool
	Draining bool
	Last     HostAction
}

// Alert statuses (AlertState.Status).
const (
	AlertFiring   = "firing"
	AlertResolved = "resolved"
)

// AlertState is the last known state of one alert (by fingerprint).
type AlertState struct {
	Fingerprint string            // alert.Fingerprint(Labels)
	Labels      map[string]string // includes "alertname"
	Annotations map[string]string
	Status      string // AlertFiring or AlertResolved
	StartsAt    time.Time
	EndsAt      time.Time // zero while firing
	SentAt      time.Time // when a notice of it was last enqueued (repeat_interval counts from here)
}

// AlertNotice is one outbox row: a webhook body for one receiver.
type AlertNotice struct {
	ID          int64 // set by the store, grows
	Receiver    string
	WebhookID   string // stable across retries (Standard Webhooks "webhook-id")
	Body        []byte // the rendered JSON body
	CreatedAt   time.Time
	Attempts    int
	NextAt      time.Time // not before this (retry backoff)
	LastError   string
	DeliveredAt time.Time // zero until delivered
}

// AlertEnqueueParams are the arguments of Store.AlertEnqueue.
type AlertEnqueueParams struct {
	States  []AlertState  // upserted by fingerprint
	Notices []AlertNotice // appended (ID, Attempts, NextAt, DeliveredAt ignored)
	Cursor  int64         // if > 0: the event seq the evaluator has processed, stored in the same tx
	At      time.Time
}

// AlertReceiverStats is the outbox of one receiver, for `fusebox alerts`.
type AlertReceiverStats struct {
	Receiver        string
	Pending         int // undelivered notices
	LastDeliveredAt time.Time
	LastErrorAt     time.Time
	LastError       string
}

// EventListParams are the arguments of Store.EventList: the event
// package's, so that a Store is an event.Source.
type EventListParams = event.ListParams

// EventPruneFactor bounds the events of no job JobDeleteFinished deletes:
// this many per job of its Limit.
const EventPruneFactor = 10

// JobInsertParams are the arguments of Store.JobInsert.
type JobInsertParams struct {
	// Job to insert. ID, Spec, CreatedAt must be set; State is forced to
	// queued; UpdatedAt is set to CreatedAt.
	Job       *job.Job
	MaxQueued int // 0: unbounded
}

// JobListParams filter Store.JobList. Zero values do not filter.
type JobListParams struct {
	States []job.State
	Host   string
	// Name: only jobs with this Spec.Name (newest first: the first is the
	// job the name means).
	Name string
	// IDPrefix: only jobs whose id starts with it (resolving an
	// abbreviated id: ask for two to learn whether it is unique).
	IDPrefix string
	BeforeID string // cursor: only jobs older than this one (by CreatedAt, ID)
	Limit    int    // 0: 100
}

// JobListQueuedParams are the arguments of Store.JobListQueued.
type JobListQueuedParams struct {
	Now   time.Time
	Limit int // 0: 100
}

// QueueKey is one constraints key of the queued jobs.
type QueueKey struct {
	Key         string            // ConstraintsKey(Constraints)
	Constraints map[string]string // nil for none
	Queued      int               // queued jobs with this key, ready or not
}

// QueuedJob is the light row of a queued job that the scheduler reads: what
// placement needs, never the spec.
type QueuedJob struct {
	ID        string
	Attempt   int    // attempts used so far
	Host      string // the last attempt's host (to avoid when Attempt > 0)
	Image     string // Spec.Image
	Key       string // ConstraintsKey(Spec.Constraints)
	Reason    string
	Priority  int
	CreatedAt time.Time
	NotBefore time.Time
}

// JobListReadyParams are the arguments of Store.JobListReady.
type JobListReadyParams struct {
	Key   string
	Now   time.Time
	After *QueuedJob // cursor: only jobs after this one in dispatch order
	Limit int        // 0: 100
}

// JobSetWaitReasonParams are the arguments of Store.JobSetWaitReason.
type JobSetWaitReasonParams struct {
	Key    string
	Reason string
	Now    time.Time
	Limit  int // 0: 100
}

// JobDeleteFinishedParams are the arguments of Store.JobDeleteFinished.
type JobDeleteFinishedParams struct {
	Before time.Time // required
	Limit  int       // 0: 100
}

// ConstraintsKey is the canonical form of a job's host constraints: the
// JSON object of the labels with keys sorted, "" for none. Jobs with equal
// constraints have equal keys.
func ConstraintsKey(constraints map[string]string) string {
	if len(constraints) == 0 {
		return ""
	}
	b, err := json.Marshal(constraints) // sorts the keys
	if err != nil {
		panic(fmt.Sprintf("store: constraints key: %v", err)) // a map of strings always encodes
	}
	return string(b)
}

// JobTransitionParams are the arguments of Store.JobTransition. Pointer
// fields left nil are not changed.
type JobTransitionParams struct {
	ID            string
	From          []job.State // the job must be in one of these
	ExpectAttempt *int        // if set, the job's Attempt must equal it
	To            job.State
	Reason        string
	Now           time.Time

	Host           *string
	ContainerID    *string
	SetAttempt     *int
	ExitCode       *int
	NotBefore      *time.Time
	StartedAt      *time.Time
	FinishedAt     *time.Time
	AttemptOutcome string // outcome recorded on the attempt row when it finishes; default string(To)
	// Cause is recorded when To is terminal: why the job ended (CauseNone
	// for a success).
	Cause job.Cause
	// Outputs, if not nil, are recorded as the job's collected artifacts.
	Outputs []job.Output
	// DropAttempt undoes the current attempt: it never reached its host
	// (nothing was created there), so its attempt row is deleted and the
	// job's attempt number goes back by one. Attempts count only launches
	// that reached a host. Valid only when leaving launching.
	DropAttempt bool
	// Fence, if set, records in the same transaction that a container of
	// the job (Fence.Attempt) may still exist on Fence.Host: that host
	// gets no other job until it is confirmed gone (FenceClear).
	Fence *Fence
}

// Fence is a container fusebox may have left on a host it could not reach
// (a launch whose answer was lost, a job whose host was declared lost).
type Fence struct {
	Host      string
	JobID     string
	Attempt   int
	Container string // the attempt's container name
	Reason    string
	CreatedAt time.Time
}

// FenceClearParams are the arguments of Store.FenceClear.
type FenceClearParams struct {
	Host    string
	JobID   string
	Attempt int
	Note    string // appended to the attempt's error, e.g. "container removed from h1 when it answered again"
}

// Ptr returns a pointer to v, for the optional fields of the params structs.
func Ptr[T any](v T) *T { return &v }
