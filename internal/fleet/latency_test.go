package fleet

import (
	"testing"
	"time"
)

func TestCallLatencyQuantiles(t *testing.T) {
	var l latencies
	if got := l.status(); got != (CallLatency{}) {
		t.Fatalf("no calls: %+v, want zero", got)
	}
	for i := 1; i <= 100; i++ {
		l.record(time.Duration(i) * time.Millisecond)
	}
	if got, want := l.status(), (CallLatency{P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Samples: 100}); got != want {
		t.Errorf("1..100 ms: %+v, want %+v", got, want)
	}
	// Only the last latencySamples calls count: a host that was slow and
	// is fast again shows it once the slow calls have rolled out.
	for range latencySamples {
		l.record(2 * time.Millisecond)
	}
	if got, want := l.status(), (CallLatency{P50: 2 * time.Millisecond, P99: 2 * time.Millisecond, Samples: latencySamples}); got != want {
		t.Errorf("after %d fast calls: %+v, want %+v", latencySamples, got, want)
	}
	var none *latencies
	if got := none.status(); got != (CallLatency{}) {
		t.Errorf("nil: %+v", got)
	}
}
