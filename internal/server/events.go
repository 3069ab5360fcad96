package server

import (
	"context"
	"fusebox/breaker"
	"log/slog"
	"sync"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/store"
)

// eventsView adapts the store and the event bus to the API's Events.
type eventsView struct {
	st  store.Store
	bus *event.Bus
}

func (v eventsView) List(ctx context.Context, p event.ListParams) ([]event.Event, error) {
	return v.st.EventList(ctx, p)
}

func (v eventsView) Subscribe(f event.Filter, afterSeq int64) api.EventSubscription {
	return v.bus.Subscribe(f, afterSeq)
}

// maxPendingEvents bounds the events of hosts waiting to be appended; past
// it (a store that has stopped answering) the newest are dropped, logged.
const maxPendingEvents = 10000

// hostEvents appends the events of hosts (breaker transitions, state
// changes) to the store. Add never blocks: the breaker calls it under its
// own lock, and a store write must not hold a breaker up. One goroutine
// appends them in order.
type hostEvents struct {
	st  store.Store
	log *slog.Logger

	mu      sync.Mutex
	pending []event.Event
	wake    chan struct{} // cap 1
	done    chan struct{} // closed when the loop ends
	cancel  context.CancelFunc
}

func newHostEvents(st store.Store, log *slog.Logger) *hostEvents {
	return &hostEvents{st: st, log: log, wake: make(chan struct{}, 1)}
}

// breaker is the fleet listener: a breaker transition of a host.
func (h *hostEvents) breaker(t fleet.Transition) {
	h.add(event.Event{At: t.At, Type: event.TypeHostBreaker, Host: t.Host,
		Data: event.MarshalData(event.Breaker{Name: t.Host, From: t.From.String(), To: t.To.String()})})
}

// named records a transition of a breaker other than a host's (a
// workflow's).
func (h *hostEvents) named(name string, from, to breaker.State) {
	h.add(event.Event{At: time.Now(), Type: event.TypeBreaker,
		Data: event.MarshalData(event.Breaker{Name: name, From: from.String(), To: to.String()})})
}

// state records a host's state change.
func (h *hostEvents) state(host string, from, to fleet.HostState, reason string) {
	h.add(event.Event{At: time.Now(), Type: event.TypeHostState, Host: host,
		Data: event.MarshalData(map[string]string{"from": string(from), "to": string(to), "reason": reason})})
}

// degradation records the modes of graceful degradation now in force on a
// host (none: it ended).
func (h *hostEvents) degradation(host string, modes []string, reason string) {
	if modes == nil {
		modes = []string{}
	}
	h.add(event.Event{At: time.Now(), Type: event.TypeHostDegradation, Host: host,
		Data: event.MarshalData(map[string]any{"modes": modes, "reason": reason})})
}

func (h *hostEvents) add(ev event.Event) {
	h.mu.Lock()
	if len(h.pending) >= maxPendingEvents {
		h.mu.Unlock()
		h.log.Error("events: too many host events waiting for the store; dropped one", "type", ev.Type, "host", ev.Host)
		return
	}
	h.pending = append(h.pending, ev)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Start starts the loop that appends; Stop ends it after appending what is
// pending (within a few seconds). Stop is safe twice and before Start.
func (h *hostEvents) Start(ctx context.Context) error {
	ctx, h.cancel = context.WithCancel(context.WithoutCancel(ctx))
	h.done = make(chan struct{})
	go func() {
		defer close(h.done)
		for {
			select {
			case <-ctx.Done():
				fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				h.flush(fctx)
				cancel()
				return
			case <-h.wake:
				h.flush(ctx)
			}
		}
	}()
	return nil
}

func (h *hostEvents) Stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	<-h.done
}

// flush appends the pending events in order; one that fails is retried
// until ctx ends.
func (h *hostEvents) flush(ctx context.Context) {
	for {
		h.mu.Lock()
		if len(h.pending) == 0 {
			h.mu.Unlock()
			return
		}
		ev := h.pending[0]
		h.mu.Unlock()
		if _, err := h.st.EventAppend(ctx, ev); err != nil {
			if ctx.Err() != nil {
				h.log.Warn("events: host events not stored at shutdown", "err", err)
				return
			}
			h.log.Warn("events: append a host event", "type", ev.Type, "host", ev.Host, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		h.mu.Lock()
		h.pending = h.pending[1:]
		h.mu.Unlock()
	}
}
