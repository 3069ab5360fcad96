package breaker

// This file records the outcomes of admitted calls.

// record applies the outcome of an admitted call: tw is the state word it
// was admitted in, start its start time, probe its probe id.
func (b *Breaker) record(tw uint64, start int64, probe uint64, o Outcome) {
	if o >= numOutcomes {
		o = Failure
	}
	if probe != 0 {
		b.recordProbe(tw, start, probe, o)
		return
	}
	st := stateOf(tw)
	if st != StateClosed && st != StateMetricsOnly {
		return // disabled records nothing
	}
	var now int64
	slow := false
	if b.rateRule { // the rate rules need the time; the slow rule implies a window
		now = b.now()
		slow = b.slowRule && o != Ignored && now-start > int64(b.cfg.SlowCallDuration)
	}
	w := b.word.Load()
	e := b.cur.Load()
	if !sameGen(w, tw) || e.gen != genOf(tw) {
		return // the state changed while the call ran
	}
	// Counted in the call's own epoch: if the state changes from here on,
	// the counts land in the retired epoch, not the new state's.
	e.count(kindOf(o), now)
	if slow {
		e.count(kSlow, now)
	}
	switch o {
	case Success:
		if consecOf(w) != 0 {
			b.resetConsec(w)
		}
		if slow && st == StateClosed && rateTripped(&b.cfg, e.win, now) {
			b.trip(w, now)
		}
	case Failure:
		n, ok := b.addConsec(w)
		if !ok {
			return
		}
		if st == StateClosed &&
			(b.consecRule && n >= b.cfg.ConsecutiveFailures || b.rateRule && rateTripped(&b.cfg, e.win, now)) {
			if !b.rateRule {
				now = b.now() // not read yet: nothing else needed it
			}
			b.trip(w, now)
		}
	}
}

// addConsec counts a failure in the state word, if the word is still of the
// same generation as w. It returns the new count.
func (b *Breaker) addConsec(w uint64) (int, bool) {
	for {
		n := min(consecOf(w)+1, maxConsec)
		if b.word.CompareAndSwap(w, withConsec(w, n)) {
			return n, true
		}
		cur := b.word.Load()
		if !sameGen(cur, w) {
			return 0, false
		}
		w = cur
	}
}

// resetConsec clears the consecutive-failure count after a success, if the
// word is still of the same generation as w.
func (b *Breaker) resetConsec(w uint64) {
	for consecOf(w) != 0 {
		if b.word.CompareAndSwap(w, withConsec(w, 0)) {
			return
		}
		cur := b.word.Load()
		if !sameGen(cur, w) {
			return
		}
		w = cur
	}
}

// rateTripped reports whether a rate rule of s says to trip, from window w
// at now.
func rateTripped(s *Settings, w *window, now int64) bool {
	v := w.sum(now)
	calls := v[kSuccess] + v[kFailure]
	if calls == 0 || calls < uint64(s.MinCalls) {
		return false
	}
	if s.FailureRate > 0 && float64(v[kFailure]) >= s.FailureRate*float64(calls) {
		return true
	}
	return s.SlowCallDuration > 0 && float64(v[kSlow]) >= s.SlowCallRate*float64(calls)
}

// trip opens a closed breaker, unless the state changed since w.
func (b *Breaker) trip(w uint64, now int64) {
	b.mu.Lock()
	defer b.unlock()
	if sameGen(b.word.Load(), w) {
		b.toOpen(now)
	}
}

// recordProbe applies the outcome of a half-open probe.
func (b *Breaker) recordProbe(tw uint64, start int64, id uint64, o Outcome) {
	now := b.now()
	b.mu.Lock()
	defer b.unlock()
	b.advance(now) // frees expired probes, maybe closes on the quiet period
	if !sameGen(b.word.Load(), tw) {
		return
	}
	i := b.probeIndex(id)
	if i < 0 {
		return // its slot expired and may have gone to another probe
	}
	b.probes = append(b.probes[:i], b.probes[i+1:]...)
	slow := b.slowRule && o != Ignored && now-start > int64(b.cfg.SlowCallDuration)
	e := b.cur.Load() // the probe's epoch: no state change without the lock
	e.count(kindOf(o), now)
	if slow {
		e.count(kSlow, now)
	}
	switch {
	case o == Failure || o == Success && slow:
		b.toOpen(now)
	case o == Success:
		b.probeOKs++
		if b.probeOKs >= b.cfg.ProbeSuccesses {
			b.toClosed(now)
		}
	}
}

// oldestProbe returns the earliest deadline of the probes in flight.
func (b *Breaker) oldestProbe() int64 {
	d := b.probes[0].deadline
	for _, p := range b.probes[1:] {
		d = min(d, p.deadline)
	}
	return d
}

func (b *Breaker) probeIndex(id uint64) int {
	for i, p := range b.probes {
		if p.id == id {
			return i
		}
	}
	return -1
}
