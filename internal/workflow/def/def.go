// Package def is the definition of a workflow: its YAML file, checked
// before anything runs (every problem with file:line and field, in the
// config package's style), its parameters and their substitution, and the
// DAG of its steps. It also holds the shipped templates.
//
// Parse reads the YAML (keys: name, description, category, params,
// defaults, timeout, caching_enabled, use_circuit_breaker, circuit_breaker,
// steps, and max_retries, retry_backoff_factor, retry_jitter as defaults of
// every step) and returns every problem at once as Problems, each
// "file:line:col: field: message". It applies the defaults to each step
// (step, then defaults, then the top level, then the built-in defaults), so
// a Workflow's steps are complete but for ${params.x}, which Resolve
// substitutes (in image, command, env values, workdir and constraint
// values; $${ is a literal ${) after checking the params given, putting the
// steps in run order and listing the Results.
//
// Templates are embedded from templates/*.yaml; each runs on the demo image
// with its params' defaults.
//
// It knows nothing of how a workflow runs: internal/workflow runs a
// Resolved workflow, each step as a fusebox job.
package def

import "time"

// Workflow is a parsed, checked definition.
type Workflow struct {
	Name        string       `json:"name"`                  // required: letters, digits, '_', '.', '-'; names the workflow's breaker (workflow/<name>)
	Description string       `json:"description,omitempty"` // for people (and models: MCP lists it)
	Category    string       `json:"category,omitempty"`    // templates are listed by it ("ci", "data", "ml", "maintenance"); "" otherwise
	Params      []Param      `json:"params,omitempty"`      // in file order
	Defaults    StepDefaults `json:"defaults"`
	Steps       []Step       `json:"steps"` // in file order, defaults applied (in a Resolved: in run order)
	// Timeout bounds a whole run (0: none).
	Timeout time.Duration `json:"timeout,omitempty"`
	// CachingEnabled is caching_enabled (default true).
	CachingEnabled bool `json:"caching_enabled"`
	// UseCircuitBreaker is use_circuit_breaker (default true): runs pass
	// the workflow's breaker.
	UseCircuitBreaker bool `json:"use_circuit_breaker"`
	// CircuitBreaker are the workflow breaker's settings; zero fields take
	// the server's defaults.
	CircuitBreaker Breaker `json:"circuit_breaker"`
	// File is where the definition was parsed from (a path, or the
	// template's name), for messages.
	File string `json:"file,omitempty"`
}

// Breaker are the settings of a workflow's breaker, by the names of the
// system fusebox replaces.
type Breaker struct {
	FailureThreshold int           `json:"failure_threshold,omitempty"` // failure_threshold: failed runs in a row that open it
	ResetTimeout     time.Duration `json:"reset_timeout,omitempty"`     // reset_timeout: open this long before a probe run
	HalfOpenTimeout  time.Duration `json:"half_open_timeout,omitempty"` // half_open_timeout: a probe run that has not ended this long frees its slot
}

// Param is one declared parameter.
type Param struct {
	Name        string    `json:"name"`
	Type        ParamType `json:"type"`
	Default     string    `json:"default,omitempty"`  // as written (checked against Type); "" with Required
	Required    bool      `json:"required,omitempty"` // no default: a run must give it
	Description string    `json:"description,omitempty"`
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
	Image       string            `json:"image,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Timeout     time.Duration     `json:"timeout,omitempty"`
	Constraints map[string]string `json:"constraints,omitempty"`
	Retries     Retries           `json:"retries"`
	Cache       *bool             `json:"cache,omitempty"`        // nil: CachingEnabled
	MaxAttempts int               `json:"max_attempts,omitempty"` // host-fault attempts of each step's job (0: the server's)
	CPUs        float64           `json:"cpus,omitempty"`
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	Workdir     string            `json:"workdir,omitempty"`
}

// Retries are a step's retries after its own failure (non-zero exit,
// timeout): delay n = BackoffFactor × 2^(n-1) seconds, capped at MaxBackoff,
// times a random factor in [0.5, 1.5] with Jitter.
type Retries struct {
	Max           int           `json:"max_retries"`          // max_retries: retries after the first try (0: none)
	BackoffFactor float64       `json:"retry_backoff_factor"` // retry_backoff_factor, in seconds (a float: 0.5 is half a second)
	MaxBackoff    time.Duration `json:"max_backoff"`          // cap of one delay (default 5m)
	Jitter        bool          `json:"retry_jitter"`         // retry_jitter (default true)
}

// Step is one step: a container job.
type Step struct {
	ID          string            `json:"id"` // required, unique: letters, digits, '_', '-'
	Image       string            `json:"image"`
	Command     []string          `json:"command,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Workdir     string            `json:"workdir,omitempty"`
	DependsOn   []string          `json:"depends_on,omitempty"` // ids of steps that must succeed first (inputs add theirs)
	Inputs      []Input           `json:"inputs,omitempty"`
	Outputs     []string          `json:"outputs,omitempty"` // absolute paths in the container, collected when it succeeds
	Timeout     time.Duration     `json:"timeout,omitempty"`
	Constraints map[string]string `json:"constraints,omitempty"` // host labels
	Cache       bool              `json:"cache"`                 // cache on (after defaults and CachingEnabled)
	Retries     Retries           `json:"retries"`
	MaxAttempts int               `json:"max_attempts,omitempty"`
	CPUs        float64           `json:"cpus,omitempty"`
	MemoryBytes int64             `json:"memory_bytes,omitempty"`
	Line        int               `json:"line,omitempty"` // where the step starts in its file, for messages
}

// Input is another step's output mounted in this step.
type Input struct {
	From string `json:"from"` // the step that declares the output
	Path string `json:"path"` // the output, as From declares it
	At   string `json:"at"`   // absolute directory in this step's container it is unpacked into (default: Path)
}

// Resolved is a workflow with its parameters substituted and every
// default applied: what a run records and runs.
type Resolved struct {
	Workflow `json:"workflow"` // Steps as they run
	Params   map[string]string `json:"params,omitempty"` // every parameter's value, defaults included
	// Results are the outputs no step consumes: the run's results, kept for
	// download.
	Results []Output `json:"results,omitempty"`
}

// Output names one step's output.
type Output struct {
	Step string `json:"step"`
	Path string `json:"path"`
}
