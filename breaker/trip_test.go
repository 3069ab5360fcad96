package breaker

import (
	"fmt"
	"testing"
	"time"
)

// Trip opens a closed breaker with its own base open time, which holds for
// the reopenings after failed probes; it probes and closes by itself; a
// trip rule afterwards uses OpenDuration again; and it leaves every other
// state alone.
func TestTrip(t *testing.T) {
	var changes []string
	b, clock := newTest(t, Settings{
		OpenDuration: time.Minute, MaxOpenDuration: 10 * time.Minute, TripDecay: -1,
		OnStateChange: func(_ string, from, to State) { changes = append(changes, fmt.Sprintf("%v->%v", from, to)) },
	})
	openFor := func() time.Duration {
		s := b.Snapshot()
		return s.NextProbeAt.Sub(s.OpenedAt)
	}
	if !b.Trip(5 * time.Second) {
		t.Fatal("Trip on a closed breaker did nothing")
	}
	wantState(t, b, StateOpen)
	if got := openFor(); got != 5*time.Second {
		t.Fatalf("open for %v, want the 5s base", got)
	}
	if b.Trip(5 * time.Second) {
		t.Fatal("Trip on an open breaker opened it again")
	}
	// A failed probe reopens it for 2 x the Trip's base, not OpenDuration.
	clock.Advance(5 * time.Second)
	wantState(t, b, StateHalfOpen)
	if b.Trip(5 * time.Second) {
		t.Fatal("Trip on a half-open breaker acted")
	}
	run(t, b, 1, failing)
	if got, trips := openFor(), b.Snapshot().Trips; got != 10*time.Second || trips != 2 {
		t.Fatalf("after a failed probe: open for %v with %d trips, want 10s and 2", got, trips)
	}
	// Then a successful probe closes it.
	clock.Advance(10 * time.Second)
	run(t, b, 1, succeed)
	wantState(t, b, StateClosed)
	// A trip rule now uses OpenDuration, times the trips (3rd).
	trip(t, b)
	if got := openFor(); got != 3*time.Minute {
		t.Fatalf("rule trip after a Trip: open for %v, want 3m", got)
	}
	clock.Advance(3 * time.Minute)
	run(t, b, 1, failing) // failed probe: OpenDuration still
	if got := openFor(); got != 4*time.Minute {
		t.Fatalf("failed probe after a rule trip: open for %v, want 4m", got)
	}
	want := "[closed->open open->half-open half-open->open open->half-open half-open->closed closed->open open->half-open half-open->open]"
	if got := fmt.Sprint(changes); got != want {
		t.Fatalf("changes\n got %v\nwant %s", got, want)
	}

	// Zero base means OpenDuration; the cap applies.
	b2, _ := newTest(t, Settings{OpenDuration: 7 * time.Second})
	b2.Trip(0)
	if s := b2.Snapshot(); s.NextProbeAt.Sub(s.OpenedAt) != 7*time.Second {
		t.Fatalf("Trip(0): open for %v, want OpenDuration", s.NextProbeAt.Sub(s.OpenedAt))
	}
	b3, _ := newTest(t, Settings{OpenDuration: time.Second, MaxOpenDuration: 3 * time.Second})
	b3.Trip(time.Hour)
	if s := b3.Snapshot(); s.NextProbeAt.Sub(s.OpenedAt) != 3*time.Second {
		t.Fatalf("Trip(1h): open for %v, want the 3s cap", s.NextProbeAt.Sub(s.OpenedAt))
	}

	// The manual states are the operator's.
	for _, manual := range []func(*Breaker){(*Breaker).Isolate, (*Breaker).Disable, (*Breaker).MetricsOnly} {
		m, _ := newTest(t, Settings{})
		manual(m)
		before := m.State()
		if m.Trip(time.Second) || m.State() != before {
			t.Fatalf("Trip changed a %v breaker to %v", before, m.State())
		}
	}
}
