package breaker

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Breaker is a circuit breaker. It is safe for concurrent use; create one
// with New or get one from a Registry. One breaker can guard calls of every
// result type (see Do).
type Breaker struct {
	// The first cache line is read by every call and written only on a
	// failure or a state change: the state word, the current epoch and the
	// read-only fields the fast path needs. Counting goes to the epoch,
	// whose stripes live in their own cache lines.
	word     atomic.Uint64         // state, consecutive failures and generation; see word.go
	cur      atomic.Pointer[epoch] // the counts of the current generation; see epoch
	rateRule bool                  // a rate rule is on: every epoch has a window
	slowRule bool

	openUntil atomic.Int64              // end of the open period, in breaker time
	openErr   atomic.Pointer[OpenError] // last rejection error, reused while it still fits

	name       string
	cfg        Settings // after WithDefaults
	sysClock   bool     // cfg.Clock is the system clock: read it with time.Since
	born       time.Time
	consecRule bool
	reg        *Registry // nil unless created by a Registry
	rejections striped   // every rejection since New (only kRejected is used)

	mu sync.Mutex
	// Guarded by mu.
	trips       int64            // consecutive trips, before decay
	closedSince int64            // when the breaker last closed (for trip decay)
	openedAt    int64            // when the breaker last opened
	openBase    int64            // base open duration of this open spell; 0 = OpenDuration (see Trip)
	halfOpenAt  int64            // when the breaker last became half-open
	probeOKs    int              // successful probes in this half-open period
	probes      []probe          // probes in flight, oldest first
	probeSeq    uint64           // last probe id handed out
	retired     [numKinds]uint64 // the epochs before cur, added up (Rejected: see rejections)
	events      []change         // state changes not yet delivered to listeners
	draining    bool             // a goroutine is delivering events
}

// probe is a half-open call in flight.
type probe struct {
	id       uint64
	deadline int64 // its slot is freed at this breaker time
}

// change is a state change waiting to be delivered to listeners.
type change struct{ from, to State }

// New returns a closed breaker named name. It returns a *SettingsError if a
// field of s is invalid.
func New(name string, s Settings) (*Breaker, error) {
	return newBreaker(name, s, nil)
}

// MustNew is like New but panics on invalid settings. It is meant for
// package-level variables and tests.
func MustNew(name string, s Settings) *Breaker {
	b, err := New(name, s)
	if err != nil {
		panic(err)
	}
	return b
}

func newBreaker(name string, s Settings, reg *Registry) (*Breaker, error) {
	s = s.WithDefaults()
	if err := s.validate(); err != nil {
		return nil, err
	}
	b := &Breaker{
		name:       name,
		cfg:        s,
		rateRule:   s.rateRules(),
		slowRule:   s.SlowCallDuration > 0,
		consecRule: s.ConsecutiveFailures > 0,
		reg:        reg,
	}
	b.rejections.init()
	_, b.sysClock = s.Clock.(systemClock)
	b.born = s.Clock.Now()
	// Generation 1, so that the zero Token never matches a live word.
	b.cur.Store(newEpoch(1, &b.cfg))
	b.word.Store(pack(1, StateClosed))
	return b, nil
}

// Name returns the name the breaker was created with.
func (b *Breaker) Name() string { return b.name }

// Settings returns the breaker's settings, with defaults filled in.
func (b *Breaker) Settings() Settings { return b.cfg }

// now returns the breaker's time: nanoseconds since it was created. It never
// goes below zero, even if a test clock is set back.
func (b *Breaker) now() int64 {
	var d time.Duration
	if b.sysClock {
		d = time.Since(b.born) // monotonic, and cheaper than Now().Sub
	} else {
		d = b.cfg.Clock.Now().Sub(b.born)
	}
	return max(int64(d), 0)
}

// addSat returns a+d for d >= 0, saturating instead of overflowing (a
// duration of "forever" must not wrap into the past).
func addSat(a, d int64) int64 {
	if a > math.MaxInt64-d {
		return math.MaxInt64
	}
	return a + d
}

// timeAt converts breaker time back to a time.Time.
func (b *Breaker) timeAt(n int64) time.Time { return b.born.Add(time.Duration(n)) }

// Execute runs fn if the breaker admits the call, records its outcome and
// returns its error. A rejected call returns an *OpenError (errors.Is
// ErrOpen) without running fn. A panic in fn is recorded as a failure and
// re-raised.
func (b *Breaker) Execute(ctx context.Context, fn func(context.Context) error) error {
	// The closed-state check is inlined here, and the call's identity travels
	// as three scalars rather than a Token: copying a struct through the
	// calls costs more than the rest of the fast path.
	w := b.word.Load()
	var start int64
	var probe uint64
	if stateOf(w) != StateClosed || b.slowRule {
		var err error
		if w, start, probe, err = b.admit(w); err != nil {
			return err
		}
	}
	finished := false
	defer func() {
		if !finished { // fn panicked or called runtime.Goexit
			b.record(w, start, probe, Failure)
		}
	}()
	err := fn(ctx)
	finished = true
	if e := b.fastEpoch(w, err); e != nil { // b.done, inlined
		e.n.add(kSuccess)
	} else {
		b.record(w, start, probe, b.classify(ctx, err))
	}
	return err
}

// Do is Execute for a function that returns a value. The type parameter is
// on the function, not the breaker, so one breaker can guard calls of any
// result type. A rejected call returns the zero T and an *OpenError.
func Do[T any](ctx context.Context, b *Breaker, fn func(context.Context) (T, error)) (T, error) {
	w := b.word.Load()
	var start int64
	var probe uint64
	if stateOf(w) != StateClosed || b.slowRule {
		var err error
		if w, start, probe, err = b.admit(w); err != nil {
			var zero T
			return zero, err
		}
	}
	finished := false
	defer func() {
		if !finished {
			b.record(w, start, probe, Failure)
		}
	}()
	v, err := fn(ctx)
	finished = true
	if e := b.fastEpoch(w, err); e != nil {
		e.n.add(kSuccess)
	} else {
		b.record(w, start, probe, b.classify(ctx, err))
	}
	return v, err
}

// done reports the end of a call: one atomic add for the common case,
// record for the rest.
func (b *Breaker) done(ctx context.Context, w uint64, start int64, probe uint64, err error) {
	if e := b.fastEpoch(w, err); e != nil {
		e.n.add(kSuccess)
	} else {
		b.record(w, start, probe, b.classify(ctx, err))
	}
}

// fastEpoch returns the epoch in which to count a call admitted with word w
// that ended with err, when it is a success that needs nothing but
// counting: admitted closed with no failures counted, no rate rule needing
// the time, the state word unchanged since, and the current epoch the
// call's own. Otherwise it returns nil, and record decides. It is small
// enough to inline. (A probe's word is half-open, so the state test
// excludes probes.) Adding to the epoch returned, not to whatever is
// current by then, is what keeps a success that races a state change out
// of the new state's counts.
func (b *Breaker) fastEpoch(w uint64, err error) *epoch {
	if e := b.cur.Load(); err == nil && !b.rateRule &&
		w&(stateMask|consecMask) == uint64(StateClosed) && b.word.Load() == w && e.gen == genOf(w) {
		return e
	}
	return nil
}

// Token is an admitted call of the two-step API: Allow admits it, and
// exactly one of Done or DoneOutcome reports how it ended, possibly much
// later and from another goroutine. A Token is a small value; copy it
// freely, but report it once. A report from a call admitted before the
// breaker changed state is ignored, as is a probe's report after its
// ProbeTimeout.
type Token struct {
	b     *Breaker
	ctx   context.Context
	word  uint64 // state word when admitted
	start int64  // breaker time when admitted, if anything needs it
	probe uint64 // probe id in half-open, 0 otherwise
}

// Allow asks to make a call. If the breaker admits it, Allow returns a Token
// on which to report the outcome; otherwise it returns an *OpenError. ctx is
// the caller's context: when it is done by the time Done(err) reports a
// context.Canceled or context.DeadlineExceeded, the call is Ignored.
func (b *Breaker) Allow(ctx context.Context) (Token, error) {
	w, start, probe, err := b.admit(b.word.Load())
	if err != nil {
		return Token{}, err
	}
	return Token{b: b, ctx: ctx, word: w, start: start, probe: probe}, nil
}

// Done reports the call's error: nil is a success; otherwise the caller's
// cancellation is ignored and Settings.Classify (default: failure) decides.
func (t Token) Done(err error) {
	if t.b != nil {
		t.b.done(t.ctx, t.word, t.start, t.probe, err)
	}
}

// DoneOutcome reports the call's outcome directly, bypassing the classifier.
func (t Token) DoneOutcome(o Outcome) {
	if t.b != nil {
		t.b.record(t.word, t.start, t.probe, o)
	}
}

// Probe reports whether the call was admitted as a half-open probe.
func (t Token) Probe() bool { return t.probe != 0 }

// classify maps a call's error to an outcome.
func (b *Breaker) classify(ctx context.Context, err error) Outcome {
	if err == nil {
		return Success
	}
	// The caller gave up: that says nothing about the resource.
	if ctx != nil && ctx.Err() != nil &&
		(errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return Ignored
	}
	if b.cfg.Classify != nil {
		return b.cfg.Classify(err)
	}
	return Failure
}

// admit admits or rejects a call, given the state word w just read. It
// returns the word the call belongs to, its start time (when the slow-call
// rule needs it) and its probe id (half-open). Closed, metrics-only and
// disabled admit without a lock; open rejects with a clock read and no
// lock; only half-open, and the end of an open period, take the lock.
func (b *Breaker) admit(w uint64) (word uint64, start int64, probe uint64, err error) {
	switch stateOf(w) {
	case StateClosed, StateMetricsOnly, StateDisabled:
		if b.slowRule {
			start = b.now()
		}
		return w, start, 0, nil
	case StateOpen:
		now := b.now()
		if until := b.openUntil.Load(); now < until {
			return 0, 0, 0, b.reject(w, now, time.Duration(until-now))
		}
		return b.admitLocked(now)
	case StateForcedOpen:
		var now int64
		if b.rateRule {
			now = b.now()
		}
		return 0, 0, 0, b.reject(w, now, 0)
	default:
		return b.admitLocked(b.now())
	}
}

// admitLocked decides under the lock: it moves the breaker on in time, then
// admits a probe if a slot is free.
func (b *Breaker) admitLocked(now int64) (uint64, int64, uint64, error) {
	b.mu.Lock()
	defer b.unlock()
	b.advance(now)
	w := b.word.Load()
	switch stateOf(w) {
	case StateHalfOpen:
		if len(b.probes) < b.cfg.MaxProbes {
			b.probeSeq++
			b.probes = append(b.probes, probe{id: b.probeSeq, deadline: addSat(now, int64(b.cfg.ProbeTimeout))})
			return w, now, b.probeSeq, nil
		}
		// All slots taken: the oldest frees by its deadline at the latest.
		return 0, 0, 0, b.reject(w, now, time.Duration(b.oldestProbe()-now))
	case StateOpen:
		return 0, 0, 0, b.reject(w, now, time.Duration(b.openUntil.Load()-now))
	case StateForcedOpen:
		return 0, 0, 0, b.reject(w, now, 0)
	default: // closed, metrics-only or disabled by now
		return w, now, 0, nil
	}
}

// reject counts a rejection and returns its error. The error is shared by
// all rejections of the same generation and rounded RetryAfter, so an open
// breaker allocates about once a second, not once a call.
func (b *Breaker) reject(w uint64, now int64, wait time.Duration) error {
	// Totals.Rejected must match the rejections callers saw, so it has a
	// counter of its own: an add to an epoch can miss its retirement.
	b.rejections.add(kRejected)
	if e := b.cur.Load(); e.gen == genOf(w) {
		e.count(kRejected, now)
	}
	ra := roundRetry(wait)
	if e := b.openErr.Load(); e != nil && e.gen == genOf(w) && e.RetryAfter == ra {
		return e
	}
	e := &OpenError{Name: b.name, State: stateOf(w), RetryAfter: ra, gen: genOf(w)}
	b.openErr.Store(e)
	return e
}
