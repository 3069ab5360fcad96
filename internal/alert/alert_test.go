package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/breaker"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/store/sqlite"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// env is a real SQLite store with a real event bus over it.
type env struct {
	db  *sqlite.DB
	bus *event.Bus
	src *fakeSource
}

func newEnv(t testing.TB) *env {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "fusebox.db"))
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	bus := event.New(db, nil)
	db.SetEventHook(bus.Notify)
	if err := bus.Start(context.Background()); err != nil {
		t.Fatalf("bus.Start: %v", err)
	}
	t.Cleanup(func() { bus.Stop(); db.Close() })
	return &env{db: db, bus: bus, src: &fakeSource{}}
}

// busEvents adapts *event.Bus to Events, as the server does.
type busEvents struct{ b *event.Bus }

func (e busEvents) Subscribe(f event.Filter, after int64) Subscription {
	return e.b.Subscribe(f, after)
}

// fakeSource is a Snapshot the test sets.
type fakeSource struct {
	mu   sync.Mutex
	snap Snapshot
	err  error
}

func (s *fakeSource) Snapshot(context.Context) (Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Snapshot{Hosts: slices.Clone(s.snap.Hosts), Queued: s.snap.Queued, MaxQueued: s.snap.MaxQueued}, s.err
}

func (s *fakeSource) set(snap Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
}

// hosts is a snapshot of healthy hosts, but those named in open, whose
// breaker is open.
func hosts(names []string, open ...string) Snapshot {
	var snap Snapshot
	for _, n := range names {
		h := HostSnapshot{Name: n, State: fleet.HostHealthy, Breaker: breaker.StateClosed}
		if slices.Contains(open, n) {
			h.State, h.Breaker = fleet.HostUnavailable, breaker.StateOpen
		}
		snap.Hosts = append(snap.Hosts, h)
	}
	return snap
}

// start makes and starts a Manager on e with receivers rs; it stops when t
// ends.
func (e *env) start(t testing.TB, opt Options, rs ...Receiver) *Manager {
	t.Helper()
	m := e.manager(t, opt, rs...)
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return m
}

func (e *env) manager(t testing.TB, opt Options, rs ...Receiver) *Manager {
	t.Helper()
	opt.Receivers = rs
	if opt.EvalInterval == 0 {
		opt.EvalInterval = 20 * time.Millisecond
	}
	if opt.Backoff == 0 {
		opt.Backoff, opt.MaxBackoff = 5*time.Millisecond, 20*time.Millisecond
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	m, err := New(e.db, e.src, busEvents{e.bus}, opt)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(m.Stop)
	return m
}

// countObserver counts what it is told.
type countObserver struct {
	mu         sync.Mutex
	ok, failed int
	pending    map[string]int
}

func (o *countObserver) Delivered(receiver string, ok bool, d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if ok {
		o.ok++
	} else {
		o.failed++
	}
}

func (o *countObserver) Pending(receiver string, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.pending == nil {
		o.pending = map[string]int{}
	}
	o.pending[receiver] = n
}

// tlog writes a Manager's log to the test's.
type tlog struct{ t testing.TB }

func (l tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// delivery is one request a receiver got.
type delivery struct {
	id, status string // webhook-id, the body's status
	answered   int    // the HTTP status answered
	msg        Message
	raw        []byte
	verr       error // Verify's verdict
	header     http.Header
}

// sink is a webhook receiver: it verifies every request and answers with
// what answer says (200 when nil); down drops the connection unanswered.
type sink struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(n int) int // n: requests so far, this one included
	down   bool
}

func newSink(t testing.TB) *sink {
	s := &sink{t: t}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *sink) serve(w http.ResponseWriter, r *http.Request) {
	body := make([]byte, 0, 1024)
	buf := make([]byte, 4096)
	for {
		n, err := r.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	s.mu.Lock()
	if s.down {
		s.mu.Unlock()
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	d := delivery{id: r.Header.Get(HeaderID), raw: body, header: r.Header.Clone(), verr: Verify(testSecret, r.Header, body, 0)}
	if err := json.Unmarshal(body, &d.msg); err != nil {
		s.t.Errorf("body is not JSON: %v: %s", err, body)
	}
	d.status = d.msg.Status
	d.answered = http.StatusOK
	if s.answer != nil {
		d.answered = s.answer(len(s.got) + 1)
	}
	s.got = append(s.got, d)
	s.mu.Unlock()
	w.WriteHeader(d.answered)
}

func (s *sink) setDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// all returns every request so far.
func (s *sink) all() []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// ok returns the requests answered 2xx.
func (s *sink) ok() []delivery {
	var out []delivery
	for _, d := range s.all() {
		if d.answered/100 == 2 {
			out = append(out, d)
		}
	}
	return out
}

func (s *sink) receiver(name string) Receiver {
	return Receiver{Name: name, URL: s.srv.URL + "/hook", Secret: testSecret}
}

// what is "alertname host status" of a delivery's one alert.
func what(d delivery) string {
	if len(d.msg.Alerts) != 1 {
		return fmt.Sprintf("%d alerts", len(d.msg.Alerts))
	}
	a := d.msg.Alerts[0]
	return strings.Join(slices.DeleteFunc([]string{a.Labels[LabelAlertName], a.Labels[LabelHost] + a.Labels[LabelJobID], a.Status},
		func(s string) bool { return s == "" }), " ")
}

func whats(ds []delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = what(d)
	}
	return out
}

// checkOncePerID fails if a webhook-id was answered 2xx twice, or if the
// requests interleave ids (a notice sent before the one before it was
// delivered).
func checkOncePerID(t *testing.T, s *sink) {
	t.Helper()
	seen := map[string]bool{}
	var order []string
	for _, d := range s.all() {
		if len(order) == 0 || order[len(order)-1] != d.id {
			if slices.Contains(order, d.id) {
				t.Fatalf("webhook-id %s sent again after a later one: requests %v", d.id, order)
			}
			order = append(order, d.id)
		}
		if d.answered/100 == 2 {
			if seen[d.id] {
				t.Fatalf("webhook-id %s delivered twice", d.id)
			}
			seen[d.id] = true
		}
	}
}

// TestBreakerOpenFiresAndResolves: an open breaker sends a signed firing
// alert in Alertmanager's format, closing it the matching resolved; each
// delivery is an alert.delivery event.
func TestBreakerOpenFiresAndResolves(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	e.src.set(hosts([]string{"h1", "h2"}, "h1"))
	e.start(t, Options{ExternalURL: "https://fusebox.example:7070"}, s.receiver("ops"))

	enginetest.Eventually(t, 15*time.Second, "the firing alert", func() bool { return len(s.ok()) == 1 })
	d := s.ok()[0]
	if d.verr != nil {
		t.Fatalf("Verify: %v", d.verr)
	}
	if got := what(d); got != "FuseboxBreakerOpen h1 firing" {
		t.Fatalf("first delivery %q", got)
	}
	if h := d.header; h.Get("Content-Type") != "application/json" || h.Get("User-Agent") != "fusebox" ||
		!strings.HasPrefix(h.Get(HeaderID), "msg_") || !strings.HasPrefix(h.Get(HeaderSignature), "v1,") {
		t.Fatalf("headers %v", h)
	}
	if !verifyLikeDoc(testSecret, d.header, d.raw) {
		t.Fatal("the verification example of doc.go refuses a delivery")
	}
	a := d.msg.Alerts[0]
	wantLabels := map[string]string{"alertname": "FuseboxBreakerOpen", "host": "h1", "severity": "warning"}
	if d.msg.Version != "4" || d.msg.Receiver != "ops" || d.msg.Status != "firing" || !maps.Equal(d.msg.GroupLabels, wantLabels) ||
		!maps.Equal(d.msg.CommonLabels, wantLabels) || !maps.Equal(a.Labels, wantLabels) || a.Fingerprint != "f7fe291fbe5635ac" ||
		a.Annotations["summary"] == "" || !strings.Contains(a.Annotations["description"], "fusebox hosts") ||
		d.msg.ExternalURL != "https://fusebox.example:7070" || a.GeneratorURL != "https://fusebox.example:7070/v1/hosts/h1" ||
		d.msg.GroupKey != `{}:{alertname="FuseboxBreakerOpen", host="h1", severity="warning"}` {
		t.Fatalf("firing message %+v", d.msg)
	}
	for _, key := range []string{`"version":"4"`, `"truncatedAlerts":0`, `"endsAt":"0001-01-01T00:00:00Z"`, `"commonAnnotations":{`, `"generatorURL":`} {
		if !strings.Contains(string(d.raw), key) {
			t.Errorf("body lacks %s: %s", key, d.raw)
		}
	}

	e.src.set(hosts([]string{"h1", "h2"}))
	enginetest.Eventually(t, 15*time.Second, "the resolved alert", func() bool { return len(s.ok()) == 2 })
	enginetest.Eventually(t, 15*time.Second, "two alert.delivery events", func() bool {
		evs, _ := e.db.EventList(t.Context(), store.EventListParams{Filter: event.Filter{Types: []string{event.TypeAlertDelivery}}})
		return len(evs) == 2
	})
	r := s.ok()[1]
	if what(r) != "FuseboxBreakerOpen h1 resolved" || r.verr != nil || r.msg.Alerts[0].Fingerprint != a.Fingerprint ||
		!r.msg.Alerts[0].StartsAt.Equal(a.StartsAt) || r.msg.Alerts[0].EndsAt.Before(a.StartsAt) || r.id == d.id {
		t.Fatalf("resolved delivery %q (verify %v) %+v", what(r), r.verr, r.msg)
	}

	evs, err := e.db.EventList(t.Context(), store.EventListParams{Filter: event.Filter{Types: []string{event.TypeAlertDelivery}}})
	if err != nil || len(evs) != 2 {
		t.Fatalf("alert.delivery events %+v, %v; want 2", evs, err)
	}
	var ad event.AlertDelivery
	if err := json.Unmarshal(evs[1].Data, &ad); err != nil || ad.Receiver != "ops" || ad.WebhookID != r.id || ad.Status != "resolved" ||
		!slices.Equal(ad.Alerts, []string{NameBreakerOpen}) || ad.Attempts != 1 {
		t.Fatalf("alert.delivery data %s (%+v, %v)", evs[1].Data, ad, err)
	}
	if n := len(s.all()); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}

// TestEventWakesEvaluator: with a long EvalInterval, an event (a breaker
// transition) makes the evaluator look at once.
func TestEventWakesEvaluator(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	e.src.set(hosts([]string{"h1", "h9"}))
	e.start(t, Options{EvalInterval: time.Hour}, s.receiver("ops"))
	e.src.set(hosts([]string{"h1", "h9"}, "h1"))
	if _, err := e.db.EventAppend(t.Context(), event.Event{At: time.Now(), Type: event.TypeHostBreaker, Host: "h1",
		Data: event.MarshalData(event.Breaker{Name: "host h1", From: "closed", To: "open"})}); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, 15*time.Second, "the firing alert", func() bool { return len(s.ok()) == 1 })
	if got := what(s.ok()[0]); got != "FuseboxBreakerOpen h1 firing" {
		t.Fatalf("delivery %q", got)
	}
}

// TestRetriedInOrder: a receiver that fails (500) the first attempts gets
// every notice once delivered, in order, after retries through its breaker.
func TestRetriedInOrder(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	s.answer = func(n int) int {
		if n <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	}
	obs := &countObserver{}
	m := e.manager(t, Options{Observer: obs, Breaker: breaker.Settings{ConsecutiveFailures: 2, OpenDuration: 30 * time.Millisecond, Jitter: -1}},
		s.receiver("ops"))
	names := []string{"h1", "h2", "h9"} // h9 stays healthy: no FuseboxAllHostsOut
	e.src.set(hosts(names, "h1"))
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	states := func(want int) func() bool {
		return func() bool { ss, _ := e.db.AlertStates(t.Context()); return len(ss) == want }
	}
	enginetest.Eventually(t, 15*time.Second, "h1 firing stored", states(1))
	e.src.set(hosts(names, "h1", "h2"))
	enginetest.Eventually(t, 15*time.Second, "h2 firing stored", states(2))
	e.src.set(hosts(names, "h2"))

	enginetest.Eventually(t, 15*time.Second, "three deliveries", func() bool { return len(s.ok()) == 3 })
	want := []string{"FuseboxBreakerOpen h1 firing", "FuseboxBreakerOpen h2 firing", "FuseboxBreakerOpen h1 resolved"}
	if got := whats(s.ok()); !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	all := s.all()
	if len(all) < 6 || all[0].id != all[1].id || all[0].id != all[2].id || all[3].id != all[0].id {
		t.Fatalf("requests %q: want the first notice tried 4 times", whats(all))
	}
	checkOncePerID(t, s)
	var evs []event.Event
	enginetest.Eventually(t, 15*time.Second, "three alert.delivery events", func() bool {
		evs, _ = e.db.EventList(t.Context(), store.EventListParams{Filter: event.Filter{Types: []string{event.TypeAlertDelivery}}})
		return len(evs) == 3
	})
	var ad event.AlertDelivery
	if len(evs) != 3 || json.Unmarshal(evs[0].Data, &ad) != nil || ad.Attempts != 4 {
		t.Fatalf("first alert.delivery %s; want attempts 4", evs[0].Data)
	}
	enginetest.Eventually(t, 15*time.Second, "the observer", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.ok == 3 && obs.failed == 3 && obs.pending["ops"] == 0
	})
	rs, err := m.Receivers(t.Context())
	if err != nil || len(rs) != 1 || rs[0].Pending != 0 || !strings.HasPrefix(rs[0].LastError, "HTTP 500") ||
		rs[0].LastDeliveredAt.IsZero() || rs[0].LastErrorAt.IsZero() || rs[0].Name != "ops" {
		t.Fatalf("Receivers = %+v, %v", rs, err)
	}
}

// TestRestartDeliversPending: with the receiver down, notices wait; a new
// Manager on the same store (after Stop) delivers all of them, and the
// resolve that happened while none ran, in order, each webhook-id once, and
// does not fire again what was firing.
func TestRestartDeliversPending(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	s.setDown(true)
	m1 := e.start(t, Options{}, s.receiver("ops"))
	states := func(fps ...string) func() bool {
		return func() bool {
			ss, _ := e.db.AlertStates(t.Context())
			var got []string
			for _, st := range ss {
				got = append(got, st.Labels[LabelHost]+" "+st.Status)
			}
			slices.Sort(got)
			return slices.Equal(got, fps)
		}
	}
	names := []string{"h1", "h2", "h9"}
	e.src.set(hosts(names, "h1"))
	enginetest.Eventually(t, 15*time.Second, "h1 firing", states("h1 firing"))
	e.src.set(hosts(names))
	enginetest.Eventually(t, 15*time.Second, "h1 resolved", states("h1 resolved"))
	e.src.set(hosts(names, "h2"))
	enginetest.Eventually(t, 15*time.Second, "h2 firing", states("h1 resolved", "h2 firing"))
	enginetest.Eventually(t, 15*time.Second, "a failed attempt", func() bool {
		st, _ := e.db.AlertReceiverStats(t.Context())
		return len(st) == 1 && st[0].Pending == 3 && st[0].LastError != ""
	})
	m1.Stop()
	if len(s.ok()) != 0 {
		t.Fatalf("delivered while down: %q", whats(s.ok()))
	}

	e.src.set(hosts(names)) // h2 recovers while no Manager runs
	s.setDown(false)
	e.start(t, Options{}, s.receiver("ops"))
	enginetest.Eventually(t, 15*time.Second, "four deliveries", func() bool { return len(s.ok()) == 4 })
	want := []string{"FuseboxBreakerOpen h1 firing", "FuseboxBreakerOpen h1 resolved", "FuseboxBreakerOpen h2 firing", "FuseboxBreakerOpen h2 resolved"}
	if got := whats(s.ok()); !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	checkOncePerID(t, s)
	for _, d := range s.ok() {
		if d.verr != nil {
			t.Fatalf("Verify %s: %v", d.id, d.verr)
		}
	}
}

// TestDeadReceiverHoldsUpOnlyItself: a receiver that never answers does
// not delay another's deliveries.
func TestDeadReceiverHoldsUpOnlyItself(t *testing.T) {
	e := newEnv(t)
	dead, live := newSink(t), newSink(t)
	dead.setDown(true)
	names := []string{"h1", "h2", "h3", "h9"}
	e.start(t, Options{}, dead.receiver("dead"), live.receiver("live"))
	for i, h := range names[:3] {
		e.src.set(hosts(names, h))
		enginetest.Eventually(t, 15*time.Second, "delivered to live", func() bool { return len(live.ok()) == 2*i+1 })
		e.src.set(hosts(names))
		enginetest.Eventually(t, 15*time.Second, "delivered to live", func() bool { return len(live.ok()) == 2*i+2 })
	}
	if n := len(dead.ok()); n != 0 {
		t.Fatalf("the dead receiver got %d", n)
	}
	enginetest.Eventually(t, 15*time.Second, "six pending for dead, none for live", func() bool {
		st, _ := e.db.AlertReceiverStats(t.Context())
		return len(st) == 2 && st[0].Receiver == "dead" && st[0].Pending == 6 && st[0].LastError != "" && st[1].Pending == 0
	})
}

// TestRepeatInterval: a still-firing alert is sent again each repeat
// interval, with a new webhook-id and the same fingerprint and start.
func TestRepeatInterval(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	e.src.set(Snapshot{Queued: 90, MaxQueued: 100})
	e.start(t, Options{RepeatInterval: 100 * time.Millisecond}, s.receiver("ops"))
	enginetest.Eventually(t, 15*time.Second, "three notices", func() bool { return len(s.ok()) >= 3 })
	ds := s.ok()[:3]
	for i, d := range ds {
		if what(d) != "FuseboxQueueNearlyFull firing" || d.msg.Alerts[0].Fingerprint != ds[0].msg.Alerts[0].Fingerprint ||
			!d.msg.Alerts[0].StartsAt.Equal(ds[0].msg.Alerts[0].StartsAt) || (i > 0 && d.id == ds[i-1].id) {
			t.Fatalf("notice %d: %q %+v", i, what(d), d.msg.Alerts)
		}
	}
	if !strings.Contains(ds[0].msg.Alerts[0].Annotations["summary"], "90% full") {
		t.Fatalf("summary %q", ds[0].msg.Alerts[0].Annotations["summary"])
	}
}

// TestNoRepeatAcrossRestart: a firing alert is not sent again by a new
// Manager before its repeat interval.
func TestNoRepeatAcrossRestart(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	e.src.set(Snapshot{Hosts: []HostSnapshot{{Name: "h1", State: fleet.HostIsolated, Breaker: breaker.StateForcedOpen}}})
	m1 := e.start(t, Options{}, s.receiver("ops"))
	enginetest.Eventually(t, 15*time.Second, "all hosts out", func() bool { return len(s.ok()) == 1 })
	if got := what(s.ok()[0]); got != "FuseboxAllHostsOut firing" { // an isolated host is no FuseboxBreakerOpen
		t.Fatalf("delivered %q", got)
	}
	m1.Stop()
	m2 := e.start(t, Options{}, s.receiver("ops"))
	// Let the new Manager make passes: its cursor write shows it has.
	if _, err := e.db.EventAppend(t.Context(), event.Event{At: time.Now(), Type: event.TypeHostState, Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, 15*time.Second, "the cursor", func() bool { c, _ := e.db.AlertCursor(t.Context()); return c > 0 })
	m2.Stop()
	if n := len(s.all()); n != 1 {
		t.Fatalf("%d requests after a restart, want 1: %q", n, whats(s.all()))
	}
}

// TestAlertConditions: every level alert fires on its condition.
func TestAlertConditions(t *testing.T) {
	got := func(snap Snapshot) []string {
		var out []string
		for _, w := range evaluate(snap, 0.8) {
			out = append(out, strings.Join(slices.DeleteFunc([]string{w.labels[LabelAlertName], w.labels[LabelHost], w.labels[LabelSeverity]},
				func(s string) bool { return s == "" }), " "))
		}
		slices.Sort(out)
		return out
	}
	cases := []struct {
		name string
		snap Snapshot
		want []string
	}{
		{"none", Snapshot{}, nil},
		{"healthy", Snapshot{Hosts: []HostSnapshot{{Name: "a", State: fleet.HostHealthy}}, Queued: 79, MaxQueued: 100}, nil},
		{"unbounded queue", Snapshot{Queued: 5000}, nil},
		{"queue", Snapshot{Hosts: []HostSnapshot{{Name: "a", State: fleet.HostHealthy}}, Queued: 80, MaxQueued: 100},
			[]string{"FuseboxQueueNearlyFull warning"}},
		{"degraded", Snapshot{Hosts: []HostSnapshot{{Name: "a", State: fleet.HostDegraded}}},
			[]string{"FuseboxHostDegraded a warning"}},
		{"half-open", Snapshot{Hosts: []HostSnapshot{{Name: "a", State: fleet.HostProbing, Breaker: breaker.StateHalfOpen}, {Name: "b", State: fleet.HostDegraded}}},
			[]string{"FuseboxBreakerOpen a warning", "FuseboxHostDegraded b warning"}},
		{"workflow breakers", Snapshot{Workflows: []WorkflowSnapshot{{Name: "ci", Breaker: breaker.StateOpen}, {Name: "etl", Breaker: breaker.StateClosed}, {Name: "ml", Breaker: breaker.StateHalfOpen}}},
			[]string{"FuseboxWorkflowBreakerOpen warning", "FuseboxWorkflowBreakerOpen warning"}},
		{"all out", Snapshot{Hosts: []HostSnapshot{{Name: "a", State: fleet.HostUnavailable, Breaker: breaker.StateOpen},
			{Name: "b", State: fleet.HostDraining}, {Name: "c", State: fleet.HostIsolated, Breaker: breaker.StateForcedOpen}}},
			[]string{"FuseboxAllHostsOut critical", "FuseboxBreakerOpen a warning"}},
	}
	for _, c := range cases {
		if g := got(c.snap); !slices.Equal(g, c.want) {
			t.Errorf("%s: %q, want %q", c.name, g, c.want)
		}
	}
}

// TestSnapshotErrorKeepsAlerts: a failing Snapshot resolves nothing.
func TestSnapshotErrorKeepsAlerts(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	e.src.set(hosts([]string{"h1", "h9"}, "h1"))
	e.start(t, Options{}, s.receiver("ops"))
	enginetest.Eventually(t, 15*time.Second, "firing", func() bool { return len(s.ok()) == 1 })
	e.src.mu.Lock()
	e.src.err, e.src.snap = errors.New("fleet unavailable"), Snapshot{}
	e.src.mu.Unlock()
	// Several passes run meanwhile; none may resolve.
	if _, err := e.db.EventAppend(t.Context(), event.Event{At: time.Now(), Type: event.TypeHostState, Host: "h1"}); err != nil {
		t.Fatal(err)
	}
	enginetest.Eventually(t, 15*time.Second, "the cursor past the event", func() bool { c, _ := e.db.AlertCursor(t.Context()); return c > 0 })
	ss, _ := e.db.AlertStates(t.Context())
	if len(ss) != 1 || ss[0].Status != store.AlertFiring || len(s.all()) != 1 {
		t.Fatalf("after snapshot errors: states %+v, requests %q", ss, whats(s.all()))
	}
}

// TestJobLost: a job that reaches lost fires once (job_id, host), resolves
// after the resolve timeout, and is not fired again by a new Manager that
// reads the same events.
func TestJobLost(t *testing.T) {
	e := newEnv(t)
	s := newSink(t)
	ctx := t.Context()
	m := e.manager(t, Options{}, s.receiver("ops"))
	m.lostTimeout = 300 * time.Millisecond
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, _, err := e.db.JobInsert(ctx, store.JobInsertParams{Job: &job.Job{ID: "j1", Spec: job.Spec{Image: "alpine:3.20"}, CreatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct{ from, to job.State }{{job.StateQueued, job.StateLaunching}, {job.StateLaunching, job.StateRunning}, {job.StateRunning, job.StateLost}} {
		p := store.JobTransitionParams{ID: "j1", From: []job.State{step.from}, To: step.to, Reason: "host h1 unreachable for 5m", Now: time.Now()}
		if step.to == job.StateLaunching {
			p.Host, p.SetAttempt = store.Ptr("h1"), store.Ptr(1)
		}
		if _, err := e.db.JobTransition(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	enginetest.Eventually(t, 15*time.Second, "firing and resolved", func() bool { return len(s.ok()) == 2 })
	want := []string{"FuseboxJobLost h1j1 firing", "FuseboxJobLost h1j1 resolved"}
	if got := whats(s.ok()); !slices.Equal(got, want) {
		t.Fatalf("delivered %q, want %q", got, want)
	}
	f, r := s.ok()[0].msg.Alerts[0], s.ok()[1].msg.Alerts[0]
	if f.Labels[LabelJobID] != "j1" || f.Labels[LabelHost] != "h1" || !strings.Contains(f.Annotations["description"], "unreachable") ||
		!r.EndsAt.Equal(f.StartsAt.Add(300*time.Millisecond)) {
		t.Fatalf("firing %+v resolved %+v", f, r)
	}
	m.Stop()

	// A new Manager whose cursor is before the lost transition reads it
	// again: the stored state says it was alerted.
	m2 := e.manager(t, Options{}, s.receiver("ops"))
	m2.lostTimeout = time.Hour
	e2 := &evaluator{m: m2, cursor: 0}
	evs, _ := e.db.EventList(ctx, store.EventListParams{Filter: event.Filter{Types: []string{event.TypeJobTransition}}})
	for _, ev := range evs {
		e2.take(ev)
	}
	e2.pass(ctx)
	if n := len(s.all()); n != 2 {
		t.Fatalf("%d requests after the lost job's events were read again, want 2", n)
	}
	if ss, _ := e.db.AlertStates(ctx); len(ss) != 1 || ss[0].Status != store.AlertResolved {
		t.Fatalf("states %+v", ss)
	}
}

// TestTest: Test sends a signed test alert to each receiver directly, and
// reports each answer; nothing goes through the outbox.
func TestTest(t *testing.T) {
	e := newEnv(t)
	good, bad := newSink(t), newSink(t)
	bad.answer = func(int) int { return http.StatusBadGateway }
	m := e.manager(t, Options{}, good.receiver("good"), bad.receiver("bad"))
	res, err := m.Test(t.Context(), "")
	if err != nil || len(res) != 2 {
		t.Fatalf("Test = %+v, %v", res, err)
	}
	if r := res[0]; r.Receiver != "good" || r.Status != 200 || r.Error != "" || r.Duration <= 0 || r.WebhookID == "" {
		t.Fatalf("good: %+v", r)
	}
	if r := res[1]; r.Receiver != "bad" || r.Status != 502 || !strings.Contains(r.Error, "HTTP 502") {
		t.Fatalf("bad: %+v", r)
	}
	d := good.all()[0]
	if d.verr != nil || what(d) != "FuseboxTest firing" || d.msg.Alerts[0].Labels[LabelSeverity] != "info" || d.id != res[0].WebhookID {
		t.Fatalf("test delivery %q (verify %v)", what(d), d.verr)
	}
	if res, err := m.Test(t.Context(), "bad"); err != nil || len(res) != 1 || len(bad.all()) != 2 {
		t.Fatalf("Test(bad) = %+v, %v", res, err)
	}
	if _, err := m.Test(t.Context(), "nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) || !strings.Contains(err.Error(), "good, bad") {
		t.Fatalf("Test(nope) = %v", err)
	}
	if st, _ := e.db.AlertReceiverStats(t.Context()); len(st) != 0 {
		t.Fatalf("Test used the outbox: %+v", st)
	}
}

// TestReceiversRedacted: Receivers hides passwords and query values of the
// URLs, and reports the breaker.
func TestReceiversRedacted(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{}, Receiver{Name: "chat", URL: "https://bot:hunter2@chat.example/hook?token=s3cret&room=ops", Secret: testSecret})
	rs, err := m.Receivers(t.Context())
	if err != nil || len(rs) != 1 {
		t.Fatalf("Receivers = %+v, %v", rs, err)
	}
	if u := rs[0].URL; strings.Contains(u, "hunter2") || strings.Contains(u, "s3cret") || !strings.HasPrefix(u, "https://") || !strings.Contains(u, "chat.example/hook") {
		t.Fatalf("URL %q", u)
	}
	if rs[0].Breaker != breaker.StateClosed || rs[0].Pending != 0 {
		t.Fatalf("status %+v", rs[0])
	}
}

// TestNewRefusesBadReceivers: each bad receiver is refused with an error
// naming it and the problem.
func TestNewRefusesBadReceivers(t *testing.T) {
	e := newEnv(t)
	ok := Receiver{Name: "ok", URL: "https://hooks.example/x", Secret: testSecret}
	cases := []struct {
		r    Receiver
		want string
	}{
		{Receiver{URL: ok.URL, Secret: testSecret}, "receivers[1]: name is required"},
		{Receiver{Name: "ok", URL: ok.URL, Secret: testSecret}, "receivers[1] (ok): duplicate name"},
		{Receiver{Name: "pager", URL: "ftp://x/y", Secret: testSecret}, "receivers[1] (pager): url"},
		{Receiver{Name: "pager", URL: "/relative", Secret: testSecret}, "receivers[1] (pager): url"},
		{Receiver{Name: "pager", URL: ok.URL, Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, `receivers[1] (pager): secret must start with "whsec_"`},
		{Receiver{Name: "pager", URL: ok.URL, Secret: "whsec_not base64!"}, "receivers[1] (pager): secret: the part after"},
		{Receiver{Name: "pager", URL: ok.URL, Secret: "whsec_c2hvcnQ="}, "receivers[1] (pager): secret: key is 5 bytes"},
		{Receiver{Name: "pager", URL: ok.URL, Secret: testSecret, Timeout: -time.Second}, "receivers[1] (pager): timeout"},
	}
	for _, c := range cases {
		_, err := New(e.db, e.src, busEvents{e.bus}, Options{Receivers: []Receiver{ok, c.r}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v) = %v, want %q", c.r, err, c.want)
		}
	}
	if _, err := New(e.db, e.src, busEvents{e.bus}, Options{QueueThreshold: 1.5}); err == nil {
		t.Error("QueueThreshold 1.5 accepted")
	}
}

// TestLifecycle: Stop is safe before Start and twice; Start twice fails.
func TestLifecycle(t *testing.T) {
	e := newEnv(t)
	m := e.manager(t, Options{})
	m.Stop()
	if err := m.Start(t.Context()); err == nil {
		t.Fatal("Start after Stop: no error")
	}
	m2 := e.manager(t, Options{})
	if err := m2.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m2.Start(t.Context()); err == nil {
		t.Fatal("Start twice: no error")
	}
	m2.Stop()
	m2.Stop()
}

// TestSignVerify: Verify accepts what Sign makes and refuses a changed
// body, id or secret, an old timestamp and missing headers.
func TestSignVerify(t *testing.T) {
	body := []byte(`{"status":"firing"}`)
	hdr := func(id string, ts time.Time, b []byte) http.Header {
		sig, err := Sign(testSecret, id, ts, b)
		if err != nil {
			t.Fatal(err)
		}
		h := http.Header{}
		h.Set(HeaderID, id)
		h.Set(HeaderTimestamp, fmt.Sprint(ts.Unix()))
		h.Set(HeaderSignature, sig)
		return h
	}
	now := time.Now()
	if err := Verify(testSecret, hdr("msg_1", now, body), body, 0); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !verifyLikeDoc(testSecret, hdr("msg_1", now, body), body) {
		t.Fatal("doc.go's example refuses a good signature")
	}
	two := hdr("msg_1", now, body)
	two.Set(HeaderSignature, "v1,bm9wZQ== "+two.Get(HeaderSignature))
	if err := Verify(testSecret, two, body, 0); err != nil {
		t.Fatalf("Verify with two signatures: %v", err)
	}
	other := "whsec_" + strings.Repeat("QUJD", 8)
	wrongID := hdr("msg_1", now, body)
	wrongID.Set(HeaderID, "msg_2")
	for name, c := range map[string]struct {
		secret string
		h      http.Header
		body   []byte
	}{
		"body":      {testSecret, hdr("msg_1", now, body), []byte(`{"status":"resolved"}`)},
		"id":        {testSecret, wrongID, body},
		"secret":    {other, hdr("msg_1", now, body), body},
		"old":       {testSecret, hdr("msg_1", now.Add(-10*time.Minute), body), body},
		"future":    {testSecret, hdr("msg_1", now.Add(10*time.Minute), body), body},
		"no header": {testSecret, http.Header{}, body},
	} {
		if err := Verify(c.secret, c.h, c.body, 0); !errors.Is(err, ErrVerify) {
			t.Errorf("%s: Verify = %v, want ErrVerify", name, err)
		}
	}
	if _, err := Sign("nope", "msg_1", now, body); err == nil {
		t.Error("Sign with a bad secret: no error")
	}
}

// TestFingerprint: Alertmanager's fingerprint of the labels, whatever their
// order.
func TestFingerprint(t *testing.T) {
	// Computed with github.com/prometheus/common/model.LabelSet.Fingerprint.
	for want, ls := range map[string]map[string]string{
		"f7fe291fbe5635ac": {"alertname": "FuseboxBreakerOpen", "host": "h1", "severity": "warning"},
		"d240efc3896bf266": {"alertname": "x"},
		"cbf29ce484222325": {},
	} {
		if got := Fingerprint(ls); got != want {
			t.Errorf("Fingerprint(%v) = %s, want %s", ls, got, want)
		}
	}
}

// TestDegradedMustLast: FuseboxHostDegraded fires only once the host has
// been degraded for DegradedFor, dated from when it began; a host that
// passes through degraded and out again never fires it.
func TestDegradedMustLast(t *testing.T) {
	e := &evaluator{m: &Manager{opt: Options{DegradedFor: time.Minute}}}
	degraded := Snapshot{Hosts: []HostSnapshot{{Name: "a", State: fleet.HostDegraded}, {Name: "b", State: fleet.HostUnavailable, Breaker: breaker.StateOpen}}}
	names := func(ws map[string]want) []string {
		var out []string
		for _, w := range ws {
			out = append(out, w.labels[LabelAlertName])
		}
		slices.Sort(out)
		return out
	}
	t0 := time.Now()
	at := func(d time.Duration, snap Snapshot) map[string]want {
		ws := evaluate(snap, 0.8)
		e.hold(ws, nil, t0.Add(d))
		return ws
	}
	if got := names(at(0, degraded)); !slices.Equal(got, []string{NameBreakerOpen}) {
		t.Fatalf("at once: %v; want only the breaker alert", got)
	}
	if got := names(at(59*time.Second, degraded)); !slices.Equal(got, []string{NameBreakerOpen}) {
		t.Fatalf("after 59s: %v", got)
	}
	ws := at(time.Minute, degraded)
	if got := names(ws); !slices.Equal(got, []string{NameBreakerOpen, NameHostDegraded}) {
		t.Fatalf("after 1m: %v", got)
	}
	for _, w := range ws {
		if w.labels[LabelAlertName] == NameHostDegraded && !w.since.Equal(t0) {
			t.Errorf("degraded alert dated %v, want when it began (%v)", w.since, t0)
		}
	}
	// Out and back in: the clock starts again.
	at(2*time.Minute, Snapshot{Hosts: []HostSnapshot{{Name: "a", State: fleet.HostHealthy}}})
	if got := names(at(2*time.Minute+30*time.Second, degraded)); !slices.Equal(got, []string{NameBreakerOpen}) {
		t.Fatalf("30s into a second spell: %v", got)
	}
}
