package breaker

import (
	"errors"
	"fmt"
	"time"
)

// ErrOpen is the sentinel for every rejection: errors.Is(err, ErrOpen)
// reports whether a call was refused by a breaker rather than run. The error
// itself is an *OpenError.
var ErrOpen = errors.New("breaker: open")

// OpenError is returned when a breaker refuses a call: it is open, forced
// open, or half-open with every probe slot taken (State says which; all three
// are ErrOpen). Use errors.As to read it.
//
// An OpenError is shared by the rejections that have the same breaker
// generation and RetryAfter, so that rejecting does not allocate; treat it as
// immutable.
type OpenError struct {
	// Name is the name of the breaker.
	Name string
	// State is the state that refused the call: StateOpen, StateForcedOpen
	// or StateHalfOpen (all probe slots in use).
	State State
	// RetryAfter is how long to wait before the breaker may admit a call:
	// the rest of the open period, or, in half-open, the longest a probe slot
	// can stay taken. It is rounded up to a whole second, or to a whole
	// millisecond below one second. It is zero when forced open: only an
	// operator can release that.
	RetryAfter time.Duration

	gen uint64 // breaker generation this error belongs to (cache key)
}

// Error names the breaker and says when to retry, e.g.
// `breaker "host h2" is open; retry after 41s`.
func (e *OpenError) Error() string {
	switch e.State {
	case StateForcedOpen:
		return fmt.Sprintf("breaker %q is forced open; retry after an operator releases it", e.Name)
	case StateHalfOpen:
		return fmt.Sprintf("breaker %q is half-open and all its probe slots are in use; retry after %v", e.Name, e.RetryAfter)
	default:
		return fmt.Sprintf("breaker %q is open; retry after %v", e.Name, e.RetryAfter)
	}
}

// Is makes errors.Is(err, ErrOpen) true.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// roundRetry rounds a remaining duration up to a whole second, or to a whole
// millisecond below one second. The coarse grain is what lets rejections
// share one cached *OpenError for a whole second.
func roundRetry(d time.Duration) time.Duration {
	switch {
	case d <= 0:
		return 0
	case d < time.Second:
		return (d + time.Millisecond - 1).Truncate(time.Millisecond)
	default:
		return (d + time.Second - 1).Truncate(time.Second)
	}
}
