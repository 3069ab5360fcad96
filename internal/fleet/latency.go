package fleet

import (
	"slices"
	"sync"
	"time"
)

// latencySamples is how many recent Docker calls a host's call latency
// quantiles are computed from.
const latencySamples = 512

// latencies keeps the durations of a host's last latencySamples Docker
// calls (those that pass its call limiter: not health-check pings and not
// streams), for the p50/p99 its status shows.
type latencies struct {
	mu   sync.Mutex
	ring [latencySamples]time.Duration
	n    int // samples recorded, up to latencySamples
	next int
}

func (l *latencies) record(d time.Duration) {
	l.mu.Lock()
	l.ring[l.next] = d
	l.next = (l.next + 1) % latencySamples
	l.n = min(l.n+1, latencySamples)
	l.mu.Unlock()
}

// CallLatency is the latency of a host's recent Docker calls.
type CallLatency struct {
	P50     time.Duration
	P99     time.Duration
	Samples int // calls the quantiles are taken over (the last 512 at most)
}

func (l *latencies) status() CallLatency {
	if l == nil {
		return CallLatency{}
	}
	l.mu.Lock()
	s := slices.Clone(l.ring[:l.n])
	l.mu.Unlock()
	if len(s) == 0 {
		return CallLatency{}
	}
	slices.Sort(s)
	return CallLatency{P50: quantile(s, 0.50), P99: quantile(s, 0.99), Samples: len(s)}
}

// quantile returns the q-quantile of sorted s, nearest rank.
func quantile(s []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(s))+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}
