package fleet

import (
	"context"
	"math"
	"sync"
	"time"
)

// Lane is the priority of a Docker call when a host's concurrency limit is
// reached: launches go first, then status checks, then log collection and
// cleanup. Health-check pings bypass the limiter (they must see a hung host
// at once) and so do streaming calls (wait, events, log follow).
type Lane int

const (
	LaneLaunch Lane = iota // image checks, create, start
	LaneStatus             // container inspect (status polls)
	LaneLogs               // log collection, removal, sweeps, canaries
	numLanes
)

var laneNames = [numLanes]string{"launch", "status", "logs"}

func (l Lane) String() string {
	if l >= 0 && l < numLanes {
		return laneNames[l]
	}
	return "lane?"
}

type laneKey struct{}

// WithLane returns ctx carrying the lane of the Docker calls made with it.
// Calls without one go in LaneStatus.
func WithLane(ctx context.Context, l Lane) context.Context {
	return context.WithValue(ctx, laneKey{}, l)
}

func laneOf(ctx context.Context) Lane {
	if l, ok := ctx.Value(laneKey{}).(Lane); ok {
		return l
	}
	return LaneStatus
}

// LimiterConfig configures the adaptive per-host limit on in-flight Docker
// calls.
type LimiterConfig struct {
	Initial   int     // starting limit; default 16
	Min       int     // never below; default 2
	Max       int     // never above; default 64
	Tolerance float64 // a call slower than Tolerance x its operation's usual latency is "slow"; default 3
	Disabled  bool
}

// Limiter defaults.
const (
	LimitInitialDefault   = 16
	LimitMinDefault       = 2
	LimitMaxDefault       = 64
	LimitToleranceDefault = 3.0
)

func (c LimiterConfig) withDefaults() LimiterConfig {
	if c.Initial <= 0 {
		c.Initial = LimitInitialDefault
	}
	if c.Min <= 0 {
		c.Min = LimitMinDefault
	}
	if c.Max <= 0 {
		c.Max = LimitMaxDefault
	}
	c.Min = min(c.Min, c.Max)
	c.Initial = min(max(c.Initial, c.Min), c.Max)
	if c.Tolerance <= 1 {
		c.Tolerance = LimitToleranceDefault
	}
	return c
}

// limiter bounds the Docker calls in flight to one host with an AIMD limit
// (as TCP does with its window): each call that returns at its usual speed
// raises the limit by 1/limit; a slow call or a host fault cuts it by 10%.
// "Usual speed" is per operation (a create is slower than an inspect): a
// slowly decaying minimum of its latencies, on this host and across the
// fleet, whichever is faster; so a host that is slow from the start, far
// above the fleet, is cut too. When the limit is reached, waiting calls
// are let through by lane: launches before status checks before log
// collection.
type limiter struct {
	cfg   LimiterConfig
	fleet *usualLatency // shared by the fleet's limiters; nil: this host's only

	mu       sync.Mutex
	limit    float64
	inflight int
	waiting  [numLanes][]chan struct{}
	usual    usualLatency // this host's
}

// usualLatency is the usual latency of each operation: it follows a faster
// call at once and a slower one only slowly, so a host that stays slow does
// not become "usual".
type usualLatency struct {
	mu sync.Mutex
	op map[string]float64 // op -> seconds
}

// observe folds a call's latency in (unless it was a host fault) and
// returns the usual latency from before it, and whether there was one.
func (u *usualLatency) observe(op string, secs float64, hostFault bool) (float64, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.op == nil {
		u.op = map[string]float64{}
	}
	usual, seen := u.op[op]
	if !hostFault {
		if !seen || secs < usual {
			u.op[op] = secs
		} else {
			u.op[op] = usual + (secs-usual)*0.01
		}
	}
	return usual, seen
}

func newLimiter(c LimiterConfig, fleet *usualLatency) *limiter {
	c = c.withDefaults()
	return &limiter{cfg: c, fleet: fleet, limit: float64(c.Initial)}
}

// acquire waits for a slot in lane; release reports the call's latency
// and whether the host was at fault.
func (l *limiter) acquire(ctx context.Context, lane Lane) (release func(op string, d time.Duration, hostFault bool), err error) {
	if l == nil || l.cfg.Disabled {
		return func(string, time.Duration, bool) {}, nil
	}
	l.mu.Lock()
	if l.inflight < int(l.limit) && l.noneWaitingBefore(lane+1) {
		l.inflight++
		l.mu.Unlock()
		return l.release, nil
	}
	ch := make(chan struct{})
	l.waiting[lane] = append(l.waiting[lane], ch)
	l.mu.Unlock()
	select {
	case <-ch: // the slot was handed over: inflight already counts it
		return l.release, nil
	case <-ctx.Done():
		l.mu.Lock()
		defer l.mu.Unlock()
		for i, c := range l.waiting[lane] {
			if c == ch {
				l.waiting[lane] = append(l.waiting[lane][:i], l.waiting[lane][i+1:]...)
				return nil, ctx.Err()
			}
		}
		// Handed over just as ctx ended: give the slot back.
		l.inflight--
		l.handOver()
		return nil, ctx.Err()
	}
}

// noneWaitingBefore reports whether no call waits in lanes up to upTo
// (exclusive): a new call does not jump the queue of its own or a higher
// lane.
func (l *limiter) noneWaitingBefore(upTo Lane) bool {
	for i := Lane(0); i < upTo; i++ {
		if len(l.waiting[i]) > 0 {
			return false
		}
	}
	return true
}

func (l *limiter) release(op string, d time.Duration, hostFault bool) {
	secs := d.Seconds()
	usual, seen := l.usual.observe(op, secs, hostFault)
	if l.fleet != nil {
		if fu, ok := l.fleet.observe(op, secs, hostFault); ok && (!seen || fu < usual) {
			usual, seen = fu, true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.inflight--
	switch {
	// Slow: past Tolerance times the usual latency, and by more than a
	// scheduling hiccup (on a busy machine a 2 ms call can take 10 ms).
	case hostFault || seen && secs > l.cfg.Tolerance*usual && secs-usual > slowSlack:
		l.limit = math.Max(float64(l.cfg.Min), l.limit*0.9)
	default:
		l.limit = math.Min(float64(l.cfg.Max), l.limit+1/l.limit)
	}
	l.handOver()
}

// handOver gives free slots to waiting calls, by lane.
func (l *limiter) handOver() {
	for l.inflight < int(l.limit) {
		var ch chan struct{}
		for lane := range l.waiting {
			if len(l.waiting[lane]) > 0 {
				ch = l.waiting[lane][0]
				l.waiting[lane] = l.waiting[lane][1:]
				break
			}
		}
		if ch == nil {
			return
		}
		l.inflight++
		close(ch)
	}
}

// slowSlack is how much slower than usual a call must be, besides
// Tolerance times, to count as slow.
const slowSlack = 0.1 // seconds

// LimiterStatus is a snapshot of a host's limiter.
type LimiterStatus struct {
	Limit    int
	InFlight int
	Waiting  int
}

func (l *limiter) status() LimiterStatus {
	if l == nil || l.cfg.Disabled {
		return LimiterStatus{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := 0
	for _, q := range l.waiting {
		w += len(q)
	}
	return LimiterStatus{Limit: int(l.limit), InFlight: l.inflight, Waiting: w}
}
