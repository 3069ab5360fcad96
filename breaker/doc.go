// Package breaker is a circuit breaker with no dependencies outside the
// standard library. fusebox puts one in front of every Docker host, every
// workflow and every breaker-protected MCP tool, so that one bad host trips
// alone, fails fast while it is out, and is probed and brought back on its
// own.
//
// # States
//
//	               trip rule fires
//	   +--------+ ----------------> +------+
//	   | closed |                   | open | rejects with *OpenError
//	   +--------+ <---+             +------+
//	       ^          |                |  ^
//	       |          |  open duration |  | a probe fails (or is slow):
//	       |          |  has passed    v  | reopen, longer
//	       |          |            +-----------+
//	       |          +----------- | half-open | at most MaxProbes
//	       |   ProbeSuccesses      +-----------+ probes in flight
//	       |   probes succeed, or
//	       |   HalfOpenTimeout passes with no failure
//	       |
//	   Release / Reset
//	       |
//	forced-open (Isolate)   disabled (Disable)   metrics-only (MetricsOnly)
//	rejects every call      admits every call,   admits every call,
//	                        records nothing      records, never trips
//
// Reset moves any state to closed and forgets the consecutive trips. The
// manual states are left only by Release or Reset.
//
// # Outcomes
//
// Every admitted call ends as a Success, a Failure or Ignored. A nil error
// is a success. A context.Canceled or context.DeadlineExceeded returned
// while the caller's own context is done is Ignored: the caller gave up,
// which says nothing about the host. Any other error goes to
// Settings.Classify, which by default calls it a failure; a classifier can
// mark caller faults (an invalid spec, an expected 404) as Ignored. A panic
// is a failure.
//
// # Trip rules
//
// Each rule is optional, and any of them trips a closed breaker:
//
//   - ConsecutiveFailures (default 5): that many failures in a row; a
//     success resets the run, an ignored call does not.
//   - FailureRate: the share of failures among the successes and failures in
//     the rolling Window (WindowBuckets buckets; old buckets expire whole)
//     reaches the rate, once the window holds MinCalls calls.
//   - SlowCallDuration and SlowCallRate: calls slower than the duration are
//     slow; the share of slow calls in the window reaches the rate, once the
//     window holds MinCalls calls.
//
// The rate rules are checked when a failure or a slow call is recorded. The
// window starts empty at every state change.
//
// # Open duration
//
// The n-th consecutive trip keeps the breaker open for n × OpenDuration
// (default 60 s), capped at MaxOpenDuration (default 10 min), shortened by
// a random fraction of up to Jitter (default 10%). A failed probe is another
// trip. A closed breaker forgets one trip for every TripDecay (default: the
// base OpenDuration) it stays closed, so a host that has been healthy for a
// while starts again from the base duration, while a flapping one does not.
//
// # Half-open
//
// When the open duration has passed, the breaker is half-open and admits at
// most MaxProbes (default 1) calls at once — exactly that many; the next is
// rejected with an *OpenError in state half-open. ProbeSuccesses (default
// 1) successful probes close it; any failed probe reopens it. A probe that
// has not reported within ProbeTimeout (default 30 s) gives its slot to the
// next caller and its late report is ignored, so a hung call cannot wedge
// the breaker. With HalfOpenTimeout set, a half-open breaker that has seen
// no failure for that long closes without further evidence.
//
// # Time
//
// Time-based transitions (open to half-open, probe expiry, the quiet
// period, trip decay, the window) are worked out from Settings.Clock when
// the breaker is used or read; there are no timers or goroutines. A
// transition is dated when it became due, not when it was noticed, and an
// open breaker whose time is up reports half-open from State and Snapshot
// even if no call came. Tests drive a ManualClock and never sleep.
//
// # Generations
//
// Every state change starts a new generation. A call remembers the
// generation it was admitted in, and its outcome is dropped if the breaker
// has changed state since: a slow call started before a trip, a reset or a
// recovery can never change the new state. Each generation also has counters
// of its own, and a report adds to its call's generation's counters, so a
// report that races the change is counted in the state the call started in
// or nowhere, never in the new state's Snapshot().Counts.
//
// # APIs
//
//   - Execute(ctx, fn) and Do[T](ctx, b, fn) run a call and record its
//     outcome. The type parameter is on Do, so one breaker guards calls of
//     every result type.
//   - Allow(ctx) returns a Token for operations that report later (a
//     container that runs for hours); Token.Done(err) or
//     Token.DoneOutcome(o) reports once.
//   - Trip(base) opens a closed breaker from outside, as a trip rule
//     would, for (trips × base) instead of (trips × OpenDuration), a base
//     that holds for the reopenings until it closes: fusebox's health
//     checks eject a host with it, apart from the failures of real calls.
//
// A rejection is an *OpenError, for which errors.Is(err, ErrOpen) is true.
// It names the breaker, the state that refused the call (open, forced-open,
// or half-open with every probe slot taken) and RetryAfter, e.g.
// `breaker "host h2" is open; retry after 41s`.
//
// # Listeners
//
// Settings.OnStateChange and Registry.OnStateChange are called after every
// state change, outside any lock and in the order of the changes. The
// goroutine whose call caused a change delivers it after releasing the
// lock; if another goroutine is already delivering, it queues the change
// for that one and returns at once. A listener may call back into the
// breaker, even to change its state.
//
// # Speed
//
// A closed breaker admits a call with one atomic load and records a success
// with one atomic add: no lock, no allocation, and no clock read unless a
// rate or slow-call rule needs the time. An open breaker rejects with one
// clock read and no allocation (the *OpenError is shared while its
// RetryAfter, rounded to the second, is unchanged). Only half-open and the
// transitions take a mutex. Registry lookups of existing names take no lock
// and do not allocate.
package breaker
