package apitest

import (
	"context"
	"path/filepath"
	"testing"

	"fusebox/internal/api"
	"fusebox/internal/event"
	"fusebox/internal/store/sqlite"
)

// EventsAPI is the API serving the event stream of a real SQLite store and
// bus, wired as internal/server wires them, with the package's fake
// service and fleet behind the other routes.
type EventsAPI struct {
	DB  *sqlite.DB
	API *api.Server
}

// StartEvents opens a store in t's temporary directory, starts a bus fed by
// its commits, and builds the API over them with cfg. Everything is closed
// when t ends; the caller serves API.Handler() as it needs.
func StartEvents(t testing.TB, cfg api.Config) *EventsAPI {
	t.Helper()
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "fusebox.db"), sqlite.Options{Synchronous: "NORMAL"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bus := event.New(db, nil)
	db.SetEventHook(bus.Notify)
	if err := bus.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Stop)
	srv := api.New(cfg, NewService(), NewFleet(), nil, nil)
	srv.SetEvents(events{db, bus})
	return &EventsAPI{DB: db, API: srv}
}

// events adapts a store and a bus to api.Events.
type events struct {
	db  *sqlite.DB
	bus *event.Bus
}

func (e events) List(ctx context.Context, p event.ListParams) ([]event.Event, error) {
	return e.db.EventList(ctx, p)
}

func (e events) Subscribe(f event.Filter, after int64) api.EventSubscription {
	return e.bus.Subscribe(f, after)
}
