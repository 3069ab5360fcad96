package breaker

import "time"

// This file holds the state changes. All of them run with b.mu held and end
// in setState, which publishes the new state word (a new generation) and
// queues the change for the listeners; b.unlock delivers it after the lock
// is released.

// advance applies the time-based transitions that are due at now: open ->
// half-open when the open period is over, expiry of probe slots, and
// half-open -> closed after a quiet HalfOpenTimeout. Transitions are dated
// when they became due, not when they were noticed.
func (b *Breaker) advance(now int64) {
	if stateOf(b.word.Load()) == StateOpen {
		until := b.openUntil.Load()
		if now < until {
			return
		}
		b.toHalfOpen(until)
	}
	if stateOf(b.word.Load()) != StateHalfOpen {
		return
	}
	live := b.probes[:0]
	for _, p := range b.probes {
		if p.deadline > now {
			live = append(live, p)
		}
	}
	b.probes = live
	if q := int64(b.cfg.HalfOpenTimeout); q > 0 && now-b.halfOpenAt >= q {
		b.toClosed(b.halfOpenAt + q)
	}
}

// toOpen opens the breaker for the next, longer open duration. A trip rule
// firing on a closed breaker uses OpenDuration; a failed probe keeps the
// base of the open spell it ends (see Trip).
func (b *Breaker) toOpen(now int64) {
	base := b.openBase
	if stateOf(b.word.Load()) == StateClosed {
		base = 0
	}
	b.openWith(now, base)
}

// openWith opens the breaker for (consecutive trips) × base, or ×
// OpenDuration when base is zero.
func (b *Breaker) openWith(now, base int64) {
	trips := b.trips
	if stateOf(b.word.Load()) == StateClosed {
		trips = b.decayedTrips(now)
	}
	b.trips = trips + 1
	b.openBase = base
	b.openedAt = now
	b.openUntil.Store(addSat(now, b.openDuration(b.trips, base)))
	b.setState(StateOpen, now)
}

// Trip opens a closed breaker from outside, as a trip rule would (fusebox's
// health checks eject a host this way): it is one more consecutive trip,
// the breaker stays open for that many times base (capped at
// MaxOpenDuration, shortened by up to Jitter), and then probes and closes
// by itself as after any trip. A base of zero or less means OpenDuration.
// The base holds until the breaker closes: a failed probe reopens it for
// (trips × base), while a trip rule that fires once it is closed again
// uses OpenDuration. Trip does nothing unless the breaker is closed (an
// open or half-open breaker is already tripped; the manual states belong to
// the operator) and reports whether it opened the breaker.
func (b *Breaker) Trip(base time.Duration) bool {
	now := b.now()
	b.mu.Lock()
	defer b.unlock()
	if stateOf(b.word.Load()) != StateClosed {
		return false
	}
	b.openWith(now, max(int64(base), 0))
	return true
}

func (b *Breaker) toHalfOpen(at int64) { b.setState(StateHalfOpen, at) }

func (b *Breaker) toClosed(at int64) { b.setState(StateClosed, at) }

// decayedTrips returns the consecutive trips still remembered at now: a
// closed breaker forgets one for every TripDecay it has stayed closed.
func (b *Breaker) decayedTrips(now int64) int64 {
	decay := int64(b.cfg.TripDecay)
	if decay <= 0 || stateOf(b.word.Load()) != StateClosed {
		return b.trips
	}
	return max(b.trips-(now-b.closedSince)/decay, 0)
}

// openDuration is base (zero: OpenDuration) times the number of
// consecutive trips, capped at MaxOpenDuration, then shortened by up to
// Jitter.
func (b *Breaker) openDuration(trips, base int64) int64 {
	if base <= 0 {
		base = int64(b.cfg.OpenDuration)
	}
	limit := int64(b.cfg.MaxOpenDuration)
	d := limit
	if base == 0 || trips <= limit/base {
		d = base * trips
	}
	if j := b.cfg.Jitter; j > 0 {
		r := b.cfg.Rand()
		if r < 0 || r >= 1 {
			r = 0
		}
		d -= int64(float64(d) * j * r)
	}
	return d
}

// setState moves to state to, at breaker time now, starting a new
// generation: calls admitted before can no longer change anything, nor be
// counted in the new state.
func (b *Breaker) setState(to State, now int64) {
	w := b.word.Load()
	from := stateOf(w)
	gen := genOf(w) + 1
	old := b.cur.Load()
	// The new epoch goes out before the word that names its generation, so
	// a call admitted in the new generation always finds it; a report from
	// an older one that finds it does not match and counts nowhere.
	b.cur.Store(newEpoch(gen, &b.cfg))
	b.word.Store(pack(gen, to))
	// Fold the old epoch into the totals last, so that reports already
	// past their check have the longest time to land in it; one that lands
	// after this counts nowhere.
	addTo(&b.retired, old.n.load())
	switch to {
	case StateClosed:
		b.closedSince = now
	case StateHalfOpen:
		b.halfOpenAt = now
		b.probes = b.probes[:0]
		b.probeOKs = 0
	}
	if from != to {
		b.events = append(b.events, change{from, to})
	}
}

// Isolate forces the breaker open: every call is rejected until Release or
// Reset.
func (b *Breaker) Isolate() { b.setManual(StateForcedOpen) }

// Disable lets every call through and records nothing, until Release or
// Reset.
func (b *Breaker) Disable() { b.setManual(StateDisabled) }

// MetricsOnly lets every call through and records outcomes without ever
// tripping, until Release or Reset.
func (b *Breaker) MetricsOnly() { b.setManual(StateMetricsOnly) }

func (b *Breaker) setManual(s State) {
	now := b.now()
	b.mu.Lock()
	defer b.unlock()
	if stateOf(b.word.Load()) != s {
		b.setState(s, now)
	}
}

// Release ends a manual state (Isolate, Disable, MetricsOnly) and returns
// the breaker to normal operation, closed. The consecutive trips are kept
// and decay as usual. It does nothing in the automatic states.
func (b *Breaker) Release() {
	now := b.now()
	b.mu.Lock()
	defer b.unlock()
	if stateOf(b.word.Load()).Manual() {
		b.toClosed(now)
	}
}

// Reset closes the breaker, whatever its state, and forgets its consecutive
// trips and failures. The lifetime totals are kept.
func (b *Breaker) Reset() {
	now := b.now()
	b.mu.Lock()
	defer b.unlock()
	b.trips = 0
	b.toClosed(now)
}

// unlock releases b.mu and then delivers queued state changes to the
// listeners, outside the lock. Only one goroutine delivers at a time (the
// draining flag), so listeners see changes in the order they happened; a
// goroutine that queues a change while another delivers leaves it to that
// one and returns at once. A listener may call back into the breaker: its
// own changes are queued and delivered after it returns.
func (b *Breaker) unlock() {
	if b.draining || len(b.events) == 0 {
		b.mu.Unlock()
		return
	}
	b.draining = true
	for len(b.events) > 0 {
		evs := b.events
		b.events = nil
		b.mu.Unlock()
		b.deliver(evs)
		b.mu.Lock()
	}
	b.draining = false
	b.mu.Unlock()
}

func (b *Breaker) deliver(evs []change) {
	delivered := false
	defer func() {
		if !delivered { // a listener panicked: let the next goroutine deliver
			b.mu.Lock()
			b.draining = false
			b.mu.Unlock()
		}
	}()
	for _, e := range evs {
		if f := b.cfg.OnStateChange; f != nil {
			f(b.name, e.from, e.to)
		}
		if b.reg != nil {
			b.reg.notify(b.name, e.from, e.to)
		}
	}
	delivered = true
}
