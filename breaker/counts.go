package breaker

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Counts are the numbers of calls a breaker has seen.
type Counts struct {
	// Requests is the number of admitted calls that have reported:
	// Successes + Failures + Ignored. Calls still in flight are not counted.
	Requests  uint64
	Successes uint64
	Failures  uint64
	Ignored   uint64
	// Slow is the number of successes and failures that took longer than
	// SlowCallDuration (they are also counted as successes or failures).
	Slow uint64
	// Rejected is the number of calls refused with an *OpenError.
	Rejected uint64
}

// kind indexes the counters of a tally or bucket.
type kind int

const (
	kSuccess kind = iota
	kFailure
	kIgnored
	kSlow
	kRejected
	numKinds
)

// kindOf maps an outcome to its counter.
func kindOf(o Outcome) kind {
	switch o {
	case Success:
		return kSuccess
	case Failure:
		return kFailure
	default:
		return kIgnored
	}
}

// tally is a set of counters updated with atomic adds.
type tally [numKinds]atomic.Uint64

// striped is a tally split over several cache lines, so that goroutines
// counting at the same time on different cores do not fight over one line:
// a shared counter costs the closed-state success path more than all the
// rest of it. Each goroutine adds to the stripe picked by a hash of its
// stack address; reads add the stripes up.
//
// Two goroutines can hash to the same stripe and, if they run at the same
// time for long, fight over it (3x slower in a benchmark), and stack
// addresses are reused, so the same pair can collide again and again. So
// one add in checkEvery per counter looks whether another goroutine is adding
// to the same stripe right then, and if so changes the salt of the hash,
// which deals the stripes out afresh (Java's LongAdder rehashes a thread on
// contention in the same spirit). Sampling keeps the check off the fast path
// and bounds how often the salt, read by every add, is written.
type striped struct {
	cells []cell
	salt  atomic.Uint64 // changed when goroutines are seen sharing a stripe
	shift uint8         // 64 - log2(len(cells)): keep the top bits of the hash
}

type cell struct {
	n tally
	_ [128 - 8*numKinds]byte // two cache lines: adjacent-line prefetch shares pairs
}

const checkEvery = 1 << 16

// init makes about four stripes per processor (so that goroutines running
// at once rarely share one), at most 32: 4 KiB per breaker.
func (s *striped) init() {
	n, bits := 1, uint8(0)
	for n < 4*runtime.GOMAXPROCS(0) && n < 32 {
		n *= 2
		bits++
	}
	s.cells = make([]cell, n)
	s.shift = 64 - bits
}

func (s *striped) add(k kind) {
	c := &s.cells[stripe(s.salt.Load())>>s.shift].n[k]
	// If the counter moved between this add and the load after it, another
	// goroutine is counting into the same stripe at the same time.
	if v := c.Add(1); v%checkEvery == 0 && c.Load() != v {
		s.salt.Add(1)
	}
}

func (s *striped) load() (v [numKinds]uint64) {
	for i := range s.cells {
		for k := range v {
			v[k] += s.cells[i].n[k].Load()
		}
	}
	return v
}

// stripe returns a hash that is, cheaply, mostly different for goroutines
// running at the same time: the address of a local variable, which lives on
// the calling goroutine's stack, plus a salt, times the golden ratio
// (Fibonacci hashing: the top bits spread neighbouring stacks apart).
// Callers keep the top bits. It is only a hint for spreading counters: a
// collision costs speed, never correctness. (math/rand/v2 would do too, at
// several times the cost.)
func stripe(salt uint64) uint64 {
	var x byte
	// Stacks start 2 KiB apart: drop the bits below that.
	return (uint64(uintptr(unsafe.Pointer(&x))>>11) + salt) * 0x9E3779B97F4A7C15
}

// epoch holds the counts of one generation: striped counters of its own
// and, when a rate rule is on, a rolling window of its own. Every state
// change starts a fresh epoch (setState), published before the new state
// word. A report checks that the current epoch is its call's generation and
// then adds to that epoch, not to whatever is current by the time it adds:
// if the state changes between the check and the add, the add lands in the
// retired epoch, and the new state's counts never see it. So a call reports
// into the state it started in, or nowhere, with no lock and no second
// check. Epochs are never reused; a retired one is dropped once no report
// holds it.
type epoch struct {
	gen uint64
	n   striped
	win *window // nil unless a rate rule is on
}

func newEpoch(gen uint64, s *Settings) *epoch {
	e := &epoch{gen: gen}
	e.n.init()
	if s.rateRules() {
		e.win = newWindow(int64(s.Window), int64(s.WindowBuckets))
	}
	return e
}

// count adds one to a counter of the epoch and, if there is one, of its
// window.
func (e *epoch) count(k kind, now int64) {
	e.n.add(k)
	if e.win != nil {
		e.win.add(now, k)
	}
}

// countsOf turns raw counter values into Counts.
func countsOf(v [numKinds]uint64) Counts {
	return Counts{
		Requests:  v[kSuccess] + v[kFailure] + v[kIgnored],
		Successes: v[kSuccess],
		Failures:  v[kFailure],
		Ignored:   v[kIgnored],
		Slow:      v[kSlow],
		Rejected:  v[kRejected],
	}
}

// addTo adds v to acc, counter by counter.
func addTo(acc *[numKinds]uint64, v [numKinds]uint64) {
	for i := range v {
		acc[i] += v[i]
	}
}

// window is the rolling window of the rate rules: a ring of buckets, each
// covering width nanoseconds of breaker time. A bucket is stamped with the
// index (now/width) of the period it counts; a bucket whose stamp is not the
// current index is stale and is zeroed before reuse. The window holds the
// buckets stamped within the last len(buckets) periods.
//
// Updates are lock-free atomic adds. Only rolling a bucket over (once per
// bucket period) takes the mutex. Each epoch has a window of its own, so a
// state change starts with an empty one. A call that
// reads the stamp just before its bucket is rolled over may land its count
// in the new period; that moment's imprecision is accepted for a lock-free
// hot path.
type window struct {
	width   int64
	mu      sync.Mutex
	buckets []bucket
}

type bucket struct {
	stamp atomic.Int64
	n     tally
	_     [64 - 8 - 8*numKinds]byte // one cache line per bucket
}

func newWindow(size, buckets int64) *window {
	w := &window{width: size / buckets, buckets: make([]bucket, buckets)}
	for i := range w.buckets {
		w.buckets[i].stamp.Store(math.MinInt64) // stale: never within a window
	}
	return w
}

func (w *window) add(now int64, k kind) {
	idx := now / w.width
	b := &w.buckets[idx%int64(len(w.buckets))]
	if b.stamp.Load() != idx {
		w.roll(b, idx)
	}
	b.n[k].Add(1)
}

// roll zeroes a stale bucket and stamps it with idx.
func (w *window) roll(b *bucket, idx int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if s := b.stamp.Load(); s >= idx {
		return // another call rolled it (or the clock went back)
	}
	for i := range b.n {
		b.n[i].Store(0)
	}
	b.stamp.Store(idx)
}

// sum adds up the buckets within the window ending at now.
func (w *window) sum(now int64) (v [numKinds]uint64) {
	idx := now / w.width
	oldest := idx - int64(len(w.buckets)) + 1
	for i := range w.buckets {
		b := &w.buckets[i]
		if s := b.stamp.Load(); s >= oldest && s <= idx {
			for k := range v {
				v[k] += b.n[k].Load()
			}
		}
	}
	return v
}
