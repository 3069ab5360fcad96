// Package wfrun holds the types of a workflow run that the store, the
// runner (internal/workflow), the API and the CLI share: a Run and its
// Steps, their states, and the typed cause of a run's end.
//
// It holds no logic beyond small helpers and imports only the leaf packages
// internal/job and internal/workflow/def, so that the store can keep runs
// without depending on the runner.
//
// A run:
//
//	pending ──► running ──► succeeded | failed | cancelled
//
// A step:
//
//	pending ──► waiting (on its dependencies, or an identical step in flight)
//	   │           │
//	   ├───────────┴──► cached (a live cache entry: no job)
//	   └───────────┴──► submitted (its job for this try) ──► running ──► succeeded
//	                        ▲                                  │
//	                        └──── retrying (until NextAt) ◄────┤ own failure, tries left
//	                                                           └──► failed
//	any non-final state ──► cancelled (the run was cancelled, failed or timed out while it ran)
//	                    ──► skipped   (it can no longer run: a step it needs failed)
package wfrun

import (
	"time"

	"fusebox/internal/job"
	"fusebox/internal/workflow/def"
)

// RunState is where a run is.
type RunState string

const (
	RunPending   RunState = "pending"   // stored, not yet started by the runner
	RunRunning   RunState = "running"   // its steps are being run
	RunSucceeded RunState = "succeeded" // every step succeeded or was cached
	RunFailed    RunState = "failed"    // a step failed (Cause says whose fault), or the run timed out
	RunCancelled RunState = "cancelled" // cancelled by a user
)

// RunStates lists every run state in life order.
var RunStates = []RunState{RunPending, RunRunning, RunSucceeded, RunFailed, RunCancelled}

// Terminal reports whether s is final.
func (s RunState) Terminal() bool {
	return s == RunSucceeded || s == RunFailed || s == RunCancelled
}

// Valid reports whether s is a known run state.
func (s RunState) Valid() bool {
	for _, v := range RunStates {
		if v == s {
			return true
		}
	}
	return false
}

// StepState is where a step is.
type StepState string

const (
	StepPending   StepState = "pending"   // the run has not looked at it yet
	StepWaiting   StepState = "waiting"   // for its dependencies (or an identical step in flight)
	StepSubmitted StepState = "submitted" // its job for this try is (being) submitted and queued
	StepRunning   StepState = "running"   // its job is launching or running
	StepRetrying  StepState = "retrying"  // its own failure; the next try starts at NextAt
	StepSucceeded StepState = "succeeded"
	StepCached    StepState = "cached"    // a cache entry's outputs were reused: no job ran
	StepFailed    StepState = "failed"    // tries used up, or a failure no retry helps (the fleet's)
	StepCancelled StepState = "cancelled" // its job was cancelled because the run ended
	StepSkipped   StepState = "skipped"   // it never ran: the run ended before it could
)

// StepStates lists every step state.
var StepStates = []StepState{StepPending, StepWaiting, StepSubmitted, StepRunning, StepRetrying,
	StepSucceeded, StepCached, StepFailed, StepCancelled, StepSkipped}

// Terminal reports whether s is final.
func (s StepState) Terminal() bool {
	switch s {
	case StepSucceeded, StepCached, StepFailed, StepCancelled, StepSkipped:
		return true
	}
	return false
}

// Done reports whether the step's outputs are there: succeeded or cached.
func (s StepState) Done() bool { return s == StepSucceeded || s == StepCached }

// Valid reports whether s is a known step state.
func (s StepState) Valid() bool {
	for _, v := range StepStates {
		if v == s {
			return true
		}
	}
	return false
}

// Cause says, typed, why a run ended as it did; the workflow's breaker
// counts only CauseOwn and CauseTimeout.
type Cause string

const (
	CauseNone      Cause = ""          // it succeeded, or has not ended
	CauseOwn       Cause = "own"       // a step failed by its own doing (exit, timeout, missing output, refused) after its retries
	CauseFleet     Cause = "fleet"     // a step's job failed because of the fleet (host faults, no host, the artifact store)
	CauseCancelled Cause = "cancelled" // a user cancelled the run (or a step's job)
	CauseTimeout   Cause = "timeout"   // the run ran past the workflow's timeout
)

// Counts reports whether c counts against the workflow's breaker.
func (c Cause) Counts() bool { return c == CauseOwn || c == CauseTimeout }

// Result is one of a run's results: an output no step consumes.
type Result struct {
	Step   string `json:"step"`
	Path   string `json:"path"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

// Run is one run of a workflow.
type Run struct {
	ID       string   `json:"id"`
	Workflow string   `json:"workflow"` // Definition.Name
	TaskID   string   `json:"task_id,omitempty"`
	State    RunState `json:"state"`
	Reason   string   `json:"reason,omitempty"`
	Cause    Cause    `json:"cause,omitempty"`
	// Params are the run's parameters (Definition.Params).
	Params map[string]string `json:"params,omitempty"`
	// SkipCache: no step of this run reads the cache (they still write it).
	SkipCache bool `json:"skip_cache,omitempty"`
	// UseBreaker: the run passed the workflow's breaker and reports to it.
	UseBreaker bool `json:"use_breaker"`
	// CancelRequested is set by Cancel; the runner ends the run.
	CancelRequested bool         `json:"cancel_requested,omitempty"`
	Definition      def.Resolved `json:"definition"`
	// Results are the outputs of Definition.Results, set when it succeeded.
	Results    []Result  `json:"results,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Step is one step of a run.
type Step struct {
	RunID  string    `json:"run_id"`
	ID     string    `json:"id"` // the definition's step id
	State  StepState `json:"state"`
	Reason string    `json:"reason,omitempty"`
	// JobID is the job of the current (or last) try; "" before the first
	// and for a cached step.
	JobID string `json:"job_id,omitempty"`
	// Try is the step attempt (1-based once submitted): each own failure
	// with retries left starts another. A job's host failovers are its own
	// attempts, not tries.
	Try  int    `json:"try"`
	Host string `json:"host,omitempty"` // host of the current/last job
	// NextAt is when a retrying step's next try starts.
	NextAt   time.Time `json:"next_at,omitzero"`
	CacheKey string    `json:"cache_key,omitempty"`
	Cached   bool      `json:"cached,omitempty"`
	// WhyRan says why the step ran instead of hitting the cache: "first
	// run", "image changed", "command changed", "env FOO changed", "input
	// /in (from a) changed", "cache off", "skip-cache", ...
	WhyRan string `json:"why_ran,omitempty"`
	// JobCause is how its last job ended (job.CauseNone for a success).
	JobCause   job.Cause    `json:"job_cause,omitempty"`
	Outputs    []job.Output `json:"outputs,omitempty"`
	UpdatedAt  time.Time    `json:"updated_at"`
	StartedAt  time.Time    `json:"started_at,omitzero"`
	FinishedAt time.Time    `json:"finished_at,omitzero"`
}

// CacheEntry is the stored result of a successful step, by its cache key.
type CacheEntry struct {
	Key      string `json:"key"` // "sha256:<hex>" of the step's canonical key parts
	Workflow string `json:"workflow"`
	Step     string `json:"step"`
	// Parts are the key's parts by name ("image", "command", "env FOO",
	// "input /in (from a)", ...), each as a digest of its value, so that a
	// later miss can say which part changed without storing env values.
	Parts     map[string]string `json:"parts"`
	Outputs   []job.Output      `json:"outputs"`
	RunID     string            `json:"run_id"` // the run whose step produced it
	CreatedAt time.Time         `json:"created_at"`
	ExpiresAt time.Time         `json:"expires_at"`
}
