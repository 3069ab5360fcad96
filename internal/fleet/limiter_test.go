package fleet

import (
	"context"
	"errors"
	"testing"
	"time"

	"fusebox/internal/enginetest"
)

func TestLimiterHandsFreedSlotsOutByLane(t *testing.T) {
	l := newLimiter(LimiterConfig{Initial: 2, Min: 1, Max: 2}, nil)
	ctx := context.Background()
	r1, _ := l.acquire(ctx, LaneStatus)
	r2, _ := l.acquire(ctx, LaneStatus)
	type admitted struct {
		lane    Lane
		release func(string, time.Duration, bool)
	}
	order := make(chan admitted, 3)
	// Logs first, then status, then launch: launch must still go first.
	for _, lane := range []Lane{LaneLogs, LaneStatus, LaneLaunch} {
		go func() {
			rel, err := l.acquire(ctx, lane)
			if err != nil {
				t.Error(err)
				return
			}
			order <- admitted{lane, rel} // it keeps its slot until the test releases it
		}()
		enginetest.Eventually(t, 10*time.Second, "an acquire waits in lane "+lane.String(), func() bool { return waitingIn(l, lane) > 0 })
	}
	if st := l.status(); st.InFlight != 2 || st.Waiting != 3 {
		t.Fatalf("status %+v", st)
	}
	next := func(want Lane) admitted {
		t.Helper()
		got := <-order
		if got.lane != want {
			t.Fatalf("the freed slot went to %v, want %v", got.lane, want)
		}
		return got
	}
	r1("op", time.Millisecond, false)
	launch := next(LaneLaunch)
	r2("op", time.Millisecond, false)
	next(LaneStatus)
	launch.release("op", time.Millisecond, false)
	next(LaneLogs)
}

func TestLimiterShrinksOnSlowCallsAndGrowsBack(t *testing.T) {
	l := newLimiter(LimiterConfig{Initial: 16, Min: 2, Max: 32}, nil)
	ctx := context.Background()
	call := func(d time.Duration, fault bool) {
		rel, err := l.acquire(ctx, LaneStatus)
		if err != nil {
			t.Fatal(err)
		}
		rel("container inspect", d, fault)
	}
	for range 20 {
		call(5*time.Millisecond, false) // the usual speed
	}
	grown := l.status().Limit
	if grown <= 16 {
		t.Fatalf("limit %d after fast calls, want it to grow past 16", grown)
	}
	for range 20 {
		call(500*time.Millisecond, false) // a hundred times slower
	}
	if got := l.status().Limit; got >= grown/4 {
		t.Fatalf("limit %d after slow calls (was %d): want it cut hard", got, grown)
	}
	for range 200 {
		call(time.Second, true) // host faults
	}
	if got := l.status().Limit; got != 2 {
		t.Fatalf("limit %d, want the floor 2", got)
	}
	// Jitter of a few ms on a busy machine is not slowness.
	l2 := newLimiter(LimiterConfig{Initial: 8}, nil)
	for range 50 {
		rel, _ := l2.acquire(ctx, LaneStatus)
		rel("container inspect", 2*time.Millisecond, false)
		rel, _ = l2.acquire(ctx, LaneStatus)
		rel("container inspect", 20*time.Millisecond, false)
	}
	if got := l2.status().Limit; got < 8 {
		t.Fatalf("limit %d: scheduling jitter cut it", got)
	}
}

func TestLimiterWaitEndsWithTheContext(t *testing.T) {
	l := newLimiter(LimiterConfig{Initial: 1, Min: 1, Max: 1}, nil)
	rel, _ := l.acquire(context.Background(), LaneLaunch)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := l.acquire(ctx, LaneLogs); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	if st := l.status(); st.Waiting != 0 || st.InFlight != 1 {
		t.Fatalf("a cancelled wait left %+v", st)
	}
	rel("op", time.Millisecond, false)
	if _, err := l.acquire(context.Background(), LaneLogs); err != nil {
		t.Fatal(err)
	}
}

func waitingIn(l *limiter, lane Lane) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.waiting[lane])
}

// A host whose calls are slow from its first one, far above the rest of
// the fleet's, has its limit cut: "usual" is the fleet's as well as its
// own. Alone, the same host would take its slowness as usual.
func TestLimiterCutsAHostSlowerThanTheFleet(t *testing.T) {
	fleetUsual := &usualLatency{}
	fast, slow := newLimiter(LimiterConfig{Initial: 16}, fleetUsual), newLimiter(LimiterConfig{Initial: 16}, fleetUsual)
	alone := newLimiter(LimiterConfig{Initial: 16}, nil)
	call := func(l *limiter, d time.Duration) {
		release, err := l.acquire(context.Background(), LaneStatus)
		if err != nil {
			t.Fatal(err)
		}
		release("container inspect", d, false)
	}
	for range 20 {
		call(fast, 2*time.Millisecond)
	}
	for range 20 {
		call(slow, 1500*time.Millisecond)
		call(alone, 1500*time.Millisecond)
	}
	if got := slow.status().Limit; got >= 16/2 {
		t.Errorf("limit of a host 750 times slower than the fleet: %d, want it cut below %d", got, 16/2)
	}
	if got := alone.status().Limit; got < 16 {
		t.Errorf("limit of a host that is its own only reference: %d, want it kept (its slowness is its usual)", got)
	}
	if got := fast.status().Limit; got < 16 {
		t.Errorf("limit of the fast host: %d, want it kept", got)
	}
}
