package breaker

import (
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// Defaults for the zero-valued fields of Settings.
const (
	// ConsecutiveFailuresDefault trips a closed breaker after five failures
	// in a row.
	ConsecutiveFailuresDefault = 5
	// MinCallsDefault is how many calls the window must hold before a rate
	// rule may trip.
	MinCallsDefault = 20
	// WindowDefault is the length of the rolling window of the rate rules.
	WindowDefault = time.Minute
	// WindowBucketsDefault is how many buckets the window is cut into; the
	// oldest bucket expires as a whole, so the window rolls in steps of
	// Window/WindowBuckets.
	WindowBucketsDefault = 10
	// SlowCallRateDefault trips when half of the calls in the window were
	// slow (only when SlowCallDuration is set).
	SlowCallRateDefault = 0.5
	// OpenDurationDefault is the open duration after the first trip.
	OpenDurationDefault = time.Minute
	// MaxOpenDurationDefault caps the open duration after repeated trips.
	MaxOpenDurationDefault = 10 * time.Minute
	// JitterDefault shortens each open duration by a random fraction of up
	// to 10%, so breakers that tripped together do not probe together.
	JitterDefault = 0.1
	// MaxProbesDefault is how many probe calls may be in flight in
	// half-open.
	MaxProbesDefault = 1
	// ProbeSuccessesDefault is how many successful probes close the breaker.
	ProbeSuccessesDefault = 1
	// ProbeTimeoutDefault is how long a probe may go without reporting
	// before its slot is given to another probe. It is long enough for a
	// Docker API call that has its own deadline.
	ProbeTimeoutDefault = 30 * time.Second
)

// Limits on Settings, checked by New.
const (
	// MaxConsecutiveFailures is the largest ConsecutiveFailures that can be
	// set: the count lives in a few bits of the breaker's state word.
	MaxConsecutiveFailures = maxConsec
	maxWindowBuckets       = 1000
	maxProbes              = 1 << 16
)

// Settings configure a Breaker. The zero value of every field means its
// default (see the ...Default constants); a few rules are switched off by a
// negative value, as noted on the field. Settings are copied by New, so
// changing them afterwards has no effect.
type Settings struct {
	// ConsecutiveFailures trips a closed breaker after this many failures in
	// a row; any success resets the count. Zero means
	// ConsecutiveFailuresDefault, negative switches the rule off.
	ConsecutiveFailures int

	// FailureRate, in (0, 1], trips a closed breaker when the share of
	// failures among the successes and failures in the rolling Window
	// reaches it, once the window holds at least MinCalls of them. Zero
	// switches the rule off (the default).
	FailureRate float64
	// SlowCallDuration marks a call that takes longer than this as slow
	// (it still counts as a success or failure too). Zero switches the
	// slow-call rule off (the default). When on, a slow successful probe in
	// half-open counts as a failed one: a host that is still slow has not
	// recovered.
	SlowCallDuration time.Duration
	// SlowCallRate, in (0, 1], trips a closed breaker when the share of
	// slow calls in the window reaches it, once the window holds at least
	// MinCalls calls. Zero means SlowCallRateDefault.
	SlowCallRate float64
	// MinCalls is the number of calls (successes plus failures) the window
	// must hold before a rate rule may trip. Zero means MinCallsDefault.
	MinCalls int
	// Window is the length of the rolling window of the rate rules. Zero
	// means WindowDefault.
	Window time.Duration
	// WindowBuckets is the number of buckets in the window. Zero means
	// WindowBucketsDefault.
	WindowBuckets int

	// OpenDuration is how long the breaker stays open after its first trip;
	// the n-th consecutive trip keeps it open n times as long, up to
	// MaxOpenDuration. Zero means OpenDurationDefault.
	OpenDuration time.Duration
	// MaxOpenDuration caps the open duration. Zero means
	// MaxOpenDurationDefault, or OpenDuration when that is longer.
	MaxOpenDuration time.Duration
	// Jitter, in [0, 1), shortens each open duration by a random fraction of
	// up to Jitter. Zero means JitterDefault, negative switches jitter off.
	Jitter float64
	// TripDecay is how long the breaker must stay closed to forget one
	// consecutive trip: after k*TripDecay closed, the next trip counts as
	// k trips fewer (never below the first). Zero means OpenDuration;
	// negative means trips are forgotten only by Reset.
	TripDecay time.Duration

	// MaxProbes is how many probe calls may be in flight at once in
	// half-open: exactly this many are admitted, the next is rejected. Zero
	// means MaxProbesDefault.
	MaxProbes int
	// ProbeSuccesses is how many successful probes close the breaker. Zero
	// means ProbeSuccessesDefault.
	ProbeSuccesses int
	// ProbeTimeout is how long a probe may go without reporting before its
	// slot is freed for another probe; its late report is then ignored.
	// Zero means ProbeTimeoutDefault.
	ProbeTimeout time.Duration
	// HalfOpenTimeout, when set, closes a half-open breaker that has seen
	// no failure for this long since it became half-open, even if fewer
	// than ProbeSuccesses probes succeeded. Zero switches this off (the
	// default): a half-open breaker then closes only on evidence.
	HalfOpenTimeout time.Duration

	// Classify decides the outcome of a call that returned a non-nil error
	// (a nil error is always a success). It is not consulted when the
	// caller's own context is done and the error is context.Canceled or
	// context.DeadlineExceeded: that is always Ignored. Nil means every
	// error is a Failure. It must be fast and safe for concurrent use.
	Classify func(err error) Outcome
	// OnStateChange, when set, is called after every state change, outside
	// any lock and in the order of the changes. It may call back into the
	// breaker. A slow listener delays the call that caused the change.
	OnStateChange func(name string, from, to State)
	// Clock is the source of time. Nil means the system clock; tests pass a
	// *ManualClock.
	Clock Clock
	// Rand returns a random number in [0, 1) for the jitter. Nil means
	// math/rand/v2.Float64. Tests pass a fixed function.
	Rand func() float64
}

// WithDefaults returns a copy of s in which every zero field is replaced by
// its default, and switched-off rules (negative values) are normalised to
// their "off" value. It does not validate.
func (s Settings) WithDefaults() Settings {
	if s.ConsecutiveFailures == 0 {
		s.ConsecutiveFailures = ConsecutiveFailuresDefault
	} else if s.ConsecutiveFailures < 0 {
		s.ConsecutiveFailures = -1
	}
	if s.SlowCallRate == 0 {
		s.SlowCallRate = SlowCallRateDefault
	}
	if s.MinCalls == 0 {
		s.MinCalls = MinCallsDefault
	}
	if s.Window == 0 {
		s.Window = WindowDefault
	}
	if s.WindowBuckets == 0 {
		s.WindowBuckets = WindowBucketsDefault
	}
	if s.OpenDuration == 0 {
		s.OpenDuration = OpenDurationDefault
	}
	if s.MaxOpenDuration == 0 {
		s.MaxOpenDuration = max(MaxOpenDurationDefault, s.OpenDuration)
	}
	if s.Jitter == 0 {
		s.Jitter = JitterDefault
	} else if s.Jitter < 0 {
		s.Jitter = -1
	}
	if s.TripDecay == 0 {
		s.TripDecay = s.OpenDuration
	} else if s.TripDecay < 0 {
		s.TripDecay = -1
	}
	if s.MaxProbes == 0 {
		s.MaxProbes = MaxProbesDefault
	}
	if s.ProbeSuccesses == 0 {
		s.ProbeSuccesses = ProbeSuccessesDefault
	}
	if s.ProbeTimeout == 0 {
		s.ProbeTimeout = ProbeTimeoutDefault
	}
	if s.Clock == nil {
		s.Clock = systemClock{}
	}
	if s.Rand == nil {
		s.Rand = rand.Float64
	}
	return s
}

// SettingsError reports a Settings field with a value New cannot use.
type SettingsError struct {
	Field  string // name of the Settings field, e.g. "FailureRate"
	Value  any    // the value given
	Reason string // what a valid value looks like
}

func (e *SettingsError) Error() string {
	return fmt.Sprintf("breaker: Settings.%s = %v: %s", e.Field, e.Value, e.Reason)
}

// validate checks settings that have been through WithDefaults and names the
// first bad field.
func (s Settings) validate() error {
	bad := func(field string, v any, reason string) error {
		return &SettingsError{Field: field, Value: v, Reason: reason}
	}
	rate := func(r float64) bool { return r > 0 && r <= 1 } // false for NaN
	switch {
	case s.ConsecutiveFailures > MaxConsecutiveFailures:
		return bad("ConsecutiveFailures", s.ConsecutiveFailures, fmt.Sprintf("must be at most %d", MaxConsecutiveFailures))
	case s.FailureRate != 0 && !rate(s.FailureRate):
		return bad("FailureRate", s.FailureRate, "must be in (0, 1], or 0 to switch the rule off")
	case s.SlowCallDuration < 0:
		return bad("SlowCallDuration", s.SlowCallDuration, "must not be negative")
	case !rate(s.SlowCallRate):
		return bad("SlowCallRate", s.SlowCallRate, "must be in (0, 1]")
	case s.MinCalls < 1:
		return bad("MinCalls", s.MinCalls, "must be positive")
	case s.WindowBuckets < 1 || s.WindowBuckets > maxWindowBuckets:
		return bad("WindowBuckets", s.WindowBuckets, fmt.Sprintf("must be in [1, %d]", maxWindowBuckets))
	case s.Window < time.Duration(s.WindowBuckets):
		return bad("Window", s.Window, "must be positive and at least WindowBuckets nanoseconds")
	case s.OpenDuration < 0:
		return bad("OpenDuration", s.OpenDuration, "must not be negative")
	case s.MaxOpenDuration < s.OpenDuration:
		return bad("MaxOpenDuration", s.MaxOpenDuration, fmt.Sprintf("must be at least OpenDuration (%v)", s.OpenDuration))
	case s.Jitter >= 1 || math.IsNaN(s.Jitter):
		return bad("Jitter", s.Jitter, "must be in [0, 1), or negative to switch jitter off")
	case s.MaxProbes < 1 || s.MaxProbes > maxProbes:
		return bad("MaxProbes", s.MaxProbes, fmt.Sprintf("must be in [1, %d]", maxProbes))
	case s.ProbeSuccesses < 1:
		return bad("ProbeSuccesses", s.ProbeSuccesses, "must be positive")
	case s.ProbeTimeout < 0:
		return bad("ProbeTimeout", s.ProbeTimeout, "must not be negative")
	case s.HalfOpenTimeout < 0:
		return bad("HalfOpenTimeout", s.HalfOpenTimeout, "must not be negative; 0 switches it off")
	}
	return nil
}

// rateRules reports whether a rule needs the rolling window.
func (s Settings) rateRules() bool { return s.FailureRate > 0 || s.SlowCallDuration > 0 }
