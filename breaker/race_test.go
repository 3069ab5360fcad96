package breaker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestConcurrentHammer runs many goroutines against one breaker while the
// clock moves and an operator flips manual states, and checks the
// invariants that must hold under any interleaving (run it with -race):
//   - never more than MaxProbes probes of one half-open period in flight
//     (counted with an atomic inside the probe);
//   - listeners see a continuous chain of transitions (each from is the
//     previous to), one at a time;
//   - the rejected count matches the rejections callers saw, and no more
//     outcomes are counted than calls were admitted.
func TestConcurrentHammer(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    Settings
	}{
		{"consecutive", Settings{ConsecutiveFailures: 3}},
		{"window", Settings{ConsecutiveFailures: -1, FailureRate: 0.3, MinCalls: 5, Window: 50 * time.Millisecond, WindowBuckets: 5, SlowCallDuration: 2 * time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) { hammer(t, tc.s) })
	}
}

func hammer(t *testing.T, s Settings) {
	const (
		workers    = 8
		iterations = 3000
		maxProbes  = 3
	)
	clock := NewManualClock(t0)
	s.Clock = clock
	s.MaxProbes = maxProbes
	s.ProbeSuccesses = 2
	s.OpenDuration = 5 * time.Millisecond
	s.MaxOpenDuration = 20 * time.Millisecond
	s.TripDecay = 10 * time.Millisecond
	s.ProbeTimeout = 1000 * time.Hour // probes never expire, so the bound is strict

	var (
		listenerBusy atomic.Bool
		lastTo       = StateClosed
		transitions  atomic.Int64
		errs         = make(chan string, 100)
	)
	report := func(msg string) {
		select {
		case errs <- msg:
		default:
		}
	}
	s.OnStateChange = func(_ string, from, to State) {
		if !listenerBusy.CompareAndSwap(false, true) {
			report("two listener calls at once")
		}
		if from != lastTo {
			report("transition " + from.String() + "->" + to.String() + " after ->" + lastTo.String())
		}
		lastTo = to
		transitions.Add(1)
		listenerBusy.Store(false)
	}
	b, err := New("hammer", s)
	if err != nil {
		t.Fatal(err)
	}

	var inflight sync.Map // generation -> *atomic.Int64 of probes running
	probesOf := func(gen uint64) *atomic.Int64 {
		v, _ := inflight.LoadOrStore(gen, new(atomic.Int64))
		return v.(*atomic.Int64)
	}
	var admitted, rejected, maxSeen atomic.Int64
	stop := make(chan struct{})

	var wg sync.WaitGroup
	// A reader takes snapshots all along.
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = b.Snapshot()
			runtime.Gosched()
		}
	})
	// The operator flips manual states, paced by the calls (worker 0's
	// progress), not by its own speed: on a loaded machine a goroutine of
	// its own could isolate the breaker and not run again until every call
	// had been rejected.
	operate := func(i int) {
		switch i % 500 {
		case 100:
			b.Isolate()
		case 110:
			b.Release()
		case 300:
			b.MetricsOnly()
		case 320:
			b.Release()
		case 400:
			b.Reset()
		}
	}
	var workersWG sync.WaitGroup
	for w := range workers {
		workersWG.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range iterations {
				if w == 0 {
					operate(i)
				}
				// Time moves with the calls, so open periods end and
				// probes run while others are rejected.
				clock.Advance(time.Duration(r.IntN(300)) * time.Microsecond)
				fail := r.IntN(3) == 0
				call := func() error {
					if r.IntN(10) == 0 {
						clock.Advance(time.Millisecond) // a slow call
					}
					runtime.Gosched()
					if fail {
						return errBoom
					}
					return nil
				}
				if r.IntN(2) == 0 {
					err := b.Execute(context.Background(), func(context.Context) error { return call() })
					if errors.Is(err, ErrOpen) {
						rejected.Add(1)
					} else {
						admitted.Add(1)
					}
					continue
				}
				tok, err := b.Allow(context.Background())
				if err != nil {
					rejected.Add(1)
					continue
				}
				admitted.Add(1)
				if tok.Probe() {
					n := probesOf(genOf(tok.word))
					if v := n.Add(1); v > maxProbes {
						report("more than MaxProbes probes in flight")
					} else if v > maxSeen.Load() {
						maxSeen.Store(v)
					}
					err := call()
					n.Add(-1) // before Done: Done frees the slot
					tok.Done(err)
				} else {
					tok.Done(call())
				}
			}
		})
	}
	workersWG.Wait()
	close(stop)
	wg.Wait()
	close(errs)
	for msg := range errs {
		t.Error(msg)
	}

	snap := b.Snapshot()
	if got, want := snap.Totals.Rejected, uint64(rejected.Load()); got != want {
		t.Errorf("Totals.Rejected = %d, callers saw %d rejections", got, want)
	}
	if snap.Totals.Requests > uint64(admitted.Load()) {
		t.Errorf("%d outcomes counted for %d admitted calls", snap.Totals.Requests, admitted.Load())
	}
	if c := snap.Totals; c.Requests != c.Successes+c.Failures+c.Ignored {
		t.Errorf("totals do not add up: %+v", c)
	}
	if snap.ProbesInFlight != 0 && snap.State == StateHalfOpen {
		t.Errorf("%d probes still in flight after every call reported", snap.ProbesInFlight)
	}
	t.Logf("%d transitions, %d admitted, %d rejected, up to %d probes at once, final %+v",
		transitions.Load(), admitted.Load(), rejected.Load(), maxSeen.Load(), snap.Totals)
	if transitions.Load() < 10 {
		t.Errorf("only %d transitions: the test did not exercise the state machine", transitions.Load())
	}
}

// TestStripedCountsExactly adds from many goroutines into two stripes, so
// that they collide and the salt changes under them: no add may be lost.
func TestStripedCountsExactly(t *testing.T) {
	var s striped
	s.cells = make([]cell, 2)
	s.shift = 63
	const goroutines, adds = 4, 200_000
	var wg sync.WaitGroup
	for range goroutines {
		wg.Go(func() {
			for range adds {
				s.add(kSuccess)
			}
		})
	}
	wg.Wait()
	if got := s.load()[kSuccess]; got != goroutines*adds {
		t.Fatalf("counted %d, want %d", got, goroutines*adds)
	}
	t.Logf("salt changed %d times", s.salt.Load())
}

// TestReportsStayInTheirGeneration checks the promise that a call reports
// into the state it started in, or nowhere. In each round, calls admitted
// in one generation (through Allow, and through Execute calls held inside
// fn) report all at once from several goroutines while the state changes
// under them: a Reset or an Isolate from another goroutine, or a trip
// caused by the reports' own failures. No call is admitted after the
// change, so the new state's Counts must be empty, however the reports and
// the change interleave. Before counts were tied to their generation, a
// report that had passed its generation check could still land in the new
// state's counts: every case but one failed within a few hundred rounds.
func TestReportsStayInTheirGeneration(t *testing.T) {
	const noTrip = -1
	for _, tc := range []struct {
		name   string
		s      Settings
		change func(*Breaker) // nil: the reports' failures trip the breaker
	}{
		{"reset", Settings{ConsecutiveFailures: noTrip}, (*Breaker).Reset},
		{"isolate", Settings{ConsecutiveFailures: noTrip}, (*Breaker).Isolate},
		{"trip", Settings{ConsecutiveFailures: 3}, nil},
		{"window/reset", Settings{ConsecutiveFailures: noTrip, FailureRate: 0.9, MinCalls: 1 << 20}, (*Breaker).Reset},
		{"window/trip", Settings{ConsecutiveFailures: noTrip, FailureRate: 0.5, MinCalls: 3}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rounds := 3000
			if testing.Short() {
				rounds = 300
			}
			s := tc.s
			s.Clock = NewManualClock(t0) // time stands still: nothing expires
			b := MustNew("generations", s)
			for round := range rounds {
				if msg := reportRound(b, tc.change); msg != "" {
					t.Fatalf("round %d: %s", round, msg)
				}
			}
		})
	}
}

// reportRound runs one round of TestReportsStayInTheirGeneration on b and
// returns what went wrong, or "".
func reportRound(b *Breaker, change func(*Breaker)) string {
	const (
		reporters = 6  // goroutines reporting tokens
		perTokens = 12 // tokens each of them reports
		executes  = 4  // Execute calls held inside fn until the start
	)
	b.Reset()
	gen := b.Snapshot().Generation
	// Every outcome, through every reporting path: the calls' context is
	// done, so context.Canceled is ignored. When the reports must trip the
	// breaker themselves, three in four fail.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	outcome := func(i int) error {
		switch {
		case change == nil && i%4 != 0:
			return errBoom
		case i%3 == 0:
			return nil
		case i%3 == 1:
			return errBoom
		}
		return context.Canceled
	}

	start := make(chan struct{})
	var admitted, reporting sync.WaitGroup
	var reported atomic.Int64
	for e := range executes {
		admitted.Add(1)
		reporting.Go(func() {
			_ = b.Execute(done, func(context.Context) error {
				admitted.Done()
				<-start
				return outcome(e)
			})
			reported.Add(1)
		})
	}
	for r := range reporters {
		toks := make([]Token, perTokens)
		for i := range toks {
			tok, err := b.Allow(done)
			if err != nil {
				return "admission refused in a fresh closed state: " + err.Error()
			}
			toks[i] = tok
		}
		reporting.Go(func() {
			<-start
			for i, tok := range toks {
				tok.Done(outcome(r + i))
				reported.Add(1)
			}
		})
	}
	admitted.Wait()
	if change != nil {
		reporting.Go(func() {
			<-start
			// Change the state in the thick of the reports.
			for reported.Load() < reporters*perTokens/2 {
				runtime.Gosched()
			}
			change(b)
		})
	}
	close(start)
	reporting.Wait()

	snap := b.Snapshot()
	switch {
	case snap.Generation == gen:
		return "the state never changed"
	case snap.Counts != Counts{}:
		return fmt.Sprintf("state %v (generation %d, calls admitted in %d) counts %+v, want none",
			snap.State, snap.Generation, gen, snap.Counts)
	}
	return ""
}
