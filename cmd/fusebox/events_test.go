package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/event"
	"fusebox/internal/store/sqlite"
)

// eventsServer serves the API with the event stream of a real store.
func eventsServer(t *testing.T) (*sqlite.DB, map[string]string) {
	t.Helper()
	env := apitest.StartEvents(t, api.Config{})
	hs := httptest.NewServer(env.API.Handler())
	t.Cleanup(hs.Close)
	return env.DB, map[string]string{envServer: hs.URL}
}

func TestEventsCommand(t *testing.T) {
	db, env := eventsServer(t)
	for _, ev := range []event.Event{
		{Type: event.TypeJobTransition, JobID: "j1", Host: "h1", Attempt: 1,
			Data: event.MarshalData(event.JobTransition{From: "queued", To: "launching", Reason: "placed on h1"})},
		{Type: event.TypeHostBreaker, Host: "h2", Data: event.MarshalData(event.Breaker{Name: "h2", From: "closed", To: "open"})},
	} {
		ev.At = time.Now()
		if _, err := db.EventAppend(t.Context(), ev); err != nil {
			t.Fatal(err)
		}
	}
	r := cli(t, env, "events")
	wantCode(t, r, 0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "SEQ") ||
		!strings.Contains(lines[1], "queued -> launching (attempt 1): placed on h1") || !strings.Contains(lines[2], "closed -> open") {
		t.Fatalf("events:\n%s", r.stdout)
	}

	r = cli(t, env, "events", "--host", "h2", "-o", "json")
	wantCode(t, r, 0)
	var ev event.Event
	if err := json.Unmarshal([]byte(r.stdout), &ev); err != nil || ev.Seq != 2 || ev.Type != event.TypeHostBreaker {
		t.Fatalf("json: %v %s", err, r.stdout)
	}

	// -f follows: an event appended after the start is printed.
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		done <- execute(ctx, []string{"events", "-f", "--since", "2", "--type", event.TypeOperatorAction}, func(k string) string { return env[k] }, stdout, stderr)
	}()
	stdout.waitFor(t, "SEQ")
	if _, err := db.EventAppend(t.Context(), event.Event{At: time.Now(), Type: event.TypeOperatorAction, Host: "h1",
		Data: json.RawMessage(`{"action":"isolate","by":"ops","reason":"disk"}`)}); err != nil {
		t.Fatal(err)
	}
	if !stdout.waitFor(t, "action=isolate by=ops: disk") {
		t.Fatalf("follow printed:\n%s\n%s", stdout.String(), stderr.String())
	}
	cancel()
	<-done

	wantCode(t, cli(t, env, "events", "--since", "soon"), 1, `since "soon"`)
}
