package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"fusebox/breaker"

	"github.com/afex/hystrix-go/hystrix"
	eapache "github.com/eapache/go-resiliency/breaker"
	"github.com/failsafe-go/failsafe-go"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/sony/gobreaker/v2"
)

// Every scenario runs the same workload against each library, as a
// sub-benchmark named after the library (BenchmarkClosedSerial/fusebox,
// .../gobreaker, ...), so cmd/benchtable can pivot them.
//
// Each library is set up the way its documentation suggests, with its main
// API, and with the same rule where the libraries share one: trip after 5
// consecutive failures, stay open 60 s (an hour where a scenario needs it to
// stay open). Where a library's defaults would trip on the 1 % failure mix
// (failsafe-go trips on 1 failure; eapache counts failures without resetting
// on success), it is configured not to, so that every scenario measures the
// path it is named after; each scenario checks the state at the end.
//
// failsafe-go is measured twice: through its executor (failsafe.With(cb).Run,
// the documented way), and through the circuit breaker's own permit API
// (TryAcquirePermit/RecordError), which skips the executor.
//
// hystrix-go caveats: it runs every command in its own goroutine and reports
// metrics to a collector goroutine through channels, keeps global state keyed
// by command name, and bounds concurrency with a ticket pool. It is configured
// with a 1 h timeout and 10 000 concurrent requests so neither limit is hit;
// RequestVolumeThreshold/ErrorPercentThreshold keep the failure mix closed.
// Its numbers include that machinery, which is its design.

var (
	errFail = errors.New("fail")
	ctx     = context.Background()
)

func okCtx(context.Context) error { return nil }
func ok() error                   { return nil }
func okAny() (any, error)         { return nil, nil }

// lib is one library under test.
type lib struct {
	name string
	// newRunner returns a breaker named name, open for openFor once
	// tripped, wrapped as a runner.
	newRunner func(tb testing.TB, name string, openFor time.Duration) runner
	// newRegistry returns a get-or-create lookup by name that runs one
	// successful call through the named breaker.
	newRegistry func(tb testing.TB) func(name string) error
}

// runner runs calls through one breaker. The indirection costs every
// library the same closure call.
type runner struct {
	ok    func() error // a call that succeeds
	fail  func() error // a call that fails
	state func() string
}

var libs = []lib{
	{"fusebox", newFusebox, fuseboxRegistry},
	{"gobreaker", newGobreaker, mapRegistry(newGobreaker)},
	{"failsafe", newFailsafe, mapRegistry(newFailsafe)},
	{"failsafe-permit", newFailsafePermit, mapRegistry(newFailsafePermit)},
	{"eapache", newEapache, mapRegistry(newEapache)},
	{"hystrix", newHystrix, hystrixRegistry},
}

func failCtx(context.Context) error { return errFail }
func fail() error                   { return errFail }
func failAny() (any, error)         { return nil, errFail }

func newFusebox(tb testing.TB, name string, openFor time.Duration) runner {
	b := breaker.MustNew(name, breaker.Settings{OpenDuration: openFor})
	return runner{
		ok:    func() error { return b.Execute(ctx, okCtx) },
		fail:  func() error { return b.Execute(ctx, failCtx) },
		state: func() string { return b.State().String() },
	}
}

func fuseboxRegistry(tb testing.TB) func(string) error {
	reg, err := breaker.NewRegistry(breaker.Settings{})
	if err != nil {
		tb.Fatal(err)
	}
	return func(name string) error { return reg.Get(name).Execute(ctx, okCtx) }
}

func newGobreaker(tb testing.TB, name string, openFor time.Duration) runner {
	cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:    name,
		Timeout: openFor,
		// The default trips after more than 5 consecutive failures; make it 5.
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= 5 },
	})
	return runner{
		ok:    func() error { _, err := cb.Execute(okAny); return err },
		fail:  func() error { _, err := cb.Execute(failAny); return err },
		state: func() string { return cb.State().String() },
	}
}

func newFailsafeCB(openFor time.Duration) circuitbreaker.CircuitBreaker[any] {
	return circuitbreaker.NewBuilder[any]().
		WithFailureThreshold(5). // the default is 1
		WithDelay(openFor).
		Build()
}

func failsafeState(cb circuitbreaker.CircuitBreaker[any]) string {
	if cb.IsOpen() {
		return "open"
	}
	return cb.State().String()
}

func newFailsafe(tb testing.TB, name string, openFor time.Duration) runner {
	cb := newFailsafeCB(openFor)
	ex := failsafe.With[any](cb)
	return runner{
		ok:    func() error { return ex.Run(ok) },
		fail:  func() error { return ex.Run(fail) },
		state: func() string { return failsafeState(cb) },
	}
}

func newFailsafePermit(tb testing.TB, name string, openFor time.Duration) runner {
	cb := newFailsafeCB(openFor)
	call := func(fn func() error) error {
		if !cb.TryAcquirePermit() {
			return circuitbreaker.ErrOpen
		}
		err := fn()
		cb.RecordError(err)
		return err
	}
	return runner{
		ok:    func() error { return call(ok) },
		fail:  func() error { return call(fail) },
		state: func() string { return failsafeState(cb) },
	}
}

// eapacheThreshold is eapache's errorThreshold. eapache trips after that
// many errors without an error-free gap of its timeout, and a success does
// not reset the count, so with 5 it would trip on the 1% mix after 500
// calls: the mix scenario raises it.
var eapacheThreshold = 5

func newEapache(tb testing.TB, name string, openFor time.Duration) runner {
	b := eapache.New(eapacheThreshold, 1, openFor)
	return runner{
		ok:   func() error { return b.Run(ok) },
		fail: func() error { return b.Run(fail) },
		state: func() string {
			switch b.GetState() {
			case eapache.Open:
				return "open"
			case eapache.HalfOpen:
				return "half-open"
			}
			return "closed"
		},
	}
}

var hystrixMu sync.Mutex

func configureHystrix(name string, openFor time.Duration) {
	hystrixMu.Lock()
	defer hystrixMu.Unlock()
	hystrix.ConfigureCommand(name, hystrix.CommandConfig{
		Timeout:                int(time.Hour / time.Millisecond),
		MaxConcurrentRequests:  10000,
		RequestVolumeThreshold: 5,
		SleepWindow:            int(openFor / time.Millisecond),
		ErrorPercentThreshold:  50,
	})
}

func newHystrix(tb testing.TB, name string, openFor time.Duration) runner {
	configureHystrix(name, openFor)
	return runner{
		ok:   func() error { return hystrix.Do(name, ok, nil) },
		fail: func() error { return hystrix.Do(name, fail, nil) },
		state: func() string {
			c, _, _ := hystrix.GetCircuit(name)
			if c.IsOpen() {
				return "open"
			}
			return "closed"
		},
	}
}

// hystrixRegistry uses hystrix's own registry: hystrix.Do looks the circuit
// up by name. Names must be configured before use.
func hystrixRegistry(tb testing.TB) func(string) error {
	var configured sync.Map
	return func(name string) error {
		if _, ok := configured.Load(name); !ok {
			configureHystrix(name, time.Minute)
			configured.Store(name, true)
		}
		return hystrix.Do(name, ok, nil)
	}
}

// mapRegistry is the get-or-create map a user of a library without a
// registry would write: an RWMutex, a read-locked lookup, and a
// double-checked insert.
func mapRegistry(newRunner func(testing.TB, string, time.Duration) runner) func(testing.TB) func(string) error {
	return func(tb testing.TB) func(string) error {
		var mu sync.RWMutex
		m := map[string]runner{}
		return func(name string) error {
			mu.RLock()
			r, ok := m[name]
			mu.RUnlock()
			if !ok {
				mu.Lock()
				if r, ok = m[name]; !ok {
					r = newRunner(tb, name, time.Minute)
					m[name] = r
				}
				mu.Unlock()
			}
			return r.ok()
		}
	}
}

// run runs a scenario against every library.
func run(b *testing.B, scenario func(b *testing.B, l lib)) {
	for _, l := range libs {
		b.Run(l.name, func(b *testing.B) {
			b.ReportAllocs()
			scenario(b, l)
		})
	}
}

var seq int

// uniqueName gives each breaker its own name: hystrix keeps global state by
// name, and the testing package runs a benchmark function several times.
func uniqueName(prefix string) string {
	seq++
	return fmt.Sprintf("%s-%d", prefix, seq)
}

func expectState(b *testing.B, r runner, want string) {
	b.Helper()
	if got := r.state(); got != want {
		b.Fatalf("breaker is %s, want %s: the scenario measured the wrong path", got, want)
	}
}

// BenchmarkClosedSerial: one goroutine, every call succeeds.
func BenchmarkClosedSerial(b *testing.B) {
	run(b, func(b *testing.B, l lib) {
		r := l.newRunner(b, uniqueName("serial"), time.Minute)
		for b.Loop() {
			_ = r.ok()
		}
		expectState(b, r, "closed")
	})
}

// BenchmarkClosedParallel: GOMAXPROCS goroutines on one breaker, every call
// succeeds.
func BenchmarkClosedParallel(b *testing.B) {
	run(b, func(b *testing.B, l lib) {
		r := l.newRunner(b, uniqueName("parallel"), time.Minute)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				_ = r.ok()
			}
		})
		expectState(b, r, "closed")
	})
}

// BenchmarkOpenReject: GOMAXPROCS goroutines on one open breaker; every call
// is rejected.
func BenchmarkOpenReject(b *testing.B) {
	run(b, func(b *testing.B, l lib) {
		r := l.newRunner(b, uniqueName("open"), time.Hour)
		// Trip it. hystrix opens asynchronously (its metrics go through a
		// goroutine), so keep failing until it reports open.
		deadline := time.Now().Add(10 * time.Second)
		for r.state() != "open" {
			if time.Now().After(deadline) {
				b.Fatal("could not trip the breaker")
			}
			_ = r.fail()
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if r.ok() == nil {
					b.Error("an open breaker admitted a call")
					return
				}
			}
		})
		expectState(b, r, "open")
	})
}

// BenchmarkFailureMix: GOMAXPROCS goroutines on one breaker, 1 call in 100
// fails (never 5 in a row, so no breaker trips).
func BenchmarkFailureMix(b *testing.B) {
	eapacheThreshold = 1 << 30
	defer func() { eapacheThreshold = 5 }()
	run(b, func(b *testing.B, l lib) {
		r := l.newRunner(b, uniqueName("mix"), time.Minute)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if i%100 == 0 {
					_ = r.fail()
				} else {
					_ = r.ok()
				}
			}
		})
		expectState(b, r, "closed")
	})
}

// BenchmarkRegistry100: GOMAXPROCS goroutines spread successful calls over
// 100 per-host breakers, looking the breaker up by name on every call.
// fusebox uses its Registry, hystrix its global command registry, the others
// a map guarded by a sync.RWMutex (mapRegistry).
func BenchmarkRegistry100(b *testing.B) {
	run(b, func(b *testing.B, l lib) {
		prefix := uniqueName("reg")
		names := make([]string, 100)
		for i := range names {
			names[i] = fmt.Sprintf("%s-host-%02d", prefix, i)
		}
		call := l.newRegistry(b)
		for _, n := range names { // create them all before timing
			_ = call(n)
		}
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				_ = call(names[i%len(names)])
				i++
			}
		})
	})
}
