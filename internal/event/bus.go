package event

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Defaults of the Bus.
const (
	// PageSize is how many events a subscription reads from the Source at
	// once: the most it holds in memory besides its channel.
	PageSize = 256
	// Buffer is the capacity of a subscription's channel.
	Buffer = 64
	// PollInterval is how often subscriptions look at the Source even if
	// Notify says nothing (events appended by another process, a missed
	// hook).
	PollInterval = time.Second
	// retryInterval is how long a subscription waits after a failed read.
	retryInterval = 200 * time.Millisecond
)

// FromNow, as Subscribe's afterSeq, starts a subscription at the newest
// event committed when it subscribes.
const FromNow int64 = -1

// Bus fans the event log out to subscribers. Each Subscription reads the
// log from the Source itself, from its own sequence number, whenever Notify
// (or the poll) says there may be more: a subscriber that does not read
// holds up only its own reader, and when it reads again it goes on where it
// stopped. Nothing is lost or repeated, and events arrive in Seq order.
//
// Start, Stop, Subscribe, Notify are safe for concurrent use.
type Bus struct {
	src Source
	log *slog.Logger

	mu      sync.Mutex
	last    int64         // the greatest Seq known committed
	wake    chan struct{} // closed (and replaced) when last grows or the poll ticks
	subs    map[*Subscription]struct{}
	started bool
	stopped bool
	cancel  context.CancelFunc // of the poll loop
	wg      sync.WaitGroup     // the poll loop and every subscription
}

// New returns a bus reading src; logger may be nil (no logging).
func New(src Source, logger *slog.Logger) *Bus {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Bus{src: src, log: logger, wake: make(chan struct{}), subs: make(map[*Subscription]struct{})}
}

// Start reads the newest sequence number (FromNow needs it) and starts the
// poll. It fails if the Source cannot be read, or if the bus was started or
// stopped before.
func (b *Bus) Start(ctx context.Context) error {
	last, err := b.src.EventLastSeq(ctx)
	if err != nil {
		return fmt.Errorf("event bus: start: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.started || b.stopped {
		return errors.New("event bus: start: already started or stopped")
	}
	b.started = true
	b.last = max(b.last, last)
	ctx, b.cancel = context.WithCancel(context.WithoutCancel(ctx))
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		t := time.NewTicker(PollInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				b.mu.Lock()
				b.broadcast()
				b.mu.Unlock()
			}
		}
	}()
	return nil
}

// Stop ends the poll and closes every subscription, and waits for their
// readers. Safe to call twice, and before Start.
func (b *Bus) Stop() {
	b.mu.Lock()
	b.stopped = true
	if b.cancel != nil {
		b.cancel()
	}
	for s := range b.subs {
		s.cancel()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

// Notify tells the bus that events up to seq are committed. It never
// blocks: it is the store's hook (store.Store.SetEventHook).
func (b *Bus) Notify(seq int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if seq > b.last {
		b.last = seq
		b.broadcast()
	}
}

// broadcast wakes every reader; b.mu is held.
func (b *Bus) broadcast() {
	close(b.wake)
	b.wake = make(chan struct{})
}

// state is the newest committed Seq and the channel closed when it grows.
func (b *Bus) state() (int64, <-chan struct{}) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.last, b.wake
}

// Subscribe starts a subscription to the events matching f with Seq greater
// than afterSeq (FromNow: the newest committed one). After Stop it returns a
// subscription whose channel is closed.
func (b *Bus) Subscribe(f Filter, afterSeq int64) *Subscription {
	ctx, cancel := context.WithCancel(context.Background())
	s := &Subscription{bus: b, filter: f, c: make(chan Event, Buffer), cancel: cancel}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		cancel()
		close(s.c)
		return s
	}
	if afterSeq == FromNow {
		afterSeq = b.last
	}
	b.subs[s] = struct{}{}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		defer close(s.c)
		s.run(ctx, max(afterSeq, 0))
	}()
	return s
}

// Subscription is one subscriber's view of the log.
type Subscription struct {
	bus    *Bus
	filter Filter
	c      chan Event
	cancel context.CancelFunc
	once   sync.Once
}

// C delivers the events, in Seq order. It is closed after Close and after
// the bus stops. A failed read of the Source is logged and retried.
func (s *Subscription) C() <-chan Event { return s.c }

// Close ends the subscription (unsubscribes). Safe to call twice.
func (s *Subscription) Close() {
	s.once.Do(func() {
		s.cancel()
		s.bus.mu.Lock()
		delete(s.bus.subs, s)
		s.bus.mu.Unlock()
	})
}

// run reads the log from after and sends what matches, until ctx ends.
// Its cursor moves only past what it has sent, or past what it has read
// and found not to match, so it never skips nor repeats.
func (s *Subscription) run(ctx context.Context, after int64) {
	defer s.Close()
	for ctx.Err() == nil {
		known, wake := s.bus.state()
		evs, err := s.bus.src.EventList(ctx, ListParams{AfterSeq: after, Filter: s.filter, Limit: PageSize})
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.bus.log.Warn("event subscription: read the log", "after", after, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryInterval):
			}
			continue
		}
		for _, ev := range evs {
			select {
			case s.c <- ev:
				after = ev.Seq
			case <-ctx.Done():
				return
			}
		}
		if len(evs) == PageSize {
			continue // there may be more already
		}
		// Everything up to known was committed before the read: what did
		// not match there never will.
		after = max(after, known)
		select {
		case <-wake:
		case <-ctx.Done():
			return
		}
	}
}
