package apiclient_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/apiclient"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
)

// TestEventsReconnect: connections cut while events keep coming are
// resumed with Last-Event-ID; the caller sees every event once, in order.
func TestEventsReconnect(t *testing.T) {
	env := apitest.StartEvents(t, api.Config{})
	db, srv := env.DB, env.API
	var conns atomic.Int32
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		srv.Handler().ServeHTTP(w, r)
	}))
	defer hs.Close()
	c := apiclient.New(hs.URL, "")

	appendOne := func() {
		if _, err := db.EventAppend(t.Context(), event.Event{At: time.Now(), Type: event.TypeHostState, Host: "h1"}); err != nil {
			t.Error(err)
		}
	}
	const n = 300
	var last atomic.Int64
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- c.Events(ctx, apiclient.EventsParams{Since: "0", Follow: true}, func(ev event.Event) error {
			if ev.Seq != last.Load()+1 {
				return errors.New("a gap or a repeat")
			}
			last.Store(ev.Seq)
			if ev.Seq == n {
				return errStop
			}
			return nil
		})
	}()
	for i := range n {
		appendOne()
		if i%50 == 25 {
			// Once the client has what was appended so far (so it is
			// connected), the connection drops mid-stream.
			enginetest.Eventually(t, 30*time.Second, fmt.Sprintf("the client has event %d", i+1), func() bool {
				return last.Load() >= int64(i+1)
			}, func() string { return fmt.Sprintf("the client has up to event %d", last.Load()) })
			hs.CloseClientConnections()
		}
	}
	if err := <-done; !errors.Is(err, errStop) {
		t.Fatalf("Events = %v after %d events, want errStop after %d", err, last.Load(), n)
	}
	if conns.Load() < 2 {
		t.Fatalf("%d connections: the test cut none", conns.Load())
	}

	// Without follow: what there is, then it returns.
	var got int
	if err := c.Events(ctx, apiclient.EventsParams{Since: "290"}, func(event.Event) error { got++; return nil }); err != nil || got != 10 {
		t.Fatalf("Events without follow: %d, %v; want 10", got, err)
	}
	// A bad parameter is not retried.
	if err := c.Events(ctx, apiclient.EventsParams{Since: "later"}, func(event.Event) error { return nil }); err == nil {
		t.Fatal("a bad since was accepted")
	}
}

var errStop = errors.New("stop")
