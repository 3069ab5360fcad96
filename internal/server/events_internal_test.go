package server

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/store"
	"fusebox/internal/store/sqlite"
)

// TestHostEvents: breaker transitions and state changes are stored in the
// order they came, and Stop stores what was pending.
func TestHostEvents(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fusebox.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h := newHostEvents(db, slog.New(slog.DiscardHandler))
	h.Stop() // before Start
	if err := h.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		h.breaker(fleet.Transition{Host: "h1", From: breaker.StateClosed, To: breaker.StateOpen, At: time.Now()})
		if i%10 == 0 {
			h.state("h1", fleet.HostHealthy, fleet.HostUnavailable, "breaker open")
		}
	}
	h.Stop()
	h.Stop()
	evs, err := db.EventList(t.Context(), store.EventListParams{Limit: 1000})
	if err != nil || len(evs) != 55 {
		t.Fatalf("stored %d events (%v), want 55", len(evs), err)
	}
	if evs[0].Type != event.TypeHostBreaker || evs[1].Type != event.TypeHostState || evs[0].Host != "h1" {
		t.Fatalf("first events %+v %+v", evs[0], evs[1])
	}
}
