package api_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"fusebox/internal/api"
	"fusebox/internal/api/apitest"
	"fusebox/internal/event"
	"fusebox/internal/store/sqlite"
)

// eventsEnv serves the API over a real store and bus.
func eventsEnv(t *testing.T, cfg api.Config) (string, *sqlite.DB) {
	t.Helper()
	env := apitest.StartEvents(t, cfg)
	hs := httptest.NewServer(env.API.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, env.DB
}

func appendEvents(t *testing.T, db *sqlite.DB, n int, host string) {
	t.Helper()
	for range n {
		if _, err := db.EventAppend(context.Background(), event.Event{At: time.Now(), Type: event.TypeHostBreaker, Host: host,
			Data: event.MarshalData(event.Breaker{Name: host, From: "closed", To: "open"})}); err != nil {
			t.Error(err)
			return
		}
	}
}

// sse is one open GET /v1/events.
type sse struct {
	res *http.Response
	sc  *bufio.Scanner
}

func openSSE(t *testing.T, url string, header ...string) *sse {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, res.Header.Get("Content-Type"))
	}
	return &sse{res: res, sc: bufio.NewScanner(res.Body)}
}

// next returns the next event's id, type and data, or a comment (id -1),
// or ok false at the end of the stream.
func (s *sse) next(t *testing.T) (id int64, typ, data string, ok bool) {
	t.Helper()
	id = -1
	for s.sc.Scan() {
		line := s.sc.Text()
		switch {
		case line == "":
			if id >= 0 || typ != "" {
				return id, typ, data, true
			}
		case strings.HasPrefix(line, ":"):
			if id < 0 {
				return -1, "", strings.TrimSpace(line[1:]), true
			}
		case strings.HasPrefix(line, "id: "):
			id, _ = strconv.ParseInt(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			typ = line[7:]
		case strings.HasPrefix(line, "data: "):
			data = line[6:]
		}
	}
	return 0, "", "", false
}

// ids reads n events (skipping comments) and returns their ids.
func (s *sse) ids(t *testing.T, n int) []int64 {
	t.Helper()
	var out []int64
	for len(out) < n {
		id, typ, data, ok := s.next(t)
		if !ok {
			t.Fatalf("stream ended after %d events, want %d", len(out), n)
		}
		if id < 0 {
			continue
		}
		if typ != event.TypeHostBreaker || !strings.Contains(data, fmt.Sprintf(`"seq":%d`, id)) {
			t.Fatalf("event %d: type %q data %s", id, typ, data)
		}
		out = append(out, id)
	}
	return out
}

func consecutive(t *testing.T, ids []int64, from int64) {
	t.Helper()
	for i, id := range ids {
		if id != from+int64(i) {
			t.Fatalf("ids %v: want %d, %d, ... without a gap or a repeat", ids, from, from+1)
		}
	}
}

// TestEventsResume: a client that disconnects and reconnects with
// Last-Event-ID, while events keep coming, misses none and sees none twice.
func TestEventsResume(t *testing.T) {
	url, db := eventsEnv(t, api.Config{})
	appendEvents(t, db, 30, "h1")
	first := openSSE(t, url+"/v1/events?since=0")
	consecutive(t, first.ids(t, 10), 1)
	first.res.Body.Close() // the client goes away mid-stream

	done := make(chan struct{})
	go func() { defer close(done); appendEvents(t, db, 30, "h1") }()
	again := openSSE(t, url+"/v1/events", "Last-Event-ID", "10")
	consecutive(t, again.ids(t, 50), 11)
	<-done

	// ?since= resumes the same way; Last-Event-ID wins over it.
	consecutive(t, openSSE(t, url+"/v1/events?since=55").ids(t, 5), 56)
	consecutive(t, openSSE(t, url+"/v1/events?since=3", "Last-Event-ID", "57").ids(t, 3), 58)
}

// TestEventsFilters: type, host, follow=false with its end, a follow from
// now, and bad parameters.
func TestEventsFilters(t *testing.T) {
	url, db := eventsEnv(t, api.Config{})
	appendEvents(t, db, 3, "h1")
	appendEvents(t, db, 2, "h2")
	if _, err := db.EventAppend(t.Context(), event.Event{At: time.Now(), Type: event.TypeOperatorAction, Host: "h2"}); err != nil {
		t.Fatal(err)
	}
	read := func(query string) (ids []int64) {
		t.Helper()
		s := openSSE(t, url+"/v1/events?follow=false&"+query)
		for {
			id, _, data, ok := s.next(t)
			if !ok {
				t.Fatalf("%s: stream ended without its end comment", query)
			}
			if id < 0 && data == "end" {
				return ids
			}
			if id >= 0 {
				ids = append(ids, id)
			}
		}
	}
	for q, want := range map[string]string{
		"":                                  "[1 2 3 4 5 6]",
		"host=h2":                           "[4 5 6]",
		"type=operator.action":              "[6]",
		"type=host.breaker&host=h2":         "[4 5]",
		"type=operator.action,host.breaker": "[1 2 3 4 5 6]",
		"type=operator.action&type=x":       "[6]",
		"since=4":                           "[5 6]",
		"since=1h&host=h1":                  "[1 2 3]",
		"job=nope":                          "[]",
	} {
		if got := fmt.Sprint(read(q)); got != want {
			t.Errorf("%s: ids %s, want %s", q, got, want)
		}
	}

	now := openSSE(t, url+"/v1/events?host=h1") // from now
	appendEvents(t, db, 1, "h2")
	appendEvents(t, db, 1, "h1")
	if ids := now.ids(t, 1); ids[0] != 8 {
		t.Fatalf("a follow from now got %v first, want 8", ids)
	}

	for _, q := range []string{"since=yesterday", "follow=maybe", "color=red"} {
		r := do(t, "GET", url+"/v1/events?"+q, "")
		wantStatus(t, r, 400, api.CodeInvalid)
	}
	r := do(t, "GET", url+"/v1/events", "", "Last-Event-ID", "x")
	wantStatus(t, r, 400, api.CodeInvalid)
}

// TestEventsHeartbeat: an idle stream gets comment lines.
func TestEventsHeartbeat(t *testing.T) {
	url, _ := eventsEnv(t, api.Config{EventHeartbeat: 20 * time.Millisecond})
	s := openSSE(t, url+"/v1/events")
	for beats := 0; beats < 2; {
		id, _, data, ok := s.next(t)
		if !ok || id >= 0 {
			t.Fatalf("idle stream: ok %v id %d", ok, id)
		}
		if data == "heartbeat" {
			beats++
		}
	}
}

// TestEventsDisabled: a server without SetEvents answers 404.
func TestEventsDisabled(t *testing.T) {
	srv := httptest.NewServer(api.New(api.Config{}, apitest.NewService(), apitest.NewFleet(), nil, nil).Handler())
	defer srv.Close()
	wantStatus(t, do(t, "GET", srv.URL+"/v1/events", ""), 404, api.CodeNoRoute)
}
