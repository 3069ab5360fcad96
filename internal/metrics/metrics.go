// Package metrics owns fusebox's Prometheus metrics: their names, labels and
// help texts, the registry they live in, and the /metrics handler.
//
// Every metric lives in the registry of one *Metrics (there is no global
// registry and no package-level mutable state), so tests and several servers
// in one process never share counters. The rest of fusebox reports through
// the methods of Metrics; a nil *Metrics is valid and records nothing, so a
// component can be built without metrics.
//
// This package must not import the dispatcher, the fleet, the engine or the
// store: callers translate their own types into the plain strings taken here.
// The alert rules shipped in deploy/prometheus/alerts.yaml use only the
// metric names declared in this file (a test checks it). With promtool on
// the PATH (`make deps-test`), the tests also run `promtool check rules` on them,
// `promtool test rules` on alerts_test.yaml beside them, `promtool check
// config` on the example prometheus.yml, and `promtool check metrics` on a
// live scrape in which every metric has a series.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"fusebox/breaker"
	"fusebox/internal/job"
)

// Breaker states as the value of the fusebox_breaker_state gauge.
const (
	BreakerClosed      = 0 // "closed": calls flow
	BreakerHalfOpen    = 1 // "half-open": a bounded number of probes flow
	BreakerOpen        = 2 // "open": calls are refused until the open time passes
	BreakerForcedOpen  = 3 // "forced-open": an operator isolated the host
	BreakerDisabled    = 4 // "disabled": always closed, still recording
	BreakerMetricsOnly = 5 // "metrics-only": records, never refuses
	BreakerUnknown     = -1
)

// BreakerStateValue returns the gauge value of a breaker state (see the
// Breaker... constants); BreakerUnknown for a state it does not know.
func BreakerStateValue(state breaker.State) float64 {
	switch state {
	case breaker.StateClosed:
		return BreakerClosed
	case breaker.StateHalfOpen:
		return BreakerHalfOpen
	case breaker.StateOpen:
		return BreakerOpen
	case breaker.StateForcedOpen:
		return BreakerForcedOpen
	case breaker.StateDisabled:
		return BreakerDisabled
	case breaker.StateMetricsOnly:
		return BreakerMetricsOnly
	}
	return BreakerUnknown
}

// HostStates are the host states fusebox_host_state reports for every host
// (the fleet's HostState values): one series per state, 1 for the current
// state and 0 for the others.
var hostStates = [...]string{"healthy", "degraded", "unavailable", "probing", "isolated", "draining"}

// Reasons passed to JobRejected.
const (
	RejectQueueFull = "queue_full"
	RejectInvalid   = "invalid"
	RejectDuplicate = "duplicate"
	RejectNoHost    = "no_host" // no configured host matches the job's constraints
)

// Metrics holds every fusebox metric in its own registry. Its methods are
// safe for concurrent use, and do nothing on a nil *Metrics.
type Metrics struct {
	reg *prometheus.Registry

	jobsSubmitted      prometheus.Counter
	jobsFinished       *prometheus.CounterVec   // state
	jobsRejected       *prometheus.CounterVec   // reason
	jobsPlaced         *prometheus.CounterVec   // host
	dockerCallDuration *prometheus.HistogramVec // host, op
	dockerCallErrors   *prometheus.CounterVec   // host, op, class
	breakerTransitions *prometheus.CounterVec   // host, from, to
	breakerState       *prometheus.GaugeVec     // host
	hostState          *prometheus.GaugeVec     // host, state
	hostDegradation    *prometheus.GaugeVec     // host, mode
	httpRequests       *prometheus.CounterVec   // route, code
	httpDuration       *prometheus.HistogramVec // route
	events             *prometheus.CounterVec   // type
	alertDeliveries    *prometheus.CounterVec   // receiver, result
	alertDuration      *prometheus.HistogramVec // receiver
	alertPending       *prometheus.GaugeVec     // receiver

	queueFunc     atomic.Pointer[func() (queued, running int)]
	queueCapacity atomic.Int64

	mu         sync.Mutex
	hostStateM map[string]string // host -> state last set, for states outside hostStates
}

// New returns a Metrics with every fusebox metric registered, plus the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), hostStateM: map[string]string{}}
	m.jobsSubmitted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "fusebox_jobs_submitted_total",
		Help: "Jobs accepted into the queue (an idempotent resubmission is not counted again).",
	})
	m.jobsFinished = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_jobs_finished_total",
		Help: "Jobs that reached a terminal state, by state (succeeded, failed, timed_out, cancelled, lost).",
	}, []string{"state"})
	m.jobsRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_jobs_rejected_total",
		Help: "Submissions refused, by reason (queue_full, invalid, duplicate, no_host).",
	}, []string{"reason"})
	m.jobsPlaced = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_jobs_placed_total",
		Help: "Launch attempts placed on each host.",
	}, []string{"host"})
	m.dockerCallDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fusebox_docker_call_duration_seconds",
		Help:    "Duration of bounded Docker API calls, by host and operation.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	}, []string{"host", "op"})
	m.dockerCallErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_docker_call_errors_total",
		Help: "Failed Docker API calls, by host, operation and class (host: counts against the host's breaker; job: the job's fault; ignored: nobody's).",
	}, []string{"host", "op", "class"})
	m.breakerTransitions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_breaker_transitions_total",
		Help: "Circuit breaker state changes, by host and from/to state.",
	}, []string{"host", "from", "to"})
	m.breakerState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fusebox_breaker_state",
		Help: "Current breaker state of each host: 0 closed, 1 half-open, 2 open, 3 forced-open, 4 disabled, 5 metrics-only, -1 unknown.",
	}, []string{"host"})
	m.hostState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fusebox_host_state",
		Help: "1 for the current state of each host, 0 for its other states (healthy, degraded, unavailable, probing, isolated, draining).",
	}, []string{"host", "state"})
	m.hostDegradation = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fusebox_host_degradation",
		Help: "1 for each mode of graceful degradation in force on a host (logs_deferred, polls_stretched, monitoring_shed), 0 for the others.",
	}, []string{"host", "mode"})
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_http_requests_total",
		Help: "HTTP API requests, by route pattern and status code.",
	}, []string{"route", "code"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fusebox_http_request_duration_seconds",
		Help:    "Duration of HTTP API requests (log follows excluded), by route pattern.",
		Buckets: prometheus.DefBuckets,
	}, []string{"route"})
	m.events = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_events_total",
		Help: "Events appended to the event log, by type (job.transition, host.breaker, host.state, operator.action, ...).",
	}, []string{"type"})
	m.alertDeliveries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "fusebox_alert_deliveries_total",
		Help: "Alert webhook delivery attempts, by receiver and result (ok: the receiver answered 2xx; error: anything else).",
	}, []string{"receiver", "result"})
	m.alertDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "fusebox_alert_delivery_duration_seconds",
		Help:    "Duration of alert webhook delivery attempts, failed ones included, by receiver.",
		Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"receiver"})
	m.alertPending = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "fusebox_alert_pending",
		Help: "Alert notices waiting in the outbox for delivery, by receiver.",
	}, []string{"receiver"})
	queueDepth := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fusebox_queue_depth",
		Help: "Jobs waiting in the queue (state queued).",
	}, func() float64 { q, _ := m.queue(); return float64(q) })
	jobsRunning := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fusebox_jobs_running",
		Help: "Jobs launching or running on a host.",
	}, func() float64 { _, r := m.queue(); return float64(r) })
	queueCapacity := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "fusebox_queue_capacity",
		Help: "The queue bound: submissions past this many queued jobs are refused (0: unbounded).",
	}, func() float64 { return float64(m.queueCapacity.Load()) })

	m.reg.MustRegister(
		m.jobsSubmitted, m.jobsFinished, m.jobsRejected, m.jobsPlaced,
		m.dockerCallDuration, m.dockerCallErrors,
		m.breakerTransitions, m.breakerState, m.hostState, m.hostDegradation,
		m.httpRequests, m.httpDuration,
		m.events, m.alertDeliveries, m.alertDuration, m.alertPending,
		queueDepth, jobsRunning, queueCapacity,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	// Series that alerts and rate() need from the start, at zero.
	for _, s := range job.States {
		if s.Terminal() {
			m.jobsFinished.WithLabelValues(string(s))
		}
	}
	for _, r := range []string{RejectQueueFull, RejectInvalid, RejectDuplicate, RejectNoHost} {
		m.jobsRejected.WithLabelValues(r)
	}
	return m
}

// Registry returns the registry holding every metric, for tests and for
// registering more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// JobSubmitted counts a job accepted into the queue.
func (m *Metrics) JobSubmitted() {
	if m == nil {
		return
	}
	m.jobsSubmitted.Inc()
}

// JobFinished counts a job that reached the terminal state s.
func (m *Metrics) JobFinished(s job.State) {
	if m == nil {
		return
	}
	m.jobsFinished.WithLabelValues(string(s)).Inc()
}

// JobRejected counts a refused submission; reason is one of the Reject...
// constants.
func (m *Metrics) JobRejected(reason string) {
	if m == nil {
		return
	}
	m.jobsRejected.WithLabelValues(reason).Inc()
}

// JobPlaced counts a launch attempt placed on host.
func (m *Metrics) JobPlaced(host string) {
	if m == nil {
		return
	}
	m.jobsPlaced.WithLabelValues(host).Inc()
}

// ObserveDockerCall records one bounded Docker API call: its duration, and,
// unless class is "" or "none", an error of that class (engine.Class's
// String: "host", "job", "ignored").
func (m *Metrics) ObserveDockerCall(host, op string, d time.Duration, class string) {
	if m == nil {
		return
	}
	m.dockerCallDuration.WithLabelValues(host, op).Observe(d.Seconds())
	if class != "" && class != "none" {
		m.dockerCallErrors.WithLabelValues(host, op, class).Inc()
	}
}

// BreakerTransition counts a breaker state change of host and sets its
// fusebox_breaker_state gauge to the new state.
func (m *Metrics) BreakerTransition(host string, from, to breaker.State) {
	if m == nil {
		return
	}
	m.breakerTransitions.WithLabelValues(host, from.String(), to.String()).Inc()
	m.breakerState.WithLabelValues(host).Set(BreakerStateValue(to))
}

// SetBreakerState sets host's fusebox_breaker_state gauge without counting a
// transition (at startup, before any change).
func (m *Metrics) SetBreakerState(host string, state breaker.State) {
	if m == nil {
		return
	}
	m.breakerState.WithLabelValues(host).Set(BreakerStateValue(state))
}

// HostUp sets fusebox_host_state for host: 1 for state, 0 for every other
// known state (a state outside the known ones gets its own series, reset to
// 0 when the host leaves it).
func (m *Metrics) HostUp(host, state string) {
	if m == nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	known := false
	for _, s := range hostStates {
		v := 0.0
		if s == state {
			v, known = 1, true
		}
		m.hostState.WithLabelValues(host, s).Set(v)
	}
	if prev, ok := m.hostStateM[host]; ok && prev != state {
		m.hostState.DeleteLabelValues(host, prev)
		delete(m.hostStateM, host)
	}
	if !known {
		m.hostState.WithLabelValues(host, state).Set(1)
		m.hostStateM[host] = state
	}
}

// HostDegradation sets fusebox_host_degradation for host: 1 for each of
// all (every mode there is) that is in on, 0 for the others.
func (m *Metrics) HostDegradation(host string, all, on []string) {
	if m == nil {
		return
	}
	for _, mode := range all {
		v := 0.0
		for _, o := range on {
			if o == mode {
				v = 1
			}
		}
		m.hostDegradation.WithLabelValues(host, mode).Set(v)
	}
}

// SetQueueFunc sets the function read at every scrape for
// fusebox_queue_depth (queued) and fusebox_jobs_running (running). It must
// be fast and must not block; until it is set both read 0.
func (m *Metrics) SetQueueFunc(f func() (queued, running int)) {
	if m == nil {
		return
	}
	m.queueFunc.Store(&f)
}

// SetQueueCapacity sets fusebox_queue_capacity, the queue bound (0: none).
func (m *Metrics) SetQueueCapacity(n int) {
	if m == nil {
		return
	}
	m.queueCapacity.Store(int64(n))
}

func (m *Metrics) queue() (queued, running int) {
	if f := m.queueFunc.Load(); f != nil && *f != nil {
		return (*f)()
	}
	return 0, 0
}

// ObserveHTTPRequest records one API request: route is the mux pattern
// ("GET /v1/jobs/{id}"), never the raw path, so the label stays bounded.
// Streaming requests (log follows) should pass d = 0 to skip the histogram.
func (m *Metrics) ObserveHTTPRequest(route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	m.httpRequests.WithLabelValues(route, strconv.Itoa(code)).Inc()
	if d > 0 {
		m.httpDuration.WithLabelValues(route).Observe(d.Seconds())
	}
}

// EventAppended counts an event of type typ (event.Type...) appended to the
// event log.
func (m *Metrics) EventAppended(typ string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(typ).Inc()
}

// Delivery results, the result label of fusebox_alert_deliveries_total.
const (
	DeliveryOK    = "ok"
	DeliveryError = "error"
)

// Delivered records one alert delivery attempt to receiver: its result (ok:
// the receiver accepted it) and how long it took. Both result series of a
// receiver exist from its first attempt, so rate() over either works.
// With Pending it makes *Metrics an alert.Observer.
func (m *Metrics) Delivered(receiver string, ok bool, d time.Duration) {
	if m == nil {
		return
	}
	okC := m.alertDeliveries.WithLabelValues(receiver, DeliveryOK)
	errC := m.alertDeliveries.WithLabelValues(receiver, DeliveryError)
	if ok {
		okC.Inc()
	} else {
		errC.Inc()
	}
	m.alertDuration.WithLabelValues(receiver).Observe(d.Seconds())
}

// Pending sets fusebox_alert_pending for receiver: the notices waiting in
// its outbox (0 once it has caught up; the series stays).
func (m *Metrics) Pending(receiver string, n int) {
	if m == nil {
		return
	}
	m.alertPending.WithLabelValues(receiver).Set(float64(n))
}
