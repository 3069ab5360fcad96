package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/breaker"
)

// errDaemonHung stands in for a Docker API error that is the host's fault.
var errDaemonHung = errors.New("docker: context deadline exceeded talking to the daemon")

// startContainer stands in for a Docker API call to one host.
func startContainer(ctx context.Context, healthy bool) (string, error) {
	if !healthy {
		return "", errDaemonHung
	}
	return "c0ffee", nil
}

// Protect each Docker API call with the host's breaker. After five host
// faults in a row the breaker opens and calls fail fast, without touching
// the daemon, until a probe succeeds.
func ExampleDo() {
	clock := breaker.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	b := breaker.MustNew("host h1", breaker.Settings{Clock: clock, Jitter: -1})
	ctx := context.Background()

	for range 6 {
		_, err := breaker.Do(ctx, b, func(ctx context.Context) (string, error) {
			return startContainer(ctx, false)
		})
		fmt.Println(err)
	}

	clock.Advance(time.Minute) // the open period is over: the next call probes
	id, err := breaker.Do(ctx, b, func(ctx context.Context) (string, error) {
		return startContainer(ctx, true)
	})
	fmt.Println(id, err, b.State())
	// Output:
	// docker: context deadline exceeded talking to the daemon
	// docker: context deadline exceeded talking to the daemon
	// docker: context deadline exceeded talking to the daemon
	// docker: context deadline exceeded talking to the daemon
	// docker: context deadline exceeded talking to the daemon
	// breaker "host h1" is open; retry after 1m0s
	// c0ffee <nil> closed
}

// Execute is Do for calls that return only an error.
func ExampleBreaker_Execute() {
	b := breaker.MustNew("docker ping", breaker.Settings{})
	err := b.Execute(context.Background(), func(ctx context.Context) error {
		return nil // e.g. client.Ping(ctx)
	})
	fmt.Println(err, b.State())
	// Output: <nil> closed
}

// One breaker per Docker host, created on first use. A registry-wide
// listener hears every transition of every host, e.g. to raise an alert.
func ExampleRegistry() {
	clock := breaker.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	hosts, err := breaker.NewRegistry(breaker.Settings{Clock: clock, ConsecutiveFailures: 3})
	if err != nil {
		panic(err)
	}
	hosts.OnStateChange(func(name string, from, to breaker.State) {
		fmt.Printf("alert: %s %v -> %v\n", name, from, to)
	})

	for range 3 {
		for _, h := range []string{"h1", "h2", "h3"} {
			_, _ = breaker.Do(context.Background(), hosts.Get(h), func(ctx context.Context) (string, error) {
				return startContainer(ctx, h != "h2")
			})
		}
	}
	for _, s := range hosts.Snapshots() {
		fmt.Printf("%s: %v, %d ok, %d failed\n", s.Name, s.State, s.Totals.Successes, s.Totals.Failures)
	}
	// Output:
	// alert: h2 closed -> open
	// h1: closed, 3 ok, 0 failed
	// h2: open, 0 ok, 3 failed
	// h3: closed, 3 ok, 0 failed
}

// The two-step API suits operations that report much later, such as a
// container that runs for hours: Allow when it starts, Done when it ends.
func ExampleBreaker_Allow() {
	b := breaker.MustNew("workflow nightly-etl", breaker.Settings{ConsecutiveFailures: 1})
	ctx := context.Background()

	tok, err := b.Allow(ctx)
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	// ... the workflow runs, and later fails:
	tok.Done(errors.New("step transform exited with code 1"))

	// A failed run counts as a failure, so the next run is refused.
	_, err = b.Allow(ctx)
	fmt.Println(errors.Is(err, breaker.ErrOpen))
	// Output: true
}

// A rejection says when to retry, e.g. for an HTTP 503 with Retry-After.
func ExampleOpenError() {
	clock := breaker.NewManualClock(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	b := breaker.MustNew("host h2", breaker.Settings{Clock: clock, Jitter: -1, ConsecutiveFailures: 1})
	_ = b.Execute(context.Background(), func(context.Context) error { return errDaemonHung })

	clock.Advance(19 * time.Second)
	err := b.Execute(context.Background(), func(context.Context) error { return nil })
	var oe *breaker.OpenError
	if errors.As(err, &oe) {
		fmt.Printf("state=%v retry-after=%.0f\n", oe.State, oe.RetryAfter.Seconds())
		fmt.Println(err)
	}
	// Output:
	// state=open retry-after=41
	// breaker "host h2" is open; retry after 41s
}

// An operator can take a host out of rotation and put it back.
func ExampleBreaker_Isolate() {
	b := breaker.MustNew("host h3", breaker.Settings{})
	b.Isolate()
	fmt.Println(b.Execute(context.Background(), func(context.Context) error { return nil }))
	b.Release()
	fmt.Println(b.State())
	// Output:
	// breaker "host h3" is forced open; retry after an operator releases it
	// closed
}
