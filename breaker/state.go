package breaker

import (
	"errors"
	"strconv"
)

// State is the state of a Breaker. The first three are driven by the trip
// rules; the last three are set by an operator (Isolate, Disable,
// MetricsOnly) and stay until Release or Reset.
type State uint8

const (
	// StateClosed lets calls through and watches their outcomes.
	StateClosed State = iota
	// StateOpen rejects calls until the open duration has passed.
	StateOpen
	// StateHalfOpen lets a bounded number of probe calls through to decide
	// whether to close again or reopen.
	StateHalfOpen
	// StateForcedOpen rejects every call until an operator releases it
	// (Isolate).
	StateForcedOpen
	// StateDisabled lets every call through and records nothing (Disable).
	StateDisabled
	// StateMetricsOnly lets every call through and records outcomes, but
	// never trips (MetricsOnly).
	StateMetricsOnly

	numStates // keep last
)

var stateNames = [numStates]string{
	StateClosed:      "closed",
	StateOpen:        "open",
	StateHalfOpen:    "half-open",
	StateForcedOpen:  "forced-open",
	StateDisabled:    "disabled",
	StateMetricsOnly: "metrics-only",
}

// String returns the lower-case, hyphenated name of the state, e.g.
// "half-open".
func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes s as its name, so that it travels in JSON and YAML
// as "half-open", not as a number.
func (s State) MarshalText() ([]byte, error) {
	if s >= numStates {
		return nil, errors.New("breaker: cannot encode unknown " + s.String())
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText reads a name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for i, name := range stateNames {
		if name == string(b) {
			*s = State(i)
			return nil
		}
	}
	return errors.New("breaker: unknown state " + strconv.Quote(string(b)) +
		": want closed, open, half-open, forced-open, disabled or metrics-only")
}

// Manual reports whether s is one of the states set by an operator
// (forced-open, disabled, metrics-only).
func (s State) Manual() bool {
	return s == StateForcedOpen || s == StateDisabled || s == StateMetricsOnly
}

// Outcome is what a finished call means for the breaker.
type Outcome uint8

const (
	// Success counts towards closing and resets the consecutive-failure
	// count.
	Success Outcome = iota
	// Failure counts towards tripping.
	Failure
	// Ignored counts for nothing: the call tells nothing about the health of
	// the protected resource (the caller cancelled, or the caller was at
	// fault). In half-open it frees its probe slot.
	Ignored

	numOutcomes // keep last
)

var outcomeNames = [numOutcomes]string{
	Success: "success",
	Failure: "failure",
	Ignored: "ignored",
}

// String returns "success", "failure" or "ignored".
func (o Outcome) String() string {
	if o < numOutcomes {
		return outcomeNames[o]
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}
