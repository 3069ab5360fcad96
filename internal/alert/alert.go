package alert

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/store"
)

// Defaults for the zero fields of Options and Receiver.
const (
	RepeatIntervalDefault = 4 * time.Hour
	QueueThresholdDefault = 0.8
	EvalIntervalDefault   = 5 * time.Second
	DegradedForDefault    = time.Minute // as a Prometheus rule's "for:": a host passes through degraded on its way out and back
	BackoffDefault        = time.Second
	MaxBackoffDefault     = 5 * time.Minute
	TimeoutDefault        = 5 * time.Second // of one delivery attempt
)

// BreakerDefault is the breaker of each receiver when Options.Breaker is
// the zero value: three failed deliveries in a row open it for 10s, growing
// with repeated trips up to 5m.
var BreakerDefault = breaker.Settings{ConsecutiveFailures: 3, OpenDuration: 10 * time.Second, MaxOpenDuration: 5 * time.Minute}

// Receiver is a webhook endpoint alerts are delivered to.
type Receiver struct {
	Name    string
	URL     string        // http:// or https://
	Secret  string        // "whsec_<base64>": the Standard Webhooks signing key
	Timeout time.Duration // of one attempt; 0: TimeoutDefault
}

// Options configure a Manager. The zero value of a field means its
// default.
type Options struct {
	Receivers      []Receiver
	RepeatInterval time.Duration // a still-firing alert is sent again this long after it was last sent; default 4h
	QueueThreshold float64       // share of max queued jobs that alerts; default 0.8
	EvalInterval   time.Duration // how often conditions are re-checked besides events; default 5s
	DegradedFor    time.Duration // a host must stay degraded this long before FuseboxHostDegraded fires; default 1m, negative: at once
	Backoff        time.Duration // first retry delay of a delivery; exponential with full jitter; default 1s
	MaxBackoff     time.Duration // cap of the retry delay; default 5m
	Breaker        breaker.Settings
	ExternalURL    string // fusebox's URL as receivers reach it (externalURL, generatorURL); may be ""
	Logger         *slog.Logger
	Observer       Observer // may be nil
}

// Observer is told of every delivery attempt and of each receiver's
// outbox (for metrics). Its methods must not block.
type Observer interface {
	Delivered(receiver string, ok bool, d time.Duration)
	Pending(receiver string, n int)
}

// Snapshot is what the evaluator checks the level alerts against.
type Snapshot struct {
	Hosts     []HostSnapshot
	Queued    int
	MaxQueued int // 0: unbounded (no queue alert)
	// Workflows are the workflows whose breaker exists (has been used).
	Workflows []WorkflowSnapshot
}

// WorkflowSnapshot is the breaker of one workflow.
type WorkflowSnapshot struct {
	Name    string // the workflow's name (its breaker is "workflow/<name>")
	Breaker breaker.State
}

// HostSnapshot is one host of a Snapshot.
type HostSnapshot struct {
	Name    string
	State   fleet.HostState
	Breaker breaker.State
}

// Source gives the current Snapshot (the server adapts the fleet and the
// dispatcher).
type Source interface {
	Snapshot(ctx context.Context) (Snapshot, error)
}

// Events is the event stream (the server adapts *event.Bus).
type Events interface {
	Subscribe(f event.Filter, afterSeq int64) Subscription
}

// Subscription is one subscription of Events.
type Subscription interface {
	C() <-chan event.Event
	Close()
}

// Store is the part of store.Store the Manager uses.
type Store interface {
	AlertEnqueue(ctx context.Context, p store.AlertEnqueueParams) error
	AlertStates(ctx context.Context) ([]store.AlertState, error)
	AlertCursor(ctx context.Context) (int64, error)
	AlertNextNotice(ctx context.Context, receiver string) (store.AlertNotice, bool, error)
	AlertNoticeDelivered(ctx context.Context, id int64, at time.Time, ev event.Event) error
	AlertNoticeFailed(ctx context.Context, id int64, errMsg string, nextAt, at time.Time) error
	AlertReceiverStats(ctx context.Context) ([]store.AlertReceiverStats, error)
}

var _ Store = store.Store(nil)

// receiverNameRE is what a receiver's name must match (it is a metrics
// label and a CLI argument).
var receiverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Manager evaluates the alerts and delivers them. Start it once; Stop
// ends it.
type Manager struct {
	st   Store
	src  Source
	ev   Events
	opt  Options
	log  *slog.Logger
	recv []*receiver
	http *http.Client
	// lostTimeout is JobLostResolveTimeout; tests shorten it.
	lostTimeout time.Duration

	mu      sync.Mutex
	started bool
	stopped bool
	cancel  context.CancelFunc
	sub     Subscription
	wg      sync.WaitGroup
}

// receiver is a Receiver with its key, breaker and wake-up channel.
type receiver struct {
	Receiver
	key  []byte
	br   *breaker.Breaker
	wake chan struct{} // buffered 1: something was enqueued
}

// New checks opt and returns a Manager that is not started. A receiver
// with no name, a duplicate name, a URL that is not http(s) or a secret
// that is not "whsec_<base64>" is refused with an error naming it.
func New(st Store, src Source, ev Events, opt Options) (*Manager, error) {
	if st == nil || src == nil || ev == nil {
		return nil, errors.New("alert: new: store, source and events are required")
	}
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("alert: new: %w", err)
	}
	m := &Manager{st: st, src: src, ev: ev, opt: opt, log: opt.Logger, lostTimeout: JobLostResolveTimeout,
		http: &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			// A redirect is an answer: 3xx is a failed delivery, and a
			// signed body is never sent to somewhere else.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	seen := map[string]int{}
	for i, r := range opt.Receivers {
		where := fmt.Sprintf("receivers[%d]", i)
		if r.Name != "" {
			where += fmt.Sprintf(" (%s)", r.Name)
		}
		switch {
		case r.Name == "":
			return nil, fmt.Errorf("alert: new: %s: name is required", where)
		case !receiverNameRE.MatchString(r.Name):
			return nil, fmt.Errorf("alert: new: %s: name must be letters, digits, '_', '.' and '-'", where)
		}
		if j, dup := seen[r.Name]; dup {
			return nil, fmt.Errorf("alert: new: %s: duplicate name (also receivers[%d])", where, j)
		}
		seen[r.Name] = i
		if err := checkURL(r.URL); err != nil {
			return nil, fmt.Errorf("alert: new: %s: url: %w", where, err)
		}
		key, err := ParseSecret(r.Secret)
		if err != nil {
			return nil, fmt.Errorf("alert: new: %s: %w", where, err)
		}
		if r.Timeout < 0 {
			return nil, fmt.Errorf("alert: new: %s: timeout %v must not be negative", where, r.Timeout)
		}
		if r.Timeout == 0 {
			r.Timeout = TimeoutDefault
		}
		br, err := breaker.New("alert receiver "+r.Name, opt.Breaker)
		if err != nil {
			return nil, fmt.Errorf("alert: new: %s: breaker: %w", where, err)
		}
		m.recv = append(m.recv, &receiver{Receiver: r, key: key, br: br, wake: make(chan struct{}, 1)})
	}
	return m, nil
}

func (o Options) withDefaults() Options {
	if o.RepeatInterval == 0 {
		o.RepeatInterval = RepeatIntervalDefault
	}
	if o.QueueThreshold == 0 {
		o.QueueThreshold = QueueThresholdDefault
	}
	if o.DegradedFor == 0 {
		o.DegradedFor = DegradedForDefault
	}
	if o.EvalInterval == 0 {
		o.EvalInterval = EvalIntervalDefault
	}
	if o.Backoff == 0 {
		o.Backoff = BackoffDefault
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = max(MaxBackoffDefault, o.Backoff)
	}
	if reflect.ValueOf(o.Breaker).IsZero() {
		o.Breaker = BreakerDefault
	}
	if o.Breaker.Classify == nil {
		o.Breaker.Classify = classify
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func (o Options) validate() error {
	switch {
	case o.RepeatInterval < 0:
		return fmt.Errorf("repeat interval %v must not be negative", o.RepeatInterval)
	case !(o.QueueThreshold > 0 && o.QueueThreshold <= 1):
		return fmt.Errorf("queue threshold %v must be more than 0 and at most 1", o.QueueThreshold)
	case o.EvalInterval < 0:
		return fmt.Errorf("eval interval %v must not be negative", o.EvalInterval)
	case o.Backoff < 0:
		return fmt.Errorf("backoff %v must not be negative", o.Backoff)
	case o.MaxBackoff < o.Backoff:
		return fmt.Errorf("max backoff %v must be at least backoff %v", o.MaxBackoff, o.Backoff)
	}
	if o.ExternalURL != "" {
		if err := checkURL(o.ExternalURL); err != nil {
			return fmt.Errorf("external url: %w", err)
		}
	}
	return nil
}

// checkURL accepts an absolute http or https URL with a host.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: %w", redact(s), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%q: must be an http:// or https:// URL with a host", redact(s))
	}
	return nil
}

// redact returns s with any password and query values hidden.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("redacted")
	}
	if u.RawQuery != "" {
		q := u.Query()
		for k := range q {
			q[k] = []string{"redacted"}
		}
		u.RawQuery = q.Encode()
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// Start reads the evaluator's cursor, subscribes to the events from it and
// starts the evaluator and one delivery loop per receiver, which run until
// Stop. It fails if the store cannot be read, or if the Manager was started
// or stopped before.
func (m *Manager) Start(ctx context.Context) error {
	cursor, err := m.st.AlertCursor(ctx)
	if err != nil {
		return fmt.Errorf("alert: start: %w", err)
	}
	if stats, err := m.st.AlertReceiverStats(ctx); err == nil {
		for _, st := range stats {
			known := slices.ContainsFunc(m.recv, func(r *receiver) bool { return r.Name == st.Receiver })
			if !known && st.Pending > 0 {
				m.log.Warn("alerts: notices wait in the outbox for a receiver that is no longer configured; configure it again to deliver them",
					"receiver", st.Receiver, "pending", st.Pending)
			}
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started || m.stopped {
		return errors.New("alert: start: already started or stopped")
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(context.WithoutCancel(ctx))
	m.sub = m.ev.Subscribe(event.Filter{Types: evalTypes}, cursor)
	e := &evaluator{m: m, sub: m.sub, cursor: cursor, stored: cursor}
	m.wg.Add(1 + len(m.recv))
	go func() {
		defer m.wg.Done()
		e.run(ctx)
	}()
	for _, r := range m.recv {
		go func() {
			defer m.wg.Done()
			m.deliverLoop(ctx, r)
		}()
	}
	return nil
}

// Stop ends the evaluator and the delivery loops (an attempt in flight is
// cancelled, and retried by the next Manager), closes the subscription and
// waits for them. Safe to call twice, and before Start.
func (m *Manager) Stop() {
	m.mu.Lock()
	m.stopped = true
	if m.cancel != nil {
		m.cancel()
	}
	if m.sub != nil {
		m.sub.Close()
	}
	m.mu.Unlock()
	m.wg.Wait()
}

// wakeAll tells every delivery loop that notices were enqueued.
func (m *Manager) wakeAll() {
	for _, r := range m.recv {
		select {
		case r.wake <- struct{}{}:
		default:
		}
	}
}

// sleep waits for d, or until ctx ends (false), or wake (if not nil).
func sleep(ctx context.Context, d time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}
