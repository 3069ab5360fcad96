// Package job holds the types every fusebox package shares about a container
// job: its spec, its states, its transitions and attempts, and the sentinel
// errors stores and the dispatcher return.
//
// It imports nothing internal and holds no logic beyond validation and small
// helpers, so that the store, the dispatcher, the API and the CLI can all
// depend on it without depending on each other (as river's rivertype does).
// Its one dependency, github.com/distribution/reference, parses image
// references the way the engine does, so that validation refuses what a
// host would (see Spec.ValidateWith and Limits). Test data shared by other
// packages' tests (the hostile-spec corpus) is in jobtest.
package job

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// State is where a job is in its life.
//
//	queued ──► launching ──► running ──► succeeded | failed | timed_out
//	  ▲            │            │
//	  └────────────┴────────────┴──► lost (host unreachable past the policy)
//	 (host fault: back to queued with backoff, on another host)
//
//	launching may last while a launch whose answer was lost is confirmed;
//	any non-terminal state ──► cancelled
type State string

const (
	StateQueued    State = "queued"    // waiting: for a host, or for backoff until NotBefore
	StateLaunching State = "launching" // placed on a host; the container is being created/started (or confirmed, if an answer was lost)
	StateRunning   State = "running"   // the container is running
	StateSucceeded State = "succeeded" // exit code 0
	StateFailed    State = "failed"    // non-zero exit, job fault, or attempts used up
	StateTimedOut  State = "timed_out" // ran past Spec.Timeout and was stopped
	StateCancelled State = "cancelled" // cancelled by a user
	StateLost      State = "lost"      // its host stayed unreachable past the lost-host policy
)

// States lists every state in life order.
var States = []State{StateQueued, StateLaunching, StateRunning, StateSucceeded, StateFailed, StateTimedOut, StateCancelled, StateLost}

// Terminal reports whether no further transition can leave s.
func (s State) Terminal() bool {
	switch s {
	case StateSucceeded, StateFailed, StateTimedOut, StateCancelled, StateLost:
		return true
	}
	return false
}

// Valid reports whether s is one of the known states.
func (s State) Valid() bool {
	for _, v := range States {
		if v == s {
			return true
		}
	}
	return false
}

// Pull policies for Spec.PullPolicy.
const (
	PullMissing = "missing" // pull only when the host lacks the image (default)
	PullAlways  = "always"
	PullNever   = "never"
)

// Spec is what a user asks to run. The zero value of an optional field means
// the server's default.
type Spec struct {
	// Name is the job's name, usable wherever its id is (as a docker
	// container's name): at most one job that has not ended holds a name;
	// a finished job's name may be taken again, and the name then means
	// the newest job that holds it.
	Name  string `json:"name,omitempty"`
	Image string `json:"image"`
	// Entrypoint replaces the image's entrypoint (docker run
	// --entrypoint); empty: the image's; [""]: none at all.
	Entrypoint  []string          `json:"entrypoint,omitempty"`
	Command     []string          `json:"command,omitempty"`
	User        string            `json:"user,omitempty"`     // user[:group] (names or ids) the command runs as; empty: the image's
	Network     string            `json:"network,omitempty"`  // network mode, within what the host allows; empty: the host's
	Platform    string            `json:"platform,omitempty"` // os[/arch[/variant]] of the image to run, e.g. linux/amd64; empty: the engine's
	Env         map[string]string `json:"env,omitempty"`
	Workdir     string            `json:"workdir,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`      // put on the container (keys starting "fusebox." are reserved)
	Constraints map[string]string `json:"constraints,omitempty"` // host labels the host must carry, key=value
	CPUs        float64           `json:"cpus,omitempty"`        // CPU limit, in cores
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	Timeout     Duration          `json:"timeout,omitempty"`  // 0: no timeout
	Priority    int               `json:"priority,omitempty"` // higher runs first
	MaxAttempts int               `json:"max_attempts,omitempty"`
	// RetryBackoff is the first delay after a host fault; it doubles per
	// attempt, with jitter.
	RetryBackoff   Duration `json:"retry_backoff,omitempty"`
	PullPolicy     string   `json:"pull_policy,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
	// Inputs are artifacts unpacked into the container after it is created
	// and before it starts (a workflow step's inputs).
	Inputs []Input `json:"inputs,omitempty"`
	// Outputs are paths in the container collected as artifacts when it
	// exits 0, before it is removed; a declared output that is missing
	// fails the job (CauseOutput).
	Outputs []string `json:"outputs,omitempty"`
}

// Input is an artifact of the store unpacked into a container.
type Input struct {
	Digest string `json:"digest"` // "sha256:<64 hex>": the artifact, by content
	Path   string `json:"path"`   // absolute directory in the container it is unpacked into
}

// Output is an artifact collected from a finished container.
type Output struct {
	Path   string `json:"path"`   // as declared in Spec.Outputs
	Digest string `json:"digest"` // "sha256:<64 hex>" of its canonical tar
	Size   int64  `json:"size"`   // bytes of its canonical tar
}

// Cause says, typed, why a job ended as it did, so that whoever reads it
// (a workflow's breaker) tells the job's own failure from the fleet's.
type Cause string

const (
	CauseNone    Cause = ""        // it succeeded, or has not ended
	CauseExit    Cause = "exit"    // the container exited non-zero: the job's own
	CauseTimeout Cause = "timeout" // it ran past its timeout: its own
	CauseOutput  Cause = "output"  // it exited 0 without a declared output: its own
	CauseRefused Cause = "refused" // the engine refused to run it (no such image, bad spec): its own
	// The engine refused to start it because its command (entrypoint or
	// first word) does not exist in the image: its own (docker's 127).
	CauseCommandNotFound Cause = "command_not_found"
	// The engine refused to start it because its command exists but cannot
	// be executed (no permission, a directory): its own (docker's 126).
	CauseNotExecutable Cause = "not_executable"
	CauseCancelled     Cause = "cancelled" // a user cancelled it
	CauseHost          Cause = "host"      // host faults used up its attempts, or its host was lost: the fleet's
	CauseNoHost        Cause = "no_host"   // no host could take it: the fleet's
	CauseArtifact      Cause = "artifact"  // an input could not be unpacked or an output kept (the store, not the job)
)

// Own reports whether c is the job's own failure (its command, its spec),
// not the fleet's or a user's.
func (c Cause) Own() bool {
	switch c {
	case CauseExit, CauseTimeout, CauseOutput, CauseRefused, CauseCommandNotFound, CauseNotExecutable:
		return true
	}
	return false
}

// Job is a submitted job and where it is now.
type Job struct {
	ID    string `json:"id"`
	Spec  Spec   `json:"spec"`
	State State  `json:"state"`
	// Reason says why the job is in State: "no host available", "backoff
	// after host fault on h2", "exit code 3", ...
	Reason string `json:"reason,omitempty"`
	// Attempt is the number of launch attempts made so far (1-based once
	// launched). Waiting for a host uses none.
	Attempt     int       `json:"attempt"`
	Host        string    `json:"host,omitempty"`         // host of the current/last attempt
	ContainerID string    `json:"container_id,omitempty"` // container of the current/last attempt
	ExitCode    *int      `json:"exit_code,omitempty"`
	NotBefore   time.Time `json:"not_before,omitzero"` // queued: do not place before this time
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	StartedAt   time.Time `json:"started_at,omitzero"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	// Cancel is set when a user asked to cancel a job that is launching or
	// running; the dispatcher stops the container and moves it to cancelled.
	CancelRequested bool `json:"cancel_requested,omitempty"`
	// Cause says why it ended, typed (CauseNone while it runs and when it
	// succeeded).
	Cause Cause `json:"cause,omitempty"`
	// Outputs are the artifacts collected from its container (Spec.Outputs),
	// set when it succeeded.
	Outputs []Output `json:"outputs,omitempty"`
}

// ContainerName is the deterministic container name of one attempt of a job,
// so that a launch retried after a crash finds its container instead of
// making a second one.
func ContainerName(jobID string, attempt int) string {
	return fmt.Sprintf("fusebox-%s-%d", jobID, attempt)
}

// ConstraintHost is the constraint key that pins a job to one host by its
// name (fusebox run --host NAME): every host carries it as a label whose
// value is its name.
const ConstraintHost = "fusebox.host"

// Container labels fusebox puts on everything it creates.
const (
	LabelManaged = "fusebox.managed" // "true"
	LabelJobID   = "fusebox.job_id"
	LabelAttempt = "fusebox.attempt"
	// LabelInstance is the id of the fusebox (its store) that made the
	// container: one fusebox never removes another's containers.
	LabelInstance = "fusebox.instance"
)

// Transition is one recorded change of a job's state.
type Transition struct {
	JobID   string    `json:"job_id"`
	Seq     int64     `json:"seq"`
	From    State     `json:"from,omitempty"` // empty for the submission
	To      State     `json:"to"`
	Reason  string    `json:"reason,omitempty"`
	Host    string    `json:"host,omitempty"`
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
}

// Attempt is one launch of a job on one host.
type Attempt struct {
	JobID       string    `json:"job_id"`
	Number      int       `json:"number"`
	Host        string    `json:"host"`
	ContainerID string    `json:"container_id,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	FinishedAt  time.Time `json:"finished_at,omitzero"`
	Outcome     string    `json:"outcome,omitempty"` // the state it ended in, or "host_fault"
	Error       string    `json:"error,omitempty"`
}

// Logs are the collected output of a job's last attempt.
type Logs struct {
	Stdout    []byte `json:"stdout"`
	Stderr    []byte `json:"stderr"`
	Truncated bool   `json:"truncated"` // the output was longer than the cap
	// StdoutMarks and StderrMarks say when each part of the streams was
	// written (see LogMark and Render); nil for output kept without times.
	StdoutMarks []LogMark `json:"stdout_marks,omitempty"`
	StderrMarks []LogMark `json:"stderr_marks,omitempty"`
}

// Sentinel errors shared by stores, the dispatcher and the API.
var (
	ErrNotFound  = errors.New("job not found")
	ErrQueueFull = errors.New("queue is full")
	ErrConflict  = errors.New("job changed concurrently") // a compare-and-set transition lost
	ErrTerminal  = errors.New("job is already finished")
	ErrDuplicate = errors.New("idempotency key already used with a different spec")
	ErrNameInUse = errors.New("job name is in use by a job that has not ended")
	ErrAmbiguous = errors.New("job id prefix matches more than one job")
)

// NameInUseError is the refusal of a job whose name a job that has not
// ended holds; errors.Is(err, ErrNameInUse).
type NameInUseError struct {
	Name   string
	Holder string // the id of the job that holds it
	State  State  // its state
}

func (e *NameInUseError) Error() string {
	return fmt.Sprintf("name %q is in use by job %s (%s): a name is held by one job that has not ended", e.Name, e.Holder, e.State)
}

func (e *NameInUseError) Is(target error) bool { return target == ErrNameInUse }

// Duration is a time.Duration that reads and writes JSON as a string with
// units, "1m30s". A bare number is refused: it has no unit, and reading
// it as nanoseconds turns a "timeout": 60 meant as a minute into 60ns (0,
// the same in every unit, is read).
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n float64
		if json.Unmarshal(b, &n) == nil {
			if n == 0 {
				*d = 0 // zero in every unit
				return nil
			}
			return fmt.Errorf("duration must be a string with a unit, like \"90s\" or \"1m30s\" (got the bare number %s: a number has no unit)", b)
		}
		return fmt.Errorf("duration must be a string with a unit, like \"90s\" or \"1m30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q: use a form like \"90s\" or \"1m30s\"", s)
	}
	*d = Duration(v)
	return nil
}

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }
