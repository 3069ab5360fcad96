package breaker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// This file holds a reference model of the spec: single-threaded,
// straightforward code with no atomics, no packed words and no buckets
// (it keeps a log of every outcome and filters it). The model test and
// FuzzBreaker drive the real breaker and the model with the same operations
// and compare what they say after every step.

// model is the reference breaker. Times are nanoseconds since creation.
type model struct {
	s   Settings // after WithDefaults
	now int64

	state         State
	gen           uint64
	consec        int // consecutive failures
	trips         int64
	closedSince   int64
	openedAt      int64
	openUntil     int64
	halfOpenAt    int64
	probes        []mprobe
	probeOKs      int
	nextProbe     uint64
	log           []mevent // outcomes and rejections since the state began
	totals        [numKinds]uint64
	events        []change
	lastRejection mreject
}

type mprobe struct {
	id       uint64
	deadline int64
}

type mevent struct {
	at int64
	k  kind
}

type mtoken struct {
	gen   uint64
	state State
	start int64
	probe uint64
}

type mreject struct {
	state State
	retry time.Duration
}

func newModel(s Settings) *model {
	return &model{s: s.WithDefaults(), state: StateClosed, gen: 1}
}

func (m *model) windowOn() bool { return m.s.FailureRate > 0 || m.s.SlowCallDuration > 0 }

func (m *model) setState(to State, at int64) {
	if m.state != to {
		m.events = append(m.events, change{m.state, to})
	}
	m.state = to
	m.gen++
	m.log = nil
	m.consec = 0
	switch to {
	case StateClosed:
		m.closedSince = at
	case StateHalfOpen:
		m.halfOpenAt = at
		m.probes = nil
		m.probeOKs = 0
	}
}

func (m *model) advance() {
	if m.state == StateOpen && m.now >= m.openUntil {
		m.setState(StateHalfOpen, m.openUntil)
	}
	if m.state == StateHalfOpen {
		m.probes = slices.DeleteFunc(m.probes, func(p mprobe) bool { return p.deadline <= m.now })
		if q := int64(m.s.HalfOpenTimeout); q > 0 && m.now-m.halfOpenAt >= q {
			m.setState(StateClosed, m.halfOpenAt+q)
		}
	}
}

func (m *model) decayedTrips() int64 {
	d := int64(m.s.TripDecay)
	if d <= 0 || m.state != StateClosed {
		return m.trips
	}
	return max(m.trips-(m.now-m.closedSince)/d, 0)
}

func (m *model) toOpen() {
	if m.state == StateClosed {
		m.trips = m.decayedTrips()
	}
	m.trips++
	d := int64(m.s.OpenDuration) * m.trips
	if d > int64(m.s.MaxOpenDuration) || d/m.trips != int64(m.s.OpenDuration) {
		d = int64(m.s.MaxOpenDuration)
	}
	m.openedAt = m.now
	m.openUntil = m.now + d
	m.setState(StateOpen, m.now)
}

func (m *model) count(k kind) {
	m.totals[k]++
	m.log = append(m.log, mevent{m.now, k})
}

// counts returns the counts of the current state, within the window if
// there is one.
func (m *model) counts() (v [numKinds]uint64) {
	for _, e := range m.log {
		if m.windowOn() {
			width := int64(m.s.Window) / int64(m.s.WindowBuckets)
			if e.at/width <= m.now/width-int64(m.s.WindowBuckets) {
				continue // expired
			}
		}
		v[e.k]++
	}
	return v
}

func (m *model) rateTripped() bool {
	v := m.counts()
	calls := v[kSuccess] + v[kFailure]
	if calls == 0 || calls < uint64(m.s.MinCalls) {
		return false
	}
	if m.s.FailureRate > 0 && float64(v[kFailure]) >= m.s.FailureRate*float64(calls) {
		return true
	}
	return m.s.SlowCallDuration > 0 && float64(v[kSlow]) >= m.s.SlowCallRate*float64(calls)
}

func (m *model) reject(retry int64) mreject {
	m.count(kRejected)
	m.lastRejection = mreject{m.state, roundRetry(time.Duration(retry))}
	return m.lastRejection
}

func (m *model) allow() (mtoken, *mreject) {
	m.advance()
	switch m.state {
	case StateOpen:
		r := m.reject(m.openUntil - m.now)
		return mtoken{}, &r
	case StateForcedOpen:
		r := m.reject(0)
		return mtoken{}, &r
	case StateHalfOpen:
		if len(m.probes) >= m.s.MaxProbes {
			oldest := m.probes[0].deadline
			for _, p := range m.probes {
				oldest = min(oldest, p.deadline)
			}
			r := m.reject(oldest - m.now)
			return mtoken{}, &r
		}
		m.nextProbe++
		m.probes = append(m.probes, mprobe{m.nextProbe, m.now + int64(m.s.ProbeTimeout)})
		return mtoken{m.gen, m.state, m.now, m.nextProbe}, nil
	}
	return mtoken{m.gen, m.state, m.now, 0}, nil
}

func (m *model) done(t mtoken, o Outcome) {
	slow := m.s.SlowCallDuration > 0 && o != Ignored && m.now-t.start > int64(m.s.SlowCallDuration)
	if t.probe != 0 {
		m.advance()
		i := slices.IndexFunc(m.probes, func(p mprobe) bool { return p.id == t.probe })
		if t.gen != m.gen || i < 0 {
			return
		}
		m.probes = slices.Delete(m.probes, i, i+1)
		m.count(kindOf(o))
		if slow {
			m.count(kSlow)
		}
		switch {
		case o == Failure || o == Success && slow:
			m.toOpen()
		case o == Success:
			m.probeOKs++
			if m.probeOKs >= m.s.ProbeSuccesses {
				m.setState(StateClosed, m.now)
			}
		}
		return
	}
	if t.gen != m.gen || (t.state != StateClosed && t.state != StateMetricsOnly) {
		return
	}
	m.count(kindOf(o))
	if slow {
		m.count(kSlow)
	}
	switch o {
	case Success:
		m.consec = 0
	case Failure:
		m.consec = min(m.consec+1, maxConsec)
	}
	if m.state != StateClosed {
		return
	}
	consecTrip := o == Failure && m.s.ConsecutiveFailures > 0 && m.consec >= m.s.ConsecutiveFailures
	rateTrip := (o == Failure || slow) && m.windowOn() && m.rateTripped()
	if consecTrip || rateTrip {
		m.toOpen()
	}
}

func (m *model) manual(s State) {
	if m.state != s {
		m.setState(s, m.now)
	}
}

func (m *model) release() {
	if m.state.Manual() {
		m.setState(StateClosed, m.now)
	}
}

func (m *model) reset() {
	m.trips = 0
	m.setState(StateClosed, m.now)
}

// snapshot is what the model expects Breaker.Snapshot to return, with times
// in breaker nanoseconds (converted by the caller).
func (m *model) snapshot(born time.Time) Snapshot {
	m.advance()
	at := func(n int64) time.Time { return born.Add(time.Duration(n)) }
	s := Snapshot{
		State:               m.state,
		Generation:          m.gen,
		Counts:              countsOf(m.counts()),
		Totals:              countsOf(m.totals),
		ConsecutiveFailures: m.consec,
		Trips:               int(m.decayedTrips()),
	}
	switch m.state {
	case StateOpen:
		s.OpenedAt = at(m.openedAt)
		s.NextProbeAt = at(m.openUntil)
	case StateHalfOpen:
		s.OpenedAt = at(m.openedAt)
		s.ConsecutiveSuccesses = m.probeOKs
		s.ProbesInFlight = len(m.probes)
		s.NextProbeAt = at(m.now)
		if len(m.probes) >= m.s.MaxProbes {
			oldest := m.probes[0].deadline
			for _, p := range m.probes {
				oldest = min(oldest, p.deadline)
			}
			s.NextProbeAt = at(oldest)
		}
	}
	return s
}

// The operations a scenario is made of.
type opKind uint8

const (
	opAdvance     opKind = iota // move the clock by arg milliseconds
	opAllow                     // admit a call and keep it pending
	opDone                      // finish pending call arg%len with outcome arg2
	opExecute                   // allow and finish at once with outcome arg2
	opIsolate                   //
	opDisable                   //
	opMetricsOnly               //
	opRelease                   //
	opReset                     //
	opState                     // read State()
	numOps
)

type op struct {
	kind opKind
	arg  int
	arg2 Outcome
}

func (o op) String() string {
	names := [...]string{"advance", "allow", "done", "execute", "isolate", "disable", "metrics-only", "release", "reset", "state"}
	return fmt.Sprintf("%s(%d,%v)", names[o.kind], o.arg, o.arg2)
}

var errCall = errors.New("call failed")

// errFor returns an error that the default classifier maps to o.
func errFor(o Outcome) error {
	switch o {
	case Success:
		return nil
	case Failure:
		return errCall
	}
	return errIgnored
}

var errIgnored = errors.New("ignored by classifier")

func classifyTest(err error) Outcome {
	if errors.Is(err, errIgnored) {
		return Ignored
	}
	return Failure
}

// checkScenario runs ops against a real breaker and the model, comparing
// after every step, and checks the invariants. It returns a description of
// the first difference, or "".
func checkScenario(s Settings, ops []op) string {
	clock := NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	s.Clock = clock
	s.Classify = classifyTest
	var got []change
	s.OnStateChange = func(_ string, from, to State) { got = append(got, change{from, to}) }
	b, err := New("model", s)
	if err != nil {
		return "" // invalid settings are not a scenario
	}
	m := newModel(s)
	born := clock.Now()

	type pending struct {
		tok  Token
		mtok mtoken
	}
	var calls []pending
	var trace []string

	for _, o := range ops {
		trace = append(trace, o.String())
		fail := func(format string, args ...any) string {
			return fmt.Sprintf("after %v:\n%s", trace, fmt.Sprintf(format, args...))
		}
		switch o.kind {
		case opAdvance:
			d := time.Duration(o.arg) * time.Millisecond
			clock.Advance(d)
			m.now += int64(d)
		case opAllow, opExecute:
			var tok Token
			var err error
			ran := false
			fn := func(context.Context) error { ran = true; return errFor(o.arg2) }
			switch {
			case o.kind == opExecute && o.arg%3 == 0:
				err = b.Execute(context.Background(), fn)
			case o.kind == opExecute && o.arg%3 == 1:
				_, err = Do(context.Background(), b, func(ctx context.Context) (int, error) { return 1, fn(ctx) })
			default:
				tok, err = b.Allow(context.Background())
			}
			mtok, mrej := m.allow()
			if ran {
				err = nil // the call ran: its own error is not a rejection
			}
			if (err != nil) != (mrej != nil) {
				return fail("Allow error %v, model rejects: %v", err, mrej)
			}
			if err != nil {
				var oe *OpenError
				if !errors.As(err, &oe) || !errors.Is(err, ErrOpen) {
					return fail("rejection %v is not an *OpenError", err)
				}
				if oe.State != mrej.state || oe.RetryAfter != mrej.retry {
					return fail("rejection %s/%v, model %s/%v", oe.State, oe.RetryAfter, mrej.state, mrej.retry)
				}
				break
			}
			switch {
			case ran:
				m.done(mtok, o.arg2)
			case tok.Probe() != (mtok.probe != 0):
				return fail("probe %v, model %v", tok.Probe(), mtok.probe != 0)
			case o.kind == opExecute:
				tok.Done(errFor(o.arg2))
				m.done(mtok, o.arg2)
			default:
				calls = append(calls, pending{tok, mtok})
			}
		case opDone:
			if len(calls) == 0 {
				break
			}
			i := o.arg % len(calls)
			c := calls[i]
			calls = slices.Delete(calls, i, i+1)
			if o.arg%3 == 0 {
				c.tok.DoneOutcome(o.arg2)
			} else {
				c.tok.Done(errFor(o.arg2))
			}
			m.done(c.mtok, o.arg2)
		case opIsolate:
			b.Isolate()
			m.manual(StateForcedOpen)
		case opDisable:
			b.Disable()
			m.manual(StateDisabled)
		case opMetricsOnly:
			b.MetricsOnly()
			m.manual(StateMetricsOnly)
		case opRelease:
			b.Release()
			m.release()
		case opReset:
			b.Reset()
			m.reset()
		case opState:
			st := b.State()
			m.advance()
			if st != m.state {
				return fail("State() %v, model %v", st, m.state)
			}
		}

		// Compare the full snapshot after every step.
		want := m.snapshot(born)
		want.Name = "model"
		gotSnap := b.Snapshot()
		if gotSnap != want {
			return fail("snapshot\n got %+v\nwant %+v", gotSnap, want)
		}
		if !slices.Equal(got, m.events) {
			return fail("events\n got %v\nwant %v", got, m.events)
		}
		// Invariants that hold whatever the model says.
		if gotSnap.ProbesInFlight > b.cfg.MaxProbes {
			return fail("%d probes in flight, max %d", gotSnap.ProbesInFlight, b.cfg.MaxProbes)
		}
		if gotSnap.State >= numStates {
			return fail("invalid state %d", gotSnap.State)
		}
		if c := gotSnap.Totals; c.Requests != c.Successes+c.Failures+c.Ignored || c.Slow > c.Successes+c.Failures {
			return fail("totals do not add up: %+v", c)
		}
	}
	return ""
}

// randomSettings draws settings that make every rule reachable within a
// short scenario. Jitter is off: the model has none.
func randomSettings(r *rand.Rand) Settings {
	pick := func(vs ...int) int { return vs[r.IntN(len(vs))] }
	ms := func(vs ...int) time.Duration { return time.Duration(pick(vs...)) * time.Millisecond }
	s := Settings{
		ConsecutiveFailures: pick(-1, 0, 1, 2, 3),
		MinCalls:            pick(1, 2, 4, 6),
		Window:              ms(100, 1000),
		WindowBuckets:       pick(1, 2, 5, 10),
		OpenDuration:        ms(50, 100, 300),
		MaxOpenDuration:     ms(0, 200, 1000),
		Jitter:              -1,
		TripDecay:           ms(0, 40, 200, -1),
		MaxProbes:           pick(1, 2, 3),
		ProbeSuccesses:      pick(1, 2, 3),
		ProbeTimeout:        ms(20, 100, 1000),
		HalfOpenTimeout:     ms(0, 0, 150),
	}
	if r.IntN(2) == 0 {
		s.FailureRate = []float64{0.3, 0.5, 1}[r.IntN(3)]
	}
	if r.IntN(3) == 0 {
		s.SlowCallDuration = ms(5, 20)
		s.SlowCallRate = []float64{0, 0.5, 1}[r.IntN(3)]
	}
	if s.MaxOpenDuration != 0 && s.MaxOpenDuration < s.OpenDuration {
		s.MaxOpenDuration = s.OpenDuration
	}
	return s
}

func randomOps(r *rand.Rand, n int) []op {
	ops := make([]op, n)
	for i := range ops {
		o := op{arg: r.IntN(100), arg2: Outcome(r.IntN(10) / 4 % 3)} // mostly successes and failures
		switch x := r.IntN(100); {
		case x < 20:
			o.kind = opAdvance
			o.arg = []int{0, 1, 3, 10, 25, 60, 120, 400}[r.IntN(8)]
		case x < 45:
			o.kind = opExecute
		case x < 65:
			o.kind = opAllow
		case x < 88:
			o.kind = opDone
		case x < 93:
			o.kind = opState
		default:
			o.kind = opIsolate + opKind(r.IntN(5))
		}
		ops[i] = o
	}
	return ops
}

// TestModel runs random scenarios against the model.
func TestModel(t *testing.T) {
	n := 3000
	if testing.Short() {
		n = 300
	}
	for seed := range n {
		r := rand.New(rand.NewPCG(uint64(seed), 42))
		s := randomSettings(r)
		ops := randomOps(r, 200)
		if diff := checkScenario(s, ops); diff != "" {
			t.Fatalf("seed %d, settings %+v\n%s", seed, s, diff)
		}
	}
}
