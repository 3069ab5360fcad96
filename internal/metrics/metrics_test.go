package metrics_test

import (
	"io"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"fusebox/breaker"
	"fusebox/internal/job"
	"fusebox/internal/metrics"
)

// value returns the value of the one series of name carrying every label
// given as `k="v"`.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, mt := range mf.GetMetric() {
			have := map[string]bool{}
			for _, lp := range mt.GetLabel() {
				have[lp.GetName()+`="`+lp.GetValue()+`"`] = true
			}
			for _, l := range labels {
				if !have[l] {
					continue metric
				}
			}
			switch {
			case mt.Counter != nil:
				return mt.GetCounter().GetValue()
			case mt.Gauge != nil:
				return mt.GetGauge().GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// exerciseAll records something on every metric, so that every fusebox
// family has at least one series in a scrape (TestScrapeCoversEveryFamily
// fails when a new metric is not exercised here).
func exerciseAll(m *metrics.Metrics) {
	m.JobSubmitted()
	m.JobFinished(job.StateSucceeded)
	m.JobRejected(metrics.RejectQueueFull)
	m.JobPlaced("h1")
	m.ObserveDockerCall("h1", "ping", time.Millisecond, "host")
	m.BreakerTransition("h1", breaker.StateClosed, breaker.StateOpen)
	m.HostUp("h1", "healthy")
	m.HostDegradation("h1", []string{"logs_deferred", "polls_stretched", "monitoring_shed"}, []string{"logs_deferred"})
	m.SetQueueFunc(func() (int, int) { return 3, 1 })
	m.SetQueueCapacity(10)
	m.ObserveHTTPRequest("GET /v1/jobs", 200, time.Millisecond)
	m.EventAppended("job.transition")
	m.Delivered("ops", true, 20*time.Millisecond)
	m.Pending("ops", 0)
}

func TestJobCounters(t *testing.T) {
	m := metrics.New()
	m.JobSubmitted()
	m.JobSubmitted()
	m.JobFinished(job.StateSucceeded)
	m.JobFinished(job.StateLost)
	m.JobRejected(metrics.RejectQueueFull)
	m.JobPlaced("h1")
	m.JobPlaced("h1")

	want := `
# HELP fusebox_jobs_finished_total Jobs that reached a terminal state, by state (succeeded, failed, timed_out, cancelled, lost).
# TYPE fusebox_jobs_finished_total counter
fusebox_jobs_finished_total{state="cancelled"} 0
fusebox_jobs_finished_total{state="failed"} 0
fusebox_jobs_finished_total{state="lost"} 1
fusebox_jobs_finished_total{state="succeeded"} 1
fusebox_jobs_finished_total{state="timed_out"} 0
# HELP fusebox_jobs_placed_total Launch attempts placed on each host.
# TYPE fusebox_jobs_placed_total counter
fusebox_jobs_placed_total{host="h1"} 2
# HELP fusebox_jobs_submitted_total Jobs accepted into the queue (an idempotent resubmission is not counted again).
# TYPE fusebox_jobs_submitted_total counter
fusebox_jobs_submitted_total 2
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"fusebox_jobs_finished_total", "fusebox_jobs_placed_total", "fusebox_jobs_submitted_total"); err != nil {
		t.Error(err)
	}
	if got := value(t, m.Registry(), "fusebox_jobs_rejected_total", `reason="queue_full"`); got != 1 {
		t.Errorf("rejected queue_full = %v, want 1", got)
	}
}

func TestDockerCalls(t *testing.T) {
	m := metrics.New()
	m.ObserveDockerCall("h1", "container create", 20*time.Millisecond, "none")
	m.ObserveDockerCall("h1", "container create", 3*time.Second, "host")
	m.ObserveDockerCall("h1", "ping", time.Millisecond, "")
	m.ObserveDockerCall("h2", "container start", time.Millisecond, "job")

	if n := testutil.CollectAndCount(m.Registry(), "fusebox_docker_call_duration_seconds"); n != 3 {
		t.Errorf("duration series = %d, want 3 (h1 create, h1 ping, h2 start)", n)
	}
	want := `
# HELP fusebox_docker_call_errors_total Failed Docker API calls, by host, operation and class (host: counts against the host's breaker; job: the job's fault; ignored: nobody's).
# TYPE fusebox_docker_call_errors_total counter
fusebox_docker_call_errors_total{class="host",host="h1",op="container create"} 1
fusebox_docker_call_errors_total{class="job",host="h2",op="container start"} 1
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want), "fusebox_docker_call_errors_total"); err != nil {
		t.Error(err)
	}
}

func TestBreakerAndHostState(t *testing.T) {
	m := metrics.New()
	m.SetBreakerState("h1", breaker.StateClosed)
	m.BreakerTransition("h1", breaker.StateClosed, breaker.StateOpen)
	m.BreakerTransition("h1", breaker.StateOpen, breaker.StateHalfOpen)
	m.BreakerTransition("h2", breaker.StateClosed, breaker.StateForcedOpen)

	for _, c := range []struct {
		host string
		want float64
	}{{"h1", metrics.BreakerHalfOpen}, {"h2", metrics.BreakerForcedOpen}} {
		if got := value(t, m.Registry(), "fusebox_breaker_state", `host="`+c.host+`"`); got != c.want {
			t.Errorf("breaker_state{%s} = %v, want %v", c.host, got, c.want)
		}
	}
	if got := value(t, m.Registry(), "fusebox_breaker_transitions_total", `from="closed"`, `host="h1"`, `to="open"`); got != 1 {
		t.Errorf("transitions closed->open = %v, want 1", got)
	}

	m.HostUp("h1", "healthy")
	m.HostUp("h1", "unavailable")
	if got := value(t, m.Registry(), "fusebox_host_state", `host="h1"`, `state="unavailable"`); got != 1 {
		t.Errorf("host_state unavailable = %v, want 1", got)
	}
	if got := value(t, m.Registry(), "fusebox_host_state", `host="h1"`, `state="healthy"`); got != 0 {
		t.Errorf("host_state healthy = %v, want 0", got)
	}
	// A state outside the known ones gets its own series, gone once left.
	m.HostUp("h1", "weird")
	if got := value(t, m.Registry(), "fusebox_host_state", `host="h1"`, `state="weird"`); got != 1 {
		t.Errorf("host_state weird = %v, want 1", got)
	}
	m.HostUp("h1", "healthy")
	if n := testutil.CollectAndCount(m.Registry(), "fusebox_host_state"); n != 6 {
		t.Errorf("host_state series = %d, want 6 (one per known state)", n)
	}
}

func TestBreakerStateValue(t *testing.T) {
	for state, want := range map[breaker.State]float64{
		breaker.StateClosed: 0, breaker.StateHalfOpen: 1, breaker.StateOpen: 2, breaker.StateForcedOpen: 3,
		breaker.StateDisabled: 4, breaker.StateMetricsOnly: 5, breaker.State(99): -1,
	} {
		if got := metrics.BreakerStateValue(state); got != want {
			t.Errorf("BreakerStateValue(%s) = %v, want %v", state, got, want)
		}
	}
}

func TestQueueGauges(t *testing.T) {
	m := metrics.New()
	if got := value(t, m.Registry(), "fusebox_queue_depth"); got != 0 {
		t.Errorf("depth before SetQueueFunc = %v, want 0", got)
	}
	m.SetQueueFunc(func() (int, int) { return 7, 3 })
	m.SetQueueCapacity(10)
	for name, want := range map[string]float64{"fusebox_queue_depth": 7, "fusebox_jobs_running": 3, "fusebox_queue_capacity": 10} {
		if got := value(t, m.Registry(), name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
}

func TestHTTPRequests(t *testing.T) {
	m := metrics.New()
	m.ObserveHTTPRequest("GET /v1/jobs", 200, time.Millisecond)
	m.ObserveHTTPRequest("GET /v1/jobs/{id}/logs", 200, 0)
	if got := value(t, m.Registry(), "fusebox_http_requests_total", `code="200"`, `route="GET /v1/jobs"`); got != 1 {
		t.Errorf("requests = %v, want 1", got)
	}
	if n := testutil.CollectAndCount(m.Registry(), "fusebox_http_request_duration_seconds"); n != 1 {
		t.Errorf("duration series = %d, want 1 (streams are not timed)", n)
	}
}

func TestNilMetricsIsANoop(t *testing.T) {
	var m *metrics.Metrics
	m.JobSubmitted()
	m.JobFinished(job.StateFailed)
	m.JobRejected(metrics.RejectInvalid)
	m.JobPlaced("h1")
	m.ObserveDockerCall("h1", "ping", time.Second, "host")
	m.BreakerTransition("h1", breaker.StateClosed, breaker.StateOpen)
	m.SetBreakerState("h1", breaker.StateOpen)
	m.HostUp("h1", "healthy")
	m.HostDegradation("h1", []string{"logs_deferred"}, nil)
	m.SetQueueFunc(func() (int, int) { return 0, 0 })
	m.SetQueueCapacity(1)
	m.ObserveHTTPRequest("GET /", 200, time.Second)
	m.EventAppended("job.transition")
	m.Delivered("ops", false, time.Second)
	m.Pending("ops", 1)
}

// The alert package reports deliveries through this interface
// (alert.Observer); *Metrics must keep satisfying it.
var _ interface {
	Delivered(receiver string, ok bool, d time.Duration)
	Pending(receiver string, n int)
} = (*metrics.Metrics)(nil)

func TestAlertDeliveries(t *testing.T) {
	m := metrics.New()
	m.Delivered("ops", false, 2*time.Second)
	m.Delivered("ops", false, time.Second)
	m.Delivered("ops", true, 30*time.Millisecond)
	m.Delivered("chat", true, 10*time.Millisecond)
	m.Pending("ops", 4)
	m.Pending("chat", 2)
	m.Pending("chat", 0)

	want := `
# HELP fusebox_alert_deliveries_total Alert webhook delivery attempts, by receiver and result (ok: the receiver answered 2xx; error: anything else).
# TYPE fusebox_alert_deliveries_total counter
fusebox_alert_deliveries_total{receiver="chat",result="error"} 0
fusebox_alert_deliveries_total{receiver="chat",result="ok"} 1
fusebox_alert_deliveries_total{receiver="ops",result="error"} 2
fusebox_alert_deliveries_total{receiver="ops",result="ok"} 1
# HELP fusebox_alert_pending Alert notices waiting in the outbox for delivery, by receiver.
# TYPE fusebox_alert_pending gauge
fusebox_alert_pending{receiver="chat"} 0
fusebox_alert_pending{receiver="ops"} 4
`
	if err := testutil.GatherAndCompare(m.Registry(), strings.NewReader(want),
		"fusebox_alert_deliveries_total", "fusebox_alert_pending"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(m.Registry(), "fusebox_alert_delivery_duration_seconds"); n != 2 {
		t.Errorf("delivery duration series = %d, want 2 (ops, chat)", n)
	}
}

func TestEventsAppended(t *testing.T) {
	m := metrics.New()
	m.EventAppended("job.transition")
	m.EventAppended("job.transition")
	m.EventAppended("host.breaker")
	for typ, want := range map[string]float64{"job.transition": 2, "host.breaker": 1} {
		if got := value(t, m.Registry(), "fusebox_events_total", `type="`+typ+`"`); got != want {
			t.Errorf("events_total{type=%q} = %v, want %v", typ, got, want)
		}
	}
}

func TestSeparateRegistries(t *testing.T) {
	a, b := metrics.New(), metrics.New()
	a.JobSubmitted()
	if got := value(t, b.Registry(), "fusebox_jobs_submitted_total"); got != 0 {
		t.Errorf("second Metrics sees the first one's counter: %v", got)
	}
}

func TestHandler(t *testing.T) {
	m := metrics.New()
	m.JobSubmitted()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	if rec.Code != 200 || !strings.Contains(string(body), "fusebox_jobs_submitted_total 1") {
		t.Fatalf("GET /metrics: %d\n%s", rec.Code, body)
	}
	if !strings.Contains(string(body), "go_goroutines") {
		t.Error("runtime metrics missing")
	}
}

// TestLint runs promlint over every fusebox metric (names, units, help).
func TestLint(t *testing.T) {
	m := metrics.New()
	exerciseAll(m)
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		if strings.HasPrefix(p.Metric, "fusebox_") {
			t.Errorf("promlint: %s: %s", p.Metric, p.Text)
		}
	}
}

// TestAlertRules checks that deploy/prometheus/alerts.yaml parses and uses
// only metric names this package registers.
func TestAlertRules(t *testing.T) {
	b, err := os.ReadFile("../../deploy/prometheus/alerts.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.UnmarshalWithOptions(b, &doc, yaml.Strict()); err != nil {
		t.Fatalf("alerts.yaml: %v", err)
	}

	m := metrics.New()
	exerciseAll(m) // every vector produces a series, so Gather lists it
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, mf := range mfs {
		known[mf.GetName()] = true
		if mf.GetType().String() == "HISTOGRAM" { // its series: name_bucket, name_sum, name_count
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				known[mf.GetName()+suffix] = true
			}
		}
	}

	nameRE := regexp.MustCompile(`fusebox_[a-z_]+`)
	want := map[string]bool{
		"FuseboxBreakerOpen": false, "FuseboxAllHostsOut": false, "FuseboxQueueNearlyFull": false, "FuseboxJobsLost": false,
		"FuseboxHostDegraded": false, "FuseboxAlertDeliveryFailing": false, "FuseboxAlertOutboxBacklog": false,
	}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" || r.Expr == "" || r.Annotations["summary"] == "" {
				t.Errorf("rule %q: alert, expr and a summary annotation are required", r.Alert)
			}
			if _, ok := want[r.Alert]; ok {
				want[r.Alert] = true
			}
			for _, name := range nameRE.FindAllString(r.Expr, -1) {
				if !known[name] {
					t.Errorf("rule %s uses %s, which fusebox does not export", r.Alert, name)
				}
			}
		}
	}
	for a, seen := range want {
		if !seen {
			t.Errorf("alert %s missing", a)
		}
	}
}
