package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

// newTest returns a breaker on a manual clock, with jitter off unless s sets
// it.
func newTest(t *testing.T, s Settings) (*Breaker, *ManualClock) {
	t.Helper()
	clock := NewManualClock(t0)
	s.Clock = clock
	if s.Jitter == 0 {
		s.Jitter = -1
	}
	b, err := New("test", s)
	if err != nil {
		t.Fatal(err)
	}
	return b, clock
}

var (
	errBoom = errors.New("boom")
	bg      = context.Background()
)

func succeed(context.Context) error { return nil }
func failing(context.Context) error { return errBoom }

// run executes n calls with the same outcome and fails the test if one is
// rejected.
func run(t *testing.T, b *Breaker, n int, fn func(context.Context) error) {
	t.Helper()
	for i := range n {
		if err := b.Execute(context.Background(), fn); errors.Is(err, ErrOpen) {
			t.Fatalf("call %d of %d rejected: %v", i+1, n, err)
		}
	}
}

func wantState(t *testing.T, b *Breaker, want State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state = %v, want %v", got, want)
	}
}

// trip opens a breaker with the default consecutive-failure rule.
func trip(t *testing.T, b *Breaker) {
	t.Helper()
	run(t, b, b.cfg.ConsecutiveFailures, failing)
	wantState(t, b, StateOpen)
}

func TestStateAndOutcomeStrings(t *testing.T) {
	for s, want := range map[State]string{
		StateClosed: "closed", StateOpen: "open", StateHalfOpen: "half-open",
		StateForcedOpen: "forced-open", StateDisabled: "disabled", StateMetricsOnly: "metrics-only",
		State(42): "state(42)",
	} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", s, got, want)
		}
	}
	for o, want := range map[Outcome]string{Success: "success", Failure: "failure", Ignored: "ignored", Outcome(9): "outcome(9)"} {
		if got := o.String(); got != want {
			t.Errorf("Outcome(%d).String() = %q, want %q", o, got, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	s := Settings{}.WithDefaults()
	want := Settings{
		ConsecutiveFailures: ConsecutiveFailuresDefault,
		SlowCallRate:        SlowCallRateDefault,
		MinCalls:            MinCallsDefault,
		Window:              WindowDefault,
		WindowBuckets:       WindowBucketsDefault,
		OpenDuration:        OpenDurationDefault,
		MaxOpenDuration:     MaxOpenDurationDefault,
		Jitter:              JitterDefault,
		TripDecay:           OpenDurationDefault,
		MaxProbes:           MaxProbesDefault,
		ProbeSuccesses:      ProbeSuccessesDefault,
		ProbeTimeout:        ProbeTimeoutDefault,
	}
	s.Clock, s.Rand = nil, nil
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("WithDefaults:\n got %+v\nwant %+v", s, want)
	}
	// A long base open duration raises the default cap with it.
	if got := (Settings{OpenDuration: time.Hour}).WithDefaults().MaxOpenDuration; got != time.Hour {
		t.Errorf("MaxOpenDuration with a 1h base = %v, want 1h", got)
	}
	if _, err := New("x", Settings{}); err != nil {
		t.Errorf("New with zero Settings: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		field string
		s     Settings
	}{
		{"ConsecutiveFailures", Settings{ConsecutiveFailures: MaxConsecutiveFailures + 1}},
		{"FailureRate", Settings{FailureRate: 1.5}},
		{"FailureRate", Settings{FailureRate: -0.1}},
		{"SlowCallDuration", Settings{SlowCallDuration: -time.Second}},
		{"SlowCallRate", Settings{SlowCallRate: 2}},
		{"MinCalls", Settings{MinCalls: -1}},
		{"WindowBuckets", Settings{WindowBuckets: -1}},
		{"WindowBuckets", Settings{WindowBuckets: 5000}},
		{"Window", Settings{Window: -time.Second}},
		{"Window", Settings{Window: 5, WindowBuckets: 10}},
		{"OpenDuration", Settings{OpenDuration: -time.Second}},
		{"MaxOpenDuration", Settings{OpenDuration: time.Minute, MaxOpenDuration: time.Second}},
		{"Jitter", Settings{Jitter: 1}},
		{"MaxProbes", Settings{MaxProbes: -1}},
		{"ProbeSuccesses", Settings{ProbeSuccesses: -2}},
		{"ProbeTimeout", Settings{ProbeTimeout: -time.Second}},
		{"HalfOpenTimeout", Settings{HalfOpenTimeout: -time.Second}},
	}
	for _, tt := range tests {
		_, err := New("x", tt.s)
		var se *SettingsError
		if !errors.As(err, &se) || se.Field != tt.field {
			t.Errorf("New(%+v) = %v, want a *SettingsError for %s", tt.s, err, tt.field)
			continue
		}
		if !strings.Contains(err.Error(), "Settings."+tt.field) {
			t.Errorf("error %q does not name Settings.%s", err, tt.field)
		}
	}
	if _, err := NewRegistry(Settings{Jitter: 2}); err == nil {
		t.Error("NewRegistry accepted invalid defaults")
	}
}

func TestConsecutiveFailures(t *testing.T) {
	tests := []struct {
		name  string
		rule  int
		calls string // s = success, f = failure, i = ignored
		want  State
	}{
		{"default trips on the 5th failure", 0, "fffff", StateOpen},
		{"4 failures stay closed", 0, "ffff", StateClosed},
		{"a success resets the run", 0, "ffffsffff", StateClosed},
		{"ignored does not reset the run", 0, "ffffif", StateOpen},
		{"ignored does not count", 0, "iiiiiiiiii", StateClosed},
		{"threshold 1", 1, "sf", StateOpen},
		{"threshold 3", 3, "ffsfff", StateOpen},
		{"rule off", -1, "ffffffffffffffff", StateClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTest(t, Settings{ConsecutiveFailures: tt.rule, Classify: classifyTest})
			for _, c := range tt.calls {
				o := map[rune]Outcome{'s': Success, 'f': Failure, 'i': Ignored}[c]
				_ = b.Execute(context.Background(), func(context.Context) error { return errFor(o) })
			}
			wantState(t, b, tt.want)
		})
	}
}

// TestFailedCallCountsAsFailure guards against the bug of the Python systems
// fusebox replaces, which counted failed async workflows as successes: every
// API must count a returned error as a failure.
func TestFailedCallCountsAsFailure(t *testing.T) {
	apis := map[string]func(b *Breaker) error{
		"Execute": func(b *Breaker) error { return b.Execute(context.Background(), failing) },
		"Do": func(b *Breaker) error {
			_, err := Do(context.Background(), b, func(context.Context) (string, error) { return "", errBoom })
			return err
		},
		"Allow+Done": func(b *Breaker) error {
			tok, err := b.Allow(context.Background())
			if err != nil {
				return err
			}
			tok.Done(errBoom)
			return errBoom
		},
		"Allow+DoneOutcome": func(b *Breaker) error {
			tok, err := b.Allow(context.Background())
			if err != nil {
				return err
			}
			tok.DoneOutcome(Failure)
			return errBoom
		},
		"Execute panicking": func(b *Breaker) (err error) {
			defer func() {
				if recover() == nil {
					err = errors.New("the panic was swallowed")
				} else {
					err = errBoom
				}
			}()
			return b.Execute(context.Background(), func(context.Context) error { panic("boom") })
		},
	}
	for name, call := range apis {
		t.Run(name, func(t *testing.T) {
			b, _ := newTest(t, Settings{ConsecutiveFailures: 2})
			if err := call(b); !errors.Is(err, errBoom) {
				t.Fatalf("first call returned %v, want the call's error", err)
			}
			s := b.Snapshot()
			if s.Counts.Failures != 1 || s.Counts.Successes != 0 || s.ConsecutiveFailures != 1 {
				t.Fatalf("after one failed call: %+v", s.Counts)
			}
			if err := call(b); !errors.Is(err, errBoom) {
				t.Fatalf("second call returned %v", err)
			}
			wantState(t, b, StateOpen)
		})
	}
}

func TestCallerCancellationIsIgnored(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	defer cancel2()
	live := context.Background()

	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want Outcome
	}{
		{"caller cancelled", cancelled, context.Canceled, Ignored},
		{"caller cancelled, wrapped", cancelled, fmt.Errorf("docker: %w", context.Canceled), Ignored},
		{"caller deadline", expired, context.DeadlineExceeded, Ignored},
		{"caller cancelled, other error", cancelled, errBoom, Failure},
		{"live caller, inner deadline", live, context.DeadlineExceeded, Failure},
		{"live caller, canceled error", live, context.Canceled, Failure},
		{"nil error", cancelled, nil, Success},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, _ := newTest(t, Settings{})
			_ = b.Execute(tt.ctx, func(context.Context) error { return tt.err })
			tok, _ := b.Allow(tt.ctx)
			tok.Done(tt.err)
			c := b.Snapshot().Counts
			got := [numOutcomes]uint64{c.Successes, c.Failures, c.Ignored}
			if got[tt.want] != 2 || c.Requests != 2 {
				t.Errorf("counts %+v, want 2 x %v", c, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	errCallerFault := errors.New("invalid spec")
	errFine := errors.New("404, expected")
	b, _ := newTest(t, Settings{ConsecutiveFailures: 1, Classify: func(err error) Outcome {
		switch {
		case errors.Is(err, errCallerFault):
			return Ignored
		case errors.Is(err, errFine):
			return Success
		case err == nil:
			panic("Classify called with nil")
		}
		return Failure
	}})
	for range 3 {
		_ = b.Execute(context.Background(), func(context.Context) error { return errCallerFault })
		_ = b.Execute(context.Background(), func(context.Context) error { return errFine })
		_ = b.Execute(context.Background(), succeed)
	}
	c := b.Snapshot().Counts
	if c.Ignored != 3 || c.Successes != 6 || c.Failures != 0 {
		t.Fatalf("counts %+v", c)
	}
	// An out-of-range outcome is a failure.
	tok, _ := b.Allow(bg)
	tok.DoneOutcome(Outcome(200))
	wantState(t, b, StateOpen)
}

func TestOpenRejects(t *testing.T) {
	b, clock := newTest(t, Settings{OpenDuration: 41 * time.Second})
	trip(t, b)
	clock.Advance(300 * time.Millisecond)
	ran := false
	err := b.Execute(context.Background(), func(context.Context) error { ran = true; return nil })
	if ran {
		t.Fatal("an open breaker ran the call")
	}
	if !errors.Is(err, ErrOpen) {
		t.Fatalf("err = %v, want ErrOpen", err)
	}
	var oe *OpenError
	if !errors.As(err, &oe) {
		t.Fatalf("err is %T, want *OpenError", err)
	}
	if oe.Name != "test" || oe.State != StateOpen || oe.RetryAfter != 41*time.Second {
		t.Errorf("OpenError = %+v, want name test, open, 41s (40.7s rounded up)", oe)
	}
	if want := `breaker "test" is open; retry after 41s`; err.Error() != want {
		t.Errorf("message %q, want %q", err, want)
	}
	if _, err := Do(context.Background(), b, func(context.Context) (int, error) { return 1, nil }); !errors.Is(err, ErrOpen) {
		t.Errorf("Do: %v", err)
	}
	if _, err := b.Allow(bg); !errors.Is(err, ErrOpen) {
		t.Errorf("Allow: %v", err)
	}
	if got := b.Snapshot().Totals.Rejected; got != 3 {
		t.Errorf("rejected = %d, want 3", got)
	}
	// RetryAfter counts down.
	clock.Advance(30 * time.Second)
	err = b.Execute(context.Background(), succeed)
	if errors.As(err, &oe); oe.RetryAfter != 11*time.Second {
		t.Errorf("RetryAfter after 30.3s = %v, want 11s", oe.RetryAfter)
	}
	clock.Advance(10*time.Second + 500*time.Millisecond)
	err = b.Execute(context.Background(), succeed)
	if errors.As(err, &oe); oe.RetryAfter != 200*time.Millisecond {
		t.Errorf("RetryAfter 200ms before the end = %v", oe.RetryAfter)
	}
}

func TestRoundRetry(t *testing.T) {
	for in, want := range map[time.Duration]time.Duration{
		0: 0, -time.Second: 0, 1: time.Millisecond, 999 * time.Microsecond: time.Millisecond,
		time.Millisecond: time.Millisecond, 1500 * time.Microsecond: 2 * time.Millisecond,
		time.Second: time.Second, time.Second + 1: 2 * time.Second, 40200 * time.Millisecond: 41 * time.Second,
	} {
		if got := roundRetry(in); got != want {
			t.Errorf("roundRetry(%v) = %v, want %v", in, got, want)
		}
	}
}

func TestOpenBecomesHalfOpenWhenRead(t *testing.T) {
	b, clock := newTest(t, Settings{OpenDuration: time.Minute})
	trip(t, b)
	s := b.Snapshot()
	if !s.OpenedAt.Equal(t0) || !s.NextProbeAt.Equal(t0.Add(time.Minute)) || s.Trips != 1 {
		t.Fatalf("open snapshot %+v", s)
	}
	clock.Advance(time.Minute - 1)
	wantState(t, b, StateOpen)
	clock.Advance(1)
	// No call came; the snapshot still reports half-open.
	if s := b.Snapshot(); s.State != StateHalfOpen || !s.NextProbeAt.Equal(clock.Now()) || !s.OpenedAt.Equal(t0) {
		t.Fatalf("snapshot after the open period: %+v", s)
	}
}

func TestHalfOpenProbes(t *testing.T) {
	tests := []struct{ probes, successes int }{{1, 1}, {2, 1}, {3, 3}, {5, 2}, {1, 3}}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("K=%d,M=%d", tt.probes, tt.successes), func(t *testing.T) {
			b, clock := newTest(t, Settings{MaxProbes: tt.probes, ProbeSuccesses: tt.successes})
			trip(t, b)
			clock.Advance(OpenDurationDefault)

			// Exactly K probes are admitted; the K+1th is rejected.
			var toks []Token
			for range tt.probes {
				tok, err := b.Allow(bg)
				if err != nil {
					t.Fatalf("probe %d of %d rejected: %v", len(toks)+1, tt.probes, err)
				}
				if !tok.Probe() {
					t.Fatal("token is not a probe")
				}
				toks = append(toks, tok)
			}
			_, err := b.Allow(bg)
			var oe *OpenError
			if !errors.As(err, &oe) || oe.State != StateHalfOpen || oe.RetryAfter != ProbeTimeoutDefault {
				t.Fatalf("probe K+1: %v, want a half-open rejection retrying after the probe timeout", err)
			}
			if !strings.Contains(err.Error(), "half-open") {
				t.Errorf("message %q does not say half-open", err)
			}
			if s := b.Snapshot(); s.ProbesInFlight != tt.probes || !s.NextProbeAt.Equal(clock.Now().Add(ProbeTimeoutDefault)) {
				t.Errorf("snapshot %+v", s)
			}

			// M successes close it; each report frees a slot for the next.
			for i := range tt.successes {
				wantState(t, b, StateHalfOpen)
				toks[0].Done(nil)
				toks = toks[1:]
				if i+1 < tt.successes && len(toks) < tt.successes-i-1 {
					tok, err := b.Allow(bg)
					if err != nil {
						t.Fatalf("freed slot not reusable: %v", err)
					}
					toks = append(toks, tok)
				}
			}
			wantState(t, b, StateClosed)
			if s := b.Snapshot(); s.Trips != 1 || s.Counts.Requests != 0 {
				t.Errorf("closed snapshot %+v", s)
			}
		})
	}
}

func TestHalfOpenIgnoredProbeFreesSlot(t *testing.T) {
	b, clock := newTest(t, Settings{})
	trip(t, b)
	clock.Advance(OpenDurationDefault)
	tok, _ := b.Allow(bg)
	if _, err := b.Allow(bg); err == nil {
		t.Fatal("second probe admitted")
	}
	tok.DoneOutcome(Ignored)
	wantState(t, b, StateHalfOpen)
	if _, err := b.Allow(bg); err != nil {
		t.Fatalf("slot not freed by an ignored probe: %v", err)
	}
}

func TestHalfOpenFailureReopensLonger(t *testing.T) {
	b, clock := newTest(t, Settings{OpenDuration: 10 * time.Second, MaxOpenDuration: 35 * time.Second})
	trip(t, b)
	for i, want := range []time.Duration{20, 30, 35, 35} {
		clock.Advance(time.Hour) // long past any open period
		wantState(t, b, StateHalfOpen)
		_ = b.Execute(context.Background(), failing)
		s := b.Snapshot()
		if s.State != StateOpen || s.Trips != i+2 || s.NextProbeAt.Sub(s.OpenedAt) != want*time.Second {
			t.Fatalf("reopen %d: state %v, trips %d, open for %v, want %v", i+1, s.State, s.Trips, s.NextProbeAt.Sub(s.OpenedAt), want*time.Second)
		}
	}
}

func TestSlowProbeReopens(t *testing.T) {
	b, clock := newTest(t, Settings{SlowCallDuration: time.Second})
	trip(t, b)
	clock.Advance(OpenDurationDefault)
	tok, _ := b.Allow(bg)
	clock.Advance(2 * time.Second)
	tok.Done(nil)
	if s := b.Snapshot(); s.State != StateOpen || s.Trips != 2 {
		t.Fatalf("a slow probe left the breaker %v with %d trips", s.State, s.Trips)
	}
}

func TestProbeTimeoutFreesSlot(t *testing.T) {
	b, clock := newTest(t, Settings{ProbeTimeout: 10 * time.Second})
	trip(t, b)
	clock.Advance(OpenDurationDefault)
	hung, err := b.Allow(bg)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10*time.Second - 1)
	if _, err := b.Allow(bg); err == nil {
		t.Fatal("second probe admitted before the first timed out")
	}
	clock.Advance(1)
	next, err := b.Allow(bg)
	if err != nil {
		t.Fatalf("the hung probe wedged the breaker: %v", err)
	}
	// The hung probe's late report is ignored, even a failure.
	hung.Done(errBoom)
	wantState(t, b, StateHalfOpen)
	next.Done(nil)
	wantState(t, b, StateClosed)
}

func TestHalfOpenTimeout(t *testing.T) {
	b, clock := newTest(t, Settings{HalfOpenTimeout: 30 * time.Second})
	trip(t, b)
	clock.Advance(OpenDurationDefault + 29*time.Second)
	wantState(t, b, StateHalfOpen)
	clock.Advance(time.Second)
	wantState(t, b, StateClosed)

	// Without it, half-open waits for evidence.
	b2, clock2 := newTest(t, Settings{})
	trip(t, b2)
	clock2.Advance(24 * time.Hour)
	wantState(t, b2, StateHalfOpen)
}

func TestOpenDurationGrowsAndDecays(t *testing.T) {
	base := 10 * time.Second
	b, clock := newTest(t, Settings{OpenDuration: base, MaxOpenDuration: time.Minute, TripDecay: time.Minute})
	openFor := func() time.Duration {
		s := b.Snapshot()
		return s.NextProbeAt.Sub(s.OpenedAt)
	}
	// Trip, probe successfully, close, trip again at once: 1, 2, 3... x base.
	for trips := 1; trips <= 8; trips++ {
		trip(t, b)
		if got, want := openFor(), min(time.Duration(trips)*base, time.Minute); got != want {
			t.Fatalf("trip %d: open for %v, want %v", trips, got, want)
		}
		clock.Advance(time.Hour)
		run(t, b, 1, succeed) // the probe closes it
		wantState(t, b, StateClosed)
	}
	// Closed for 3 decay periods: 8 trips become 5, so the next is the 6th.
	clock.Advance(3*time.Minute + time.Second)
	if got := b.Snapshot().Trips; got != 5 {
		t.Fatalf("trips after 3 decay periods = %d, want 5", got)
	}
	trip(t, b)
	if got := b.Snapshot().Trips; got != 6 {
		t.Fatalf("trips = %d, want 6", got)
	}
	// Long enough closed, it is back to the base duration.
	clock.Advance(time.Hour)
	run(t, b, 1, succeed)
	clock.Advance(time.Hour)
	trip(t, b)
	if got := openFor(); got != base {
		t.Fatalf("after decay, open for %v, want the base %v", got, base)
	}
	// Negative TripDecay: only Reset forgets.
	b2, clock2 := newTest(t, Settings{TripDecay: -1})
	trip(t, b2)
	clock2.Advance(time.Hour)
	run(t, b2, 1, succeed)
	clock2.Advance(1000 * time.Hour)
	trip(t, b2)
	if got := b2.Snapshot().Trips; got != 2 {
		t.Fatalf("trips without decay = %d, want 2", got)
	}
	b2.Reset()
	if got := b2.Snapshot().Trips; got != 0 {
		t.Fatalf("trips after Reset = %d", got)
	}
}

func TestJitter(t *testing.T) {
	base := 100 * time.Second
	for _, r := range []float64{0, 0.25, 0.5, 0.999999, 1, -1} {
		b, _ := newTest(t, Settings{OpenDuration: base, Jitter: 0.2, Rand: func() float64 { return r }})
		trip(t, b)
		s := b.Snapshot()
		got := s.NextProbeAt.Sub(s.OpenedAt)
		want := base - time.Duration(float64(base)*0.2*r)
		if r < 0 || r >= 1 {
			want = base // out-of-range random numbers are treated as 0
		}
		if got != want || got > base || got < base*8/10 {
			t.Errorf("rand %v: open for %v, want %v within [80s, 100s]", r, got, want)
		}
	}
	// The default source stays within bounds too.
	for range 100 {
		b, err := New("j", Settings{OpenDuration: base})
		if err != nil {
			t.Fatal(err)
		}
		run(t, b, 5, failing)
		s := b.Snapshot()
		if d := s.NextProbeAt.Sub(s.OpenedAt); d > base || d < base*9/10 {
			t.Fatalf("open for %v, outside [90s, 100s]", d)
		}
	}
}

func TestStaleReportsAreIgnored(t *testing.T) {
	b, clock := newTest(t, Settings{ConsecutiveFailures: 2})
	// A slow call starts while closed...
	slow, _ := b.Allow(bg)
	// ...the breaker trips and recovers meanwhile...
	run(t, b, 2, failing)
	clock.Advance(OpenDurationDefault)
	slowProbe, _ := b.Allow(bg)
	clock.Advance(ProbeTimeoutDefault) // the probe times out
	run(t, b, 1, succeed)              // a new probe closes it
	wantState(t, b, StateClosed)
	gen := b.Snapshot().Generation
	// ...and the stale reports arrive: neither may change the new state.
	slow.Done(errBoom)
	slowProbe.Done(errBoom)
	slow.Done(errBoom) // reporting twice is a caller bug, but still harmless here
	s := b.Snapshot()
	if s.State != StateClosed || s.ConsecutiveFailures != 0 || s.Counts.Failures != 0 || s.Generation != gen {
		t.Fatalf("a stale report changed the breaker: %+v", s)
	}
	// Reset starts a new generation too.
	tok, _ := b.Allow(bg)
	b.Reset()
	tok.Done(errBoom)
	if s := b.Snapshot(); s.ConsecutiveFailures != 0 {
		t.Fatalf("a report from before Reset counted: %+v", s)
	}
	// The zero Token does nothing.
	Token{}.Done(errBoom)
	Token{}.DoneOutcome(Failure)
}

func TestFailureRateWindow(t *testing.T) {
	s := Settings{
		ConsecutiveFailures: -1,
		FailureRate:         0.5,
		MinCalls:            10,
		Window:              10 * time.Second,
		WindowBuckets:       10,
	}
	t.Run("below min calls", func(t *testing.T) {
		b, _ := newTest(t, s)
		run(t, b, 9, failing)
		wantState(t, b, StateClosed)
		run(t, b, 1, failing)
		wantState(t, b, StateOpen)
	})
	t.Run("rate at the threshold trips", func(t *testing.T) {
		b, _ := newTest(t, s)
		run(t, b, 5, succeed)
		run(t, b, 4, failing)
		wantState(t, b, StateClosed)
		run(t, b, 1, failing) // 5 of 10
		wantState(t, b, StateOpen)
	})
	t.Run("old buckets expire", func(t *testing.T) {
		b, clock := newTest(t, s)
		run(t, b, 9, failing) // at t=0
		clock.Advance(5 * time.Second)
		run(t, b, 5, succeed)
		if c := b.Snapshot().Counts; c.Failures != 9 || c.Successes != 5 {
			t.Fatalf("window counts %+v", c)
		}
		clock.Advance(5 * time.Second) // the t=0 bucket leaves the window
		if c := b.Snapshot().Counts; c.Failures != 0 || c.Successes != 5 {
			t.Fatalf("window counts after 10s %+v", c)
		}
		run(t, b, 4, failing) // 4 of 9 in the window: below MinCalls and rate
		wantState(t, b, StateClosed)
		run(t, b, 1, failing) // 5 of 10
		wantState(t, b, StateOpen)
	})
	t.Run("rolls bucket by bucket", func(t *testing.T) {
		b, clock := newTest(t, s)
		for range 10 {
			run(t, b, 1, failing)
			run(t, b, 2, succeed)
			clock.Advance(time.Second)
		}
		// The clock is at 10s: the t=0 bucket has just left the window.
		for i := 9; i >= 0; i-- {
			if c := b.Snapshot().Counts; c.Failures != uint64(i) || c.Successes != uint64(2*i) {
				t.Fatalf("%d buckets left: counts %+v", i, c)
			}
			clock.Advance(time.Second)
		}
	})
	t.Run("window resets when closing", func(t *testing.T) {
		b, clock := newTest(t, s)
		run(t, b, 10, failing)
		wantState(t, b, StateOpen)
		clock.Advance(OpenDurationDefault)
		run(t, b, 1, succeed)
		wantState(t, b, StateClosed)
		run(t, b, 1, failing) // 1 of 2, but below MinCalls: the old failures are gone
		wantState(t, b, StateClosed)
	})
}

func TestSlowCallRate(t *testing.T) {
	b, clock := newTest(t, Settings{
		ConsecutiveFailures: -1,
		SlowCallDuration:    time.Second,
		SlowCallRate:        0.5,
		MinCalls:            4,
	})
	slowCall := func(d time.Duration) {
		_ = b.Execute(context.Background(), func(context.Context) error { clock.Advance(d); return nil })
	}
	slowCall(time.Second) // exactly the threshold is not slow
	slowCall(0)
	slowCall(2 * time.Second)
	if c := b.Snapshot().Counts; c.Slow != 1 || c.Successes != 3 {
		t.Fatalf("counts %+v", c)
	}
	wantState(t, b, StateClosed)
	slowCall(3 * time.Second) // 2 slow of 4
	wantState(t, b, StateOpen)

	// Slow failures count as slow too; ignored calls never do.
	b2, clock2 := newTest(t, Settings{ConsecutiveFailures: -1, SlowCallDuration: time.Second, MinCalls: 1, SlowCallRate: 1})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	_ = b2.Execute(cancelled, func(ctx context.Context) error { clock2.Advance(time.Hour); return ctx.Err() })
	wantState(t, b2, StateClosed)
	_ = b2.Execute(context.Background(), func(context.Context) error { clock2.Advance(time.Hour); return errBoom })
	wantState(t, b2, StateOpen)
}

func TestManualStates(t *testing.T) {
	t.Run("isolate", func(t *testing.T) {
		b, clock := newTest(t, Settings{})
		b.Isolate()
		err := b.Execute(context.Background(), succeed)
		var oe *OpenError
		if !errors.As(err, &oe) || oe.State != StateForcedOpen || oe.RetryAfter != 0 || !errors.Is(err, ErrOpen) {
			t.Fatalf("isolated: %v", err)
		}
		if !strings.Contains(err.Error(), "forced open") {
			t.Errorf("message %q", err)
		}
		clock.Advance(24 * time.Hour)
		wantState(t, b, StateForcedOpen) // no time-based way out
		b.Release()
		wantState(t, b, StateClosed)
		run(t, b, 1, succeed)
	})
	t.Run("disable", func(t *testing.T) {
		b, _ := newTest(t, Settings{ConsecutiveFailures: 1})
		trip(t, b)
		b.Disable()
		run(t, b, 100, failing)
		if s := b.Snapshot(); s.State != StateDisabled || s.Counts.Requests != 0 {
			t.Fatalf("disabled: %+v", s)
		}
		b.Release()
		wantState(t, b, StateClosed)
	})
	t.Run("metrics only", func(t *testing.T) {
		b, _ := newTest(t, Settings{FailureRate: 0.1, MinCalls: 1})
		b.MetricsOnly()
		run(t, b, 100, failing)
		run(t, b, 3, succeed)
		s := b.Snapshot()
		if s.State != StateMetricsOnly || s.Counts.Failures != 100 || s.Counts.Successes != 3 || s.ConsecutiveFailures != 0 {
			t.Fatalf("metrics-only: %+v", s)
		}
		b.Release()
		wantState(t, b, StateClosed)
		if s := b.Snapshot(); s.Counts.Requests != 0 || s.Totals.Requests != 103 {
			t.Fatalf("after release: %+v", s)
		}
	})
	t.Run("release does nothing in automatic states", func(t *testing.T) {
		b, _ := newTest(t, Settings{})
		trip(t, b)
		b.Release()
		wantState(t, b, StateOpen)
	})
	t.Run("reset", func(t *testing.T) {
		b, clock := newTest(t, Settings{})
		trip(t, b)
		clock.Advance(time.Hour)
		_ = b.Execute(context.Background(), failing) // reopen: 2 trips
		b.Reset()
		s := b.Snapshot()
		if s.State != StateClosed || s.Trips != 0 || s.ConsecutiveFailures != 0 || s.Counts.Requests != 0 {
			t.Fatalf("after reset: %+v", s)
		}
		if s.Totals.Failures != 6 {
			t.Fatalf("Reset cleared the lifetime totals: %+v", s.Totals)
		}
		b.Isolate()
		b.Reset()
		wantState(t, b, StateClosed)
	})
}

func TestListeners(t *testing.T) {
	var mu sync.Mutex
	var got []string
	var b *Breaker
	clock := NewManualClock(t0)
	b = MustNew("h1", Settings{
		Clock:               clock,
		ConsecutiveFailures: 1,
		Jitter:              -1,
		OnStateChange: func(name string, from, to State) {
			// Re-entering the breaker must not deadlock: these take its lock.
			snap := b.Snapshot()
			st := b.State()
			mu.Lock()
			got = append(got, fmt.Sprintf("%s:%v->%v(%v,%v)", name, from, to, snap.State, st))
			mu.Unlock()
			// A listener may change the state; that change is delivered
			// after this one returns, in order.
			if to == StateHalfOpen {
				b.Isolate()
			}
		},
	})
	_ = b.Execute(context.Background(), failing)
	clock.Advance(OpenDurationDefault)
	b.State() // open -> half-open, whose listener isolates
	b.Release()
	want := []string{
		"h1:closed->open(open,open)",
		"h1:open->half-open(half-open,half-open)",
		"h1:half-open->forced-open(forced-open,forced-open)",
		"h1:forced-open->closed(closed,closed)",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events\n got %v\nwant %v", got, want)
	}
}

func TestListenerPanicDoesNotWedge(t *testing.T) {
	calls := 0
	b, _ := newTest(t, Settings{ConsecutiveFailures: 1, OnStateChange: func(string, State, State) {
		calls++
		if calls == 1 {
			panic("listener bug")
		}
	}})
	func() {
		defer func() { _ = recover() }()
		_ = b.Execute(context.Background(), failing)
	}()
	b.Reset()
	if calls != 2 {
		t.Fatalf("listener called %d times, want 2: a panic wedged delivery", calls)
	}
}

// TestZeroAllocs checks the fast paths allocate nothing.
func TestZeroAllocs(t *testing.T) {
	b := MustNew("alloc", Settings{OpenDuration: time.Hour})
	ctx := context.Background()
	if n := testing.AllocsPerRun(1000, func() { _ = b.Execute(ctx, succeed) }); n != 0 {
		t.Errorf("closed Execute: %v allocs", n)
	}
	if n := testing.AllocsPerRun(1000, func() { _, _ = Do(ctx, b, func(context.Context) (int, error) { return 1, nil }) }); n != 0 {
		t.Errorf("closed Do: %v allocs", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		tok, _ := b.Allow(ctx)
		tok.Done(nil)
	}); n != 0 {
		t.Errorf("closed Allow+Done: %v allocs", n)
	}
	run(t, b, 5, failing)
	wantState(t, b, StateOpen)
	_ = b.Execute(ctx, succeed) // warm the error cache
	if n := testing.AllocsPerRun(1000, func() { _ = b.Execute(ctx, succeed) }); n > 0.01 {
		t.Errorf("open Execute: %v allocs", n)
	}
	r, _ := NewRegistry(Settings{})
	r.Get("h")
	if n := testing.AllocsPerRun(1000, func() { _ = r.Get("h") }); n != 0 {
		t.Errorf("Registry.Get of an existing name: %v allocs", n)
	}
}

func TestHugeDurationsDoNotOverflow(t *testing.T) {
	forever := time.Duration(math.MaxInt64)
	b, clock := newTest(t, Settings{OpenDuration: forever, ProbeTimeout: forever})
	clock.Advance(time.Hour)
	trip(t, b)
	clock.Advance(1000 * time.Hour)
	wantState(t, b, StateOpen)
	b2, clock2 := newTest(t, Settings{ProbeTimeout: forever})
	trip(t, b2)
	clock2.Advance(time.Hour)
	if _, err := b2.Allow(bg); err != nil {
		t.Fatal(err)
	}
	clock2.Advance(1000 * time.Hour)
	if _, err := b2.Allow(bg); err == nil {
		t.Fatal("a probe that never times out expired")
	}
}

func TestManualClock(t *testing.T) {
	c := NewManualClock(t0)
	c.Advance(time.Second)
	if !c.Now().Equal(t0.Add(time.Second)) {
		t.Fatal("Advance")
	}
	c.Set(t0)
	if !c.Now().Equal(t0) {
		t.Fatal("Set")
	}
	// A breaker whose clock goes back never sees negative time.
	b := MustNew("back", Settings{Clock: c, FailureRate: 0.5})
	c.Set(t0.Add(-time.Hour))
	run(t, b, 3, succeed)
	if b.now() != 0 {
		t.Fatal("negative breaker time")
	}
}

func TestAccessors(t *testing.T) {
	b := MustNew("name", Settings{MaxProbes: 3})
	if b.Name() != "name" || b.Settings().MaxProbes != 3 || b.Settings().ConsecutiveFailures != 5 {
		t.Fatal("accessors")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustNew accepted invalid settings")
		}
	}()
	MustNew("bad", Settings{Jitter: 5})
}
