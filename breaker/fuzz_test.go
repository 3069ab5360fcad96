package breaker

import (
	"testing"
	"time"
)

// FuzzBreaker decodes settings and a sequence of calls, clock moves and
// operator actions from the input, runs them against a breaker and the
// reference model (model_test.go), and fails on any difference or broken
// invariant: a panic, more than MaxProbes probes in flight, an invalid
// state, totals that do not add up. The seed corpus is in
// testdata/fuzz/FuzzBreaker.
func FuzzBreaker(f *testing.F) {
	// Hand-written seeds: settings bytes, then (op, arg) pairs. See
	// decodeScenario for the layout.
	trip5 := []byte{1, 0, 0, 0, 1, 1, 1, 2, 0, 0, 0, 2, 0, 0}
	for range 5 {
		trip5 = append(trip5, byte(opExecute)+byte(numOps), 0) // failures
	}
	f.Add(trip5)
	// Trip, wait, probe 3 at once, report them.
	probes := append([]byte{3, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 3, 2, 0}, trip5[14:]...)
	probes = append(probes, byte(opAdvance), 200, byte(opAllow), 0, byte(opAllow), 0, byte(opAllow), 0, byte(opAllow), 0,
		byte(opDone), 0, byte(opDone), 1, byte(opDone)+byte(numOps), 0, byte(opState), 0)
	f.Add(probes)
	// Failure-rate window with slow calls and manual states.
	f.Add([]byte{0, 3, 1, 1, 2, 2, 3, 1, 1, 2, 3, 1, 1, 1,
		byte(opAllow), 0, byte(opAdvance), 20, byte(opDone), 0, byte(opExecute) + byte(numOps), 0,
		byte(opExecute), 1, byte(opIsolate), 0, byte(opExecute), 0, byte(opRelease), 0,
		byte(opMetricsOnly), 0, byte(opExecute) + byte(numOps), 0, byte(opReset), 0, byte(opDisable), 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, ops := decodeScenario(data)
		if diff := checkScenario(s, ops); diff != "" {
			t.Fatalf("settings %+v\n%s", s, diff)
		}
	})
}

// decodeScenario turns fuzz input into settings (the first 14 bytes) and up
// to 400 operations (two bytes each: kind and outcome, then an argument).
// Missing bytes read as zero, so every input is a scenario.
func decodeScenario(data []byte) (Settings, []op) {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	s := Settings{
		ConsecutiveFailures: next()%6 - 1, // -1 (off) .. 4; 0 is the default 5
		FailureRate:         []float64{0, 0, 0.25, 0.5, 1}[next()%5],
		SlowCallDuration:    ms(next() % 4 * 5),
		SlowCallRate:        []float64{0, 0.5, 1}[next()%3],
		MinCalls:            next() % 6,
		Window:              ms(50 + next()%4*100),
		WindowBuckets:       next() % 6,
		OpenDuration:        ms(10 + next()%8*20),
		MaxOpenDuration:     ms(next() % 4 * 100),
		TripDecay:           ms(next()%5*20 - 20),
		MaxProbes:           next() % 4,
		ProbeSuccesses:      next() % 4,
		ProbeTimeout:        ms(next() % 5 * 25),
		HalfOpenTimeout:     ms(next() % 4 * 50),
		Jitter:              -1, // the model has no jitter
	}
	var ops []op
	for len(data) >= 2 && len(ops) < 400 {
		k, arg := next(), next()
		ops = append(ops, op{
			kind: opKind(k % int(numOps)),
			arg:  arg,
			arg2: Outcome(k / int(numOps) % 3),
		})
	}
	return s, ops
}
