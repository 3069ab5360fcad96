package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fusebox/internal/alert"
	"fusebox/internal/api"
	"fusebox/internal/apiclient"
	"fusebox/internal/config"
	"fusebox/internal/enginetest"
	"fusebox/internal/event"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// webhookReceiver is a real HTTP endpoint that verifies every delivery as
// a receiver should and records it. Down closes its listener (connection
// refused); Up listens again on the same address.
type webhookReceiver struct {
	t    *testing.T
	addr string

	mu     sync.Mutex
	srv    *http.Server
	got    []delivery // verified deliveries, in arrival order
	bad    []string   // deliveries that failed verification
	change chan struct{}
}

type delivery struct {
	id     string
	status string // firing, resolved
	alert  alert.Alert
}

func startReceiver(t *testing.T) *webhookReceiver {
	r := &webhookReceiver{t: t, change: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.addr = ln.Addr().String()
	r.serve(ln)
	t.Cleanup(r.Down)
	return r
}

func (r *webhookReceiver) URL() string { return "http://" + r.addr + "/hook" }

func (r *webhookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(r.handle)}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go srv.Serve(ln)
}

func (r *webhookReceiver) handle(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() { close(r.change); r.change = make(chan struct{}) }()
	if err := alert.Verify(testSecret, req.Header, body, 0); err != nil {
		r.bad = append(r.bad, err.Error())
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var m alert.Message
	if err := json.Unmarshal(body, &m); err != nil || m.Version != "4" || len(m.Alerts) != 1 {
		r.bad = append(r.bad, "body: "+string(body))
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	r.got = append(r.got, delivery{id: req.Header.Get(alert.HeaderID), status: m.Status, alert: m.Alerts[0]})
}

// Down stops the receiver: connections are refused until Up.
func (r *webhookReceiver) Down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// Up listens on the receiver's address again.
func (r *webhookReceiver) Up() {
	ln, err := net.Listen("tcp", r.addr)
	if err != nil {
		r.t.Fatalf("receiver: listen again on %s: %v", r.addr, err)
	}
	r.serve(ln)
}

// waitFor waits until cond holds for the deliveries so far.
func (r *webhookReceiver) waitFor(t *testing.T, timeout time.Duration, what string, cond func([]delivery) bool) []delivery {
	t.Helper()
	deadline := time.After(timeout)
	for {
		r.mu.Lock()
		got, bad, change := append([]delivery(nil), r.got...), r.bad, r.change
		r.mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("deliveries failed verification: %v", bad)
		}
		if cond(got) {
			return got
		}
		select {
		case <-change:
		case <-deadline:
			t.Fatalf("receiver: %s: not within %v; got %s", what, timeout, describe(got))
		}
	}
}

func describe(ds []delivery) string {
	var s []string
	for _, d := range ds {
		s = append(s, d.status+" "+d.alert.Labels["alertname"]+"{"+d.alert.Labels["host"]+"} "+d.id)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// breakerAlerts are the deliveries of FuseboxBreakerOpen for host.
func breakerAlerts(ds []delivery, host string) []delivery {
	var out []delivery
	for _, d := range ds {
		if d.alert.Labels["alertname"] == alert.NameBreakerOpen && d.alert.Labels["host"] == host {
			out = append(out, d)
		}
	}
	return out
}

func alertConfig(t *testing.T, engines *enginetest.Fleet, url string) *config.Config {
	cfg := testConfig(t, engines)
	cfg.Alerts.EvalInterval = 200 * time.Millisecond
	cfg.Alerts.Backoff = 100 * time.Millisecond
	cfg.Alerts.MaxBackoff = 2 * time.Second
	cfg.Alerts.Receivers = []config.AlertReceiver{config.DefaultAlertReceiver("hook", url, testSecret)}
	return cfg
}

// A hung engine's breaker opens: a webhook receiver gets a signed firing
// alert for it, and the matching resolved one once the engine resumes.
// Then, with the receiver down for a minute and fusebox restarted in
// between, every alert of that time arrives once it is back, in order, once
// per webhook-id.
func TestAlertsReachAWebhookReceiver(t *testing.T) {
	engines := enginetest.ForTest(t, 2)
	e1 := engines.Engines[0]
	recv := startReceiver(t)
	cfg := alertConfig(t, engines, recv.URL())
	var logs logBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("fusebox log:\n%s", logs.String())
		}
	})
	addr, stop := runServer(t, cfg, &logs)
	c := apiclient.New("http://"+addr, "")
	waitUp(t, c)
	ctx := context.Background()

	// A test alert goes straight through.
	res, err := c.TestAlert(ctx, "")
	if err != nil || len(res) != 1 || res[0].Error != "" || res[0].Status != http.StatusOK {
		t.Fatalf("alerts test: %+v %v", res, err)
	}
	if _, err := c.TestAlert(ctx, "nobody"); err == nil || !strings.Contains(err.Error(), `unknown receiver "nobody"`) {
		t.Errorf("alerts test of an unknown receiver: %v", err)
	}

	if err := e1.Hang(); err != nil {
		t.Fatal(err)
	}
	got := recv.waitFor(t, 30*time.Second, "firing alert of "+e1.Name, func(ds []delivery) bool { return len(breakerAlerts(ds, e1.Name)) >= 1 })
	fired := breakerAlerts(got, e1.Name)[0]
	if fired.status != "firing" || fired.alert.Labels["severity"] == "" || fired.alert.Annotations["summary"] == "" || fired.alert.Fingerprint == "" {
		t.Fatalf("first alert of %s: %+v", e1.Name, fired)
	}
	st, err := c.Alerts(ctx)
	if err != nil || len(st.Receivers) != 1 || len(st.Firing) == 0 || st.Firing[0].Name != alert.NameBreakerOpen {
		t.Fatalf("GET /v1/alerts while firing: %+v %v", st, err)
	}
	// The hung host is spared, visibly: a host.degradation event says how.
	waitEvent(t, c, event.TypeHostDegradation, e1.Name, "logs_deferred")
	if err := e1.Resume(); err != nil {
		t.Fatal(err)
	}
	got = recv.waitFor(t, 60*time.Second, "resolved alert of "+e1.Name, func(ds []delivery) bool { return len(breakerAlerts(ds, e1.Name)) >= 2 })
	resolved := breakerAlerts(got, e1.Name)[1]
	if resolved.status != "resolved" || resolved.alert.Fingerprint != fired.alert.Fingerprint || resolved.id == fired.id {
		t.Fatalf("second alert of %s: %+v after %+v", e1.Name, resolved, fired)
	}
	before := len(got)

	// The receiver goes down for a minute; meanwhile the engine hangs (its
	// alert waits in the outbox), fusebox restarts, and the engine resumes
	// (the new server enqueues the resolve).
	recv.Down()
	downAt := time.Now()
	if err := e1.Hang(); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, c, "the breaker alert of "+e1.Name+" fires", func(st *api.AlertsResponse) bool { return firingFor(st, e1.Name) })
	if err := stop(); err != nil {
		t.Fatalf("first server: %v", err)
	}
	addr, _ = runServer(t, cfg, &logs)
	c = apiclient.New("http://"+addr, "")
	waitUp(t, c)
	if err := e1.Resume(); err != nil {
		t.Fatal(err)
	}
	waitAlerts(t, c, "the breaker alert of "+e1.Name+" is resolved", func(st *api.AlertsResponse) bool {
		return !firingFor(st, e1.Name) && st.Receivers[0].Pending >= 2
	})
	select {
	case <-time.After(time.Until(downAt.Add(time.Minute))): // the outage lasts its minute
	case <-t.Context().Done():
	}
	recv.Up()

	got = recv.waitFor(t, 3*time.Minute, "the alerts of the outage", func(ds []delivery) bool {
		return len(breakerAlerts(ds[before:], e1.Name)) >= 2
	})
	outage := breakerAlerts(got[before:], e1.Name)
	if outage[0].status != "firing" || outage[1].status != "resolved" || outage[0].alert.Fingerprint != fired.alert.Fingerprint {
		t.Fatalf("alerts of the outage out of order: %s", describe(outage))
	}
	seen := map[string]bool{}
	for _, d := range got {
		if seen[d.id] {
			t.Errorf("webhook-id %s delivered twice: %s", d.id, describe(got))
		}
		seen[d.id] = true
	}
	waitAlerts(t, c, "the outbox is empty", func(st *api.AlertsResponse) bool { return st.Receivers[0].Pending == 0 })
}

// waitAlerts polls GET /v1/alerts until cond holds of it (the server may
// be restarting meanwhile).
func waitAlerts(t *testing.T, c *apiclient.Client, what string, cond func(*api.AlertsResponse) bool) {
	t.Helper()
	var st *api.AlertsResponse
	var err error
	enginetest.Eventually(t, 60*time.Second, what, func() bool {
		st, err = c.Alerts(context.Background())
		var ce *apiclient.ConnError
		if err != nil && !errors.As(err, &ce) {
			t.Fatal(err)
		}
		return err == nil && len(st.Receivers) == 1 && cond(st)
	}, func() string { return fmt.Sprintf("last seen: %+v %v", st, err) })
}

// firingFor says whether FuseboxBreakerOpen of host is firing in st.
func firingFor(st *api.AlertsResponse, host string) bool {
	return slices.ContainsFunc(st.Firing, func(f api.FiringAlert) bool {
		return f.Name == alert.NameBreakerOpen && f.Labels["host"] == host
	})
}

// waitEvent waits until an event of type typ about host whose data holds
// want is in the stream.
func waitEvent(t *testing.T, c *apiclient.Client, typ, host, want string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errFound := errors.New("found")
	err := c.Events(ctx, apiclient.EventsParams{Types: []string{typ}, Host: host, Since: "0", Follow: true}, func(ev event.Event) error {
		if strings.Contains(string(ev.Data), want) {
			return errFound
		}
		return nil
	})
	if !errors.Is(err, errFound) {
		t.Fatalf("no %s event of %s with %q: %v", typ, host, want, err)
	}
}
