package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/event"
	"fusebox/internal/store"
)

const (
	// idlePoll is how often an idle delivery loop looks at the outbox
	// without being woken (notices enqueued by another process).
	idlePoll = 30 * time.Second
	// storeRetry is the first wait after a failed store call of a
	// delivery loop; it doubles up to storeRetryMax.
	storeRetry    = 100 * time.Millisecond
	storeRetryMax = 5 * time.Second
	// userAgent is sent with every delivery.
	userAgent = "fusebox"
)

// statusError is a delivery the receiver answered with a status other
// than 2xx.
type statusError struct {
	code int
	body string // the start of the answer
}

func (e *statusError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("HTTP %d", e.code)
	}
	return fmt.Sprintf("HTTP %d: %s", e.code, e.body)
}

// classify is the receivers' breaker's classifier: a 4xx answer (but 408
// and 429) says the receiver is up and refuses this body, which tells
// nothing about its health; everything else (no answer, 5xx, a timeout, a
// redirect) is a failure.
func classify(err error) breaker.Outcome {
	var se *statusError
	if errors.As(err, &se) && se.code >= 400 && se.code < 500 && se.code != http.StatusRequestTimeout && se.code != http.StatusTooManyRequests {
		return breaker.Ignored
	}
	return breaker.Failure
}

// deliverLoop delivers r's notices one at a time, oldest first, until ctx
// ends: the head notice is retried (after its NextAt) until it is
// delivered, and only then is the next one sent.
func (m *Manager) deliverLoop(ctx context.Context, r *receiver) {
	retry := storeRetry
	for ctx.Err() == nil {
		n, ok, err := m.st.AlertNextNotice(ctx, r.Name)
		if err != nil {
			if ctx.Err() == nil {
				m.log.Warn("alerts: read the outbox", "receiver", r.Name, "err", err)
			}
			if !sleep(ctx, retry, nil) {
				return
			}
			retry = min(2*retry, storeRetryMax)
			continue
		}
		retry = storeRetry
		if !ok {
			m.observePending(ctx, r.Name)
			sleep(ctx, idlePoll, r.wake)
			continue
		}
		if d := time.Until(n.NextAt); d > 0 {
			sleep(ctx, d, nil)
			continue
		}
		m.attempt(ctx, r, n)
	}
}

// attempt makes one delivery attempt of n through r's breaker and records
// its outcome.
func (m *Manager) attempt(ctx context.Context, r *receiver, n store.AlertNotice) {
	start := time.Now()
	_, err := breaker.Do(ctx, r.br, func(ctx context.Context) (int, error) {
		return m.post(ctx, r, n.WebhookID, n.Body)
	})
	if oe := (*breaker.OpenError)(nil); errors.As(err, &oe) {
		// Refused without a call: wait for the breaker, use no attempt.
		wait := oe.RetryAfter
		if wait <= 0 {
			wait = m.opt.Backoff
		}
		sleep(ctx, wait, nil)
		return
	}
	if err != nil && ctx.Err() != nil {
		return // stopping: the notice stays pending for the next Manager
	}
	if m.opt.Observer != nil {
		m.opt.Observer.Delivered(r.Name, err == nil, time.Since(start))
	}
	if err == nil {
		m.delivered(ctx, r, n)
	} else {
		m.failed(ctx, r, n, err)
	}
	m.observePending(ctx, r.Name)
}

// recordTimeout bounds how long a delivery that the receiver took is
// still recorded after Stop.
const recordTimeout = 5 * time.Second

// delivered records a delivery, retrying the store until it takes it, even
// after Stop for up to recordTimeout: if it never does, the notice is sent
// again by the next Manager. That is the one way a receiver sees a
// webhook-id twice.
func (m *Manager) delivered(ctx context.Context, r *receiver, n store.AlertNotice) {
	var msg Message
	_ = json.Unmarshal(n.Body, &msg) // rendered by message: it decodes
	names := make([]string, 0, len(msg.Alerts))
	for _, a := range msg.Alerts {
		names = append(names, a.Labels[LabelAlertName])
	}
	detached := context.WithoutCancel(ctx)
	var giveUp time.Time
	retry := storeRetry
	for {
		now := time.Now()
		ev := event.Event{At: now, Type: event.TypeAlertDelivery, Data: event.MarshalData(event.AlertDelivery{
			Receiver: r.Name, WebhookID: n.WebhookID, Status: msg.Status, Alerts: names, Attempts: n.Attempts + 1})}
		cctx, cancel := context.WithTimeout(detached, recordTimeout)
		err := m.st.AlertNoticeDelivered(cctx, n.ID, now, ev)
		cancel()
		if err == nil {
			return
		}
		if ctx.Err() != nil {
			if giveUp.IsZero() {
				giveUp = now.Add(recordTimeout)
			}
			if now.After(giveUp) {
				m.log.Warn("alerts: stopping before a delivery was recorded; the next start sends it again",
					"receiver", r.Name, "webhook_id", n.WebhookID, "err", err)
				return
			}
		}
		m.log.Warn("alerts: record a delivery", "receiver", r.Name, "webhook_id", n.WebhookID, "err", err)
		sleep(detached, retry, nil)
		retry = min(2*retry, storeRetryMax)
	}
}

// failed records a failed attempt and when to retry.
func (m *Manager) failed(ctx context.Context, r *receiver, n store.AlertNotice, cause error) {
	now := time.Now()
	delay := m.backoff(n.Attempts + 1)
	m.log.Warn("alerts: delivery failed", "receiver", r.Name, "webhook_id", n.WebhookID, "attempt", n.Attempts+1,
		"retry_in", delay.Round(time.Millisecond), "err", cause)
	if err := m.st.AlertNoticeFailed(ctx, n.ID, cause.Error(), now.Add(delay), now); err != nil {
		if ctx.Err() == nil {
			m.log.Warn("alerts: record a failed delivery", "receiver", r.Name, "webhook_id", n.WebhookID, "err", err)
		}
		sleep(ctx, delay, nil) // the stored NextAt is older: keep the backoff here
	}
}

// backoff is the delay before attempt+1: exponential from Backoff, capped
// at MaxBackoff, with full jitter (uniform in [0, cap)).
func (m *Manager) backoff(attempt int) time.Duration {
	d := m.opt.Backoff
	for i := 1; i < attempt && d < m.opt.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, m.opt.MaxBackoff)
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// post sends one signed delivery and returns the status of the answer; an
// error for no answer or a status other than 2xx.
func (m *Manager) post(ctx context.Context, r *receiver, id string, body []byte) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, r.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("request: %w", err)
	}
	ts := time.Now().Unix()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set(HeaderID, id)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	req.Header.Set(HeaderSignature, sign(r.key, id, ts, body))
	resp, err := m.http.Do(req)
	if err != nil {
		if ue := (*url.Error)(nil); errors.As(err, &ue) {
			ue.URL = redact(ue.URL) // no secret of the URL in logs and the store
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // lets the connection be reused
		return resp.StatusCode, nil
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	return resp.StatusCode, &statusError{code: resp.StatusCode, body: strings.TrimSpace(strings.ToValidUTF8(string(b), "?"))}
}

// observePending tells the observer how many notices r has waiting.
func (m *Manager) observePending(ctx context.Context, name string) {
	if m.opt.Observer == nil {
		return
	}
	stats, err := m.st.AlertReceiverStats(ctx)
	if err != nil {
		return
	}
	n := 0
	for _, s := range stats {
		if s.Receiver == name {
			n = s.Pending
		}
	}
	m.opt.Observer.Pending(name, n)
}

// ErrUnknownReceiver is wrapped by Test's error for a receiver name that is
// not configured.
var ErrUnknownReceiver = errors.New("unknown receiver")

// TestResult is the outcome of sending a test alert to one receiver.
type TestResult struct {
	Receiver  string
	WebhookID string
	Status    int    // the HTTP status of the answer, 0 if none
	Error     string // "" when delivered (2xx)
	Duration  time.Duration
}

// Test sends a test alert (FuseboxTest, severity info, firing) to the
// receiver named name, or to every receiver when it is "", now: signed as
// every delivery, but directly, not through the outbox or the breaker, and
// recorded nowhere.
// It returns one result per receiver, in configuration order; an unknown
// receiver is an error.
func (m *Manager) Test(ctx context.Context, name string) ([]TestResult, error) {
	var targets []*receiver
	for _, r := range m.recv {
		if name == "" || r.Name == name {
			targets = append(targets, r)
		}
	}
	if name != "" && len(targets) == 0 {
		names := make([]string, 0, len(m.recv))
		for _, r := range m.recv {
			names = append(names, r.Name)
		}
		if len(names) == 0 {
			return nil, fmt.Errorf("alert: test: %w %q: no receivers are configured (alerts.receivers)", ErrUnknownReceiver, name)
		}
		return nil, fmt.Errorf("alert: test: %w %q (receivers: %s)", ErrUnknownReceiver, name, strings.Join(names, ", "))
	}
	out := make([]TestResult, len(targets))
	var wg sync.WaitGroup
	for i, r := range targets {
		wg.Go(func() {
			now := time.Now()
			labels := map[string]string{LabelAlertName: NameTest, LabelSeverity: "info", "receiver": r.Name}
			s := store.AlertState{Fingerprint: Fingerprint(labels), Labels: labels, Status: store.AlertFiring, StartsAt: now,
				Annotations: map[string]string{
					"summary":     "fusebox: test alert",
					"description": "A test alert sent by `fusebox alerts test` to check that receiver " + r.Name + " gets and verifies fusebox's webhooks. Nothing is wrong.",
				}}
			id := newWebhookID()
			code, err := m.post(ctx, r, id, render(message(s, r.Name, m.opt.ExternalURL)))
			res := TestResult{Receiver: r.Name, WebhookID: id, Status: code, Duration: time.Since(now)}
			if err != nil {
				res.Error = err.Error()
			}
			out[i] = res
		})
	}
	wg.Wait()
	return out, nil
}

// ReceiverStatus is a receiver as `fusebox alerts` shows it.
type ReceiverStatus struct {
	Name            string
	URL             string // with any password and query values redacted
	Breaker         breaker.State
	Pending         int // notices waiting in the outbox
	LastDeliveredAt time.Time
	LastError       string
	LastErrorAt     time.Time
}

// Receivers returns every configured receiver with its breaker and outbox,
// in configuration order.
func (m *Manager) Receivers(ctx context.Context) ([]ReceiverStatus, error) {
	stats, err := m.st.AlertReceiverStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("alert: receivers: %w", err)
	}
	out := make([]ReceiverStatus, 0, len(m.recv))
	for _, r := range m.recv {
		st := ReceiverStatus{Name: r.Name, URL: redact(r.URL), Breaker: r.br.State()}
		if i := slices.IndexFunc(stats, func(s store.AlertReceiverStats) bool { return s.Receiver == r.Name }); i >= 0 {
			s := stats[i]
			st.Pending, st.LastDeliveredAt, st.LastError, st.LastErrorAt = s.Pending, s.LastDeliveredAt, s.LastError, s.LastErrorAt
		}
		out = append(out, st)
	}
	return out, nil
}
