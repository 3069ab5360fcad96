// Package def is the definition of a workflow: its YAML file, checked
// before anything runs (every problem with file:line and field, in the
// config package's style), its parameters and their substitution, and the
// DAG of its steps. It also holds the shipped templates.
//
// It knows nothing of how a workflow runs: internal/workflow runs a
// Resolved workflow, each step as a fusebox job.
package def

import "time"

// Workflow is a parsed, checked definition.
type Workflow struct {
	Name        string  // required: letters, digits, '_', '.', '-'; names the workflow's breaker (workflow/<name>)
	Description string  // for people (and models: MCP lists it)
	Category    string  // templates are listed by it ("ci", "data", "ml", "maintenance"); "" otherwise
	Params      []Param // in file order
	Defaults    StepDefaults
	Steps       []Step // in file order
	// Timeout bounds a whole run (0: none).
	Timeout time.Duration
	// CachingEnabled is caching_enabled (default true).
	CachingEnabled bool
	// UseCircuitBreaker is use_circuit_breaker (default true): runs pass
	// the workflow's breaker.
	UseCircuitBreaker bool
	// CircuitBreaker are the workflow breaker's settings; zero fields take
	// the server's defaults.
	CircuitBreaker Breaker
}

// Breaker are the settings of a workflow's breaker, by the names of the
// system fusebox replaces.
type Breaker struct {
	FailureThreshold int           // failure_threshold: failed runs in a row that open it
	ResetTimeout     time.Duration // reset_timeout: open this long before a probe run
	HalfOpenTimeout  time.Duration // half_open_timeout: a probe run that has not ended this long frees its slot
}

// Param is one declared parameter.
type Param struct {
	Name        string
	Type        ParamType
	Default     string // as written (checked against Type); "" with Required
	Required    bool   // no default: a run must give it
	Description string
}

// ParamType is a parameter's type.
type ParamType string

const (
	ParamString ParamType = "string"
	ParamInt    ParamType = "int"
	ParamBool   ParamType = "bool"
)

// StepDefaults apply to every step that does not set the field.
type StepDefaults struct {
	Image       string
	Env         map[string]string
	Timeout     time.Duration
	Constraints map[string]string
	Retries     Retries
	Cache       *bool // nil: CachingEnabled
	MaxAttempts int   // host-fault attempts of each step's job (0: the server's)
	CPUs        float64
	MemoryBytes int64
	Workdir     string
}

// Retries are a step's retries after its own failure (non-zero exit,
// timeout): delay n = BackoffFactor × 2^(n-1) seconds, capped at MaxBackoff,
// times a random factor in [0.5, 1.5] with Jitter.
type Retries struct {
	Max           int           // max_retries: retries after the first try (0: none)
	BackoffFactor float64       // retry_backoff_factor, in seconds (a float: 0.5 is half a second)
	MaxBackoff    time.Duration // cap of one delay (default 5m)
	Jitter        bool          // retry_jitter (default true)
}

// Step is one step: a container job.
type Step struct {
	ID          string // required, unique: letters, digits, '_', '-'
	Image       string
	Command     []string
	Env         map[string]string
	Workdir     string
	DependsOn   []string // ids of steps that must succeed first (inputs add theirs)
	Inputs      []Input
	Outputs     []string // absolute paths in the container, collected when it succeeds
	Timeout     time.Duration
	Constraints map[string]string // host labels
	Cache       bool              // cache on (after defaults and CachingEnabled)
	Retries     Retries
	MaxAttempts int
	CPUs        float64
	MemoryBytes int64
	Line        int // where the step starts in its file, for messages
}

// Input is another step's output mounted in this step.
type Input struct {
	From string // the step that declares the output
	Path string // the output, as From declares it
	At   string // absolute directory in this step's container it is unpacked into (default: Path)
}

// Resolved is a workflow with its parameters substituted and every
// default applied: what a run records and runs.
type Resolved struct {
	Workflow                   // Steps as they run
	Params   map[string]string // every parameter's value, defaults included
	// Results are the outputs no step consumes: the run's results, kept for
	// download.
	Results []Output
}

// Output names one step's output.
type Output struct {
	Step string
	Path string
}
