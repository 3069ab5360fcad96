package breaker

import "time"

// State returns the current state, applying any time-based transition that
// is due (which notifies the listeners).
func (b *Breaker) State() State {
	w := b.word.Load()
	switch s := stateOf(w); s {
	case StateOpen:
		now := b.now()
		if now < b.openUntil.Load() {
			return s
		}
		return b.stateLocked(now)
	case StateHalfOpen:
		return b.stateLocked(b.now())
	default:
		return s
	}
}

func (b *Breaker) stateLocked(now int64) State {
	b.mu.Lock()
	defer b.unlock()
	b.advance(now)
	return stateOf(b.word.Load())
}

// Snapshot is a point-in-time view of a breaker, for dashboards and metrics.
type Snapshot struct {
	Name  string
	State State
	// Generation increases by one on every state change (and on Reset).
	Generation uint64
	// Counts are the calls seen since the current state began, and only
	// calls admitted in it (and rejections it made); when a rate rule is on,
	// only those within the rolling window.
	Counts Counts
	// Totals are the calls seen since the breaker was created; they only
	// grow, which suits Prometheus counters. Like Counts, they leave out
	// reports dropped because the state changed while the call ran.
	Totals Counts
	// ConsecutiveFailures is the current run of failures (closed and
	// metrics-only).
	ConsecutiveFailures int
	// ConsecutiveSuccesses is the number of successful probes in the current
	// half-open period, towards ProbeSuccesses. It is zero in the other
	// states: keeping a run of successes while closed would cost every call.
	ConsecutiveSuccesses int
	// Trips is the number of consecutive trips, after decay: the next trip
	// opens the breaker for OpenDuration × (Trips+1), capped.
	Trips int
	// OpenedAt is when the current open period began (open and half-open
	// only).
	OpenedAt time.Time
	// NextProbeAt is the earliest time a probe can be admitted: the end of
	// the open period when open; when half-open, the snapshot's time if a
	// slot is free, else when the oldest probe's slot expires. Zero in the
	// other states.
	NextProbeAt time.Time
	// ProbesInFlight is the number of half-open probes not yet reported.
	ProbesInFlight int
}

// Snapshot returns the breaker's state and counts, applying any time-based
// transition that is due: an open breaker whose time is up reports
// half-open even if no call has come.
func (b *Breaker) Snapshot() Snapshot {
	now := b.now()
	b.mu.Lock()
	defer b.unlock()
	b.advance(now)
	w := b.word.Load()
	s := Snapshot{
		Name:                b.name,
		State:               stateOf(w),
		Generation:          genOf(w),
		ConsecutiveFailures: consecOf(w),
		Trips:               int(b.decayedTrips(now)),
	}
	e := b.cur.Load()
	cur := e.n.load()
	tot := b.retired
	addTo(&tot, cur)
	tot[kRejected] = b.rejections.load()[kRejected]
	s.Totals = countsOf(tot)
	if e.win != nil {
		s.Counts = countsOf(e.win.sum(now))
	} else {
		s.Counts = countsOf(cur)
	}
	switch s.State {
	case StateOpen:
		s.OpenedAt = b.timeAt(b.openedAt)
		s.NextProbeAt = b.timeAt(b.openUntil.Load())
	case StateHalfOpen:
		s.OpenedAt = b.timeAt(b.openedAt)
		s.ConsecutiveSuccesses = b.probeOKs
		s.ProbesInFlight = len(b.probes)
		s.NextProbeAt = b.timeAt(now)
		if len(b.probes) >= b.cfg.MaxProbes {
			s.NextProbeAt = b.timeAt(b.oldestProbe())
		}
	}
	return s
}
