package breaker

import (
	"sync"
	"time"
)

// Clock is the source of time of a Breaker. Every time-based rule (open
// duration, probe timeout, rolling window, slow calls, trip decay) is worked
// out from Now when the breaker is used or read; there are no timers.
type Clock interface {
	Now() time.Time
}

// systemClock is the default Clock. New recognises it and reads the
// monotonic clock directly (time.Since), which is cheaper than time.Now.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// ManualClock is a Clock that moves only when told to, for tests. It is safe
// for concurrent use.
type ManualClock struct {
	mu  sync.Mutex
	now time.Time
}

// NewManualClock returns a ManualClock that reads t.
func NewManualClock(t time.Time) *ManualClock { return &ManualClock{now: t} }

// Now returns the clock's current time.
func (c *ManualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *ManualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// Set moves the clock to t.
func (c *ManualClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}
