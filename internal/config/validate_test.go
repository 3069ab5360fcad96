package config

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// problemCase is a file with one problem: where it must be reported and what
// the message must say.
type problemCase struct {
	name  string
	yaml  string
	line  int    // the line the problem must name
	field string // the field path it must name
	msg   string // a part of the message
}

func (tt problemCase) check(t *testing.T, env map[string]string) {
	t.Helper()
	ps := problemsOf(t, tt.yaml, env)
	for _, p := range ps {
		if p.Field == tt.field && strings.Contains(p.Message, tt.msg) {
			prefix := fmt.Sprintf("fusebox.yaml:%d:", tt.line)
			if p.Line != tt.line || !strings.HasPrefix(p.String(), prefix) {
				t.Errorf("problem %q: want it at line %d", p, tt.line)
			}
			if !strings.Contains(p.String(), tt.field+": ") {
				t.Errorf("problem %q does not name the field %s", p, tt.field)
			}
			if len(ps) > 1 {
				t.Errorf("want one problem, got %d:\n%v", len(ps), ps)
			}
			return
		}
	}
	t.Errorf("no problem for %s containing %q; got:\n%v", tt.field, tt.msg, ps)
}

// host is a valid hosts section with extra lines for its one host, which
// start on line 4.
func host(extra string) string {
	return "hosts:\n  - name: h1\n    address: unix:///a.sock\n" + extra
}

func TestValidationRules(t *testing.T) {
	tests := []problemCase{
		{"listen not host:port", "listen: nope\n", 1, "listen", "must be host:port"},
		{"listen bad port", "listen: 127.0.0.1:99999\n", 1, "listen", "port from 0 to 65535"},
		{"data_dir empty", "data_dir: \"\"\n", 1, "data_dir", "must not be empty"},
		{"database postgres", "database: postgres://fb@db/fusebox\n", 1, "database", "postgres is not supported yet"},
		{"database unknown", "database: mysql://x/y\n", 1, "database", `unknown database "mysql://"`},
		{"database sqlite no path", "database: \"sqlite://\"\n", 1, "database", "needs a file path"},
		{"log_level", "log_level: verbose\n", 1, "log_level", `must be one of debug, info, warn, error (got "verbose")`},

		{"no hosts", "hosts: []\n", 1, "hosts", "at least one host"},
		{"host name missing", "hosts:\n  - address: unix:///a.sock\n", 2, "hosts[0].name", "is required"},
		{"host name upper case", "hosts:\n  - name: Bad\n    address: unix:///a.sock\n", 2, "hosts[0].name", `(got "Bad")`},
		{"host name starts with -", "hosts:\n  - name: -a\n    address: unix:///a.sock\n", 2, "hosts[0].name", "starting with a letter or digit"},
		{"host name too long", "hosts:\n  - name: " + strings.Repeat("a", 64) + "\n    address: unix:///a.sock\n", 2, "hosts[0].name", "at most 63 characters"},
		{"duplicate host names", host("  - name: h1\n    address: unix:///b.sock\n"), 4, "hosts[1].name", `duplicate host name "h1" (also hosts[0])`},
		{"address missing", "hosts:\n  - name: h1\n", 2, "hosts[0].address", "is required"},
		{"address empty", "hosts:\n  - name: h1\n    address: \"\"\n", 3, "hosts[0].address", "is required"},
		{"address no scheme", "hosts:\n  - name: h1\n    address: 10.0.0.1:2375\n", 3, "hosts[0].address", "must be unix:///path/to/docker.sock or tcp://host:port"},
		{"address ssh", "hosts:\n  - name: h1\n    address: ssh://me@box\n", 3, "hosts[0].address", "ssh:// is not supported"},
		{"address http", "hosts:\n  - name: h1\n    address: https://box:2376\n", 3, "hosts[0].address", "use tcp://host:port"},
		{"address npipe", "hosts:\n  - name: h1\n    address: npipe:////./pipe/docker_engine\n", 3, "hosts[0].address", "must be unix:///"},
		{"unix relative", "hosts:\n  - name: h1\n    address: unix://var/run/docker.sock\n", 3, "hosts[0].address", "absolute path"},
		{"tcp no port", "hosts:\n  - name: h1\n    address: tcp://10.0.0.1\n", 3, "hosts[0].address", "needs host:port"},
		{"tcp port 0", "hosts:\n  - name: h1\n    address: tcp://10.0.0.1:0\n", 3, "hosts[0].address", "port from 1 to 65535"},
		{"tcp with path", "hosts:\n  - name: h1\n    address: tcp://10.0.0.1:2375/v1\n", 3, "hosts[0].address", "just tcp://host:port"},
		{"duplicate address", host("  - name: h2\n    address: unix:///x/../a.sock\n"), 5, "hosts[1].address", "same Docker engine as hosts[0] (h1)"},
		{"tls with unix", host("    tls:\n      ca: /ca.pem\n"), 4, "hosts[0].tls", "only for tcp://"},
		{"cert without key", "hosts:\n  - name: h1\n    address: tcp://h:2376\n    tls:\n      cert: /c.pem\n", 4, "hosts[0].tls.key", "is required with tls.cert"},
		{"key without cert", "hosts:\n  - name: h1\n    address: tcp://h:2376\n    tls:\n      key: /k.pem\n", 4, "hosts[0].tls.cert", "is required with tls.key"},
		{"label name empty", host("    labels: {\"\": x}\n"), 4, "hosts[0].labels", "must not be empty"},
		{"capacity 0", host("    capacity: 0\n"), 4, "hosts[0].capacity", "must be at least 1 (got 0)"},
		{"capacity negative", host("    capacity: -2\n"), 4, "hosts[0].capacity", "must be at least 1 (got -2)"},
		{"weight 0", host("    weight: 0\n"), 4, "hosts[0].weight", "must be more than 0 (got 0)"},
		{"weight negative", host("    weight: -0.5\n"), 4, "hosts[0].weight", "must be more than 0 (got -0.5)"},
		{"weight huge", host("    weight: 1e300\n"), 4, "hosts[0].weight", "must be at most"},
		{"weight huge int", host("    weight: 2000000\n"), 4, "hosts[0].weight", "must be at most 1000000 (got 2000000)"},
		{"weight quoted", host("    weight: \"1.5\"\n"), 4, "hosts[0].weight", `must be a number (got "1.5")`},
		{"weight too large to read", host("    weight: 1e400\n"), 4, "hosts[0].weight", `must be a number (got "1e400")`},

		{"failure_threshold", "circuit_breaker:\n  failure_threshold: 0\n", 2, "circuit_breaker.failure_threshold", "at least 1 (got 0)"},
		{"recovery_timeout negative", "circuit_breaker:\n  recovery_timeout: -1s\n", 2, "circuit_breaker.recovery_timeout", "must not be negative (got -1s)"},
		{"recovery_timeout zero", "circuit_breaker:\n  recovery_timeout: 0s\n", 2, "circuit_breaker.recovery_timeout", "must be more than 0"},
		{"max below recovery", "circuit_breaker:\n  recovery_timeout: 2m\n  max_recovery_timeout: 1m\n", 3, "circuit_breaker.max_recovery_timeout", "must be at least recovery_timeout (2m) (got 1m)"},
		{"recovery above default max", "circuit_breaker:\n  recovery_timeout: 20m\n", 2, "circuit_breaker.recovery_timeout", "must be at most max_recovery_timeout (10m) (got 20m)"},
		{"breaker jitter", "circuit_breaker:\n  jitter: 1.5\n", 2, "circuit_breaker.jitter", "between 0 and 1 (got 1.5)"},
		{"breaker jitter negative", "circuit_breaker:\n  jitter: -0.1\n", 2, "circuit_breaker.jitter", "between 0 and 1 (got -0.1)"},
		{"half_open_timeout", "circuit_breaker:\n  half_open_timeout: 0s\n", 2, "circuit_breaker.half_open_timeout", "more than 0"},
		{"half_open_max_probes", "circuit_breaker:\n  half_open_max_probes: 0\n", 2, "circuit_breaker.half_open_max_probes", "at least 1"},
		{"success_threshold", "circuit_breaker:\n  success_threshold: -1\n", 2, "circuit_breaker.success_threshold", "at least 1"},
		{"probe_timeout", "circuit_breaker:\n  probe_timeout: -1m\n", 2, "circuit_breaker.probe_timeout", "must not be negative"},
		{"failure_rate threshold 0", "circuit_breaker:\n  failure_rate:\n    threshold: 0\n", 3, "circuit_breaker.failure_rate.threshold", "more than 0 and at most 1"},
		{"failure_rate threshold 1.5", "circuit_breaker:\n  failure_rate:\n    threshold: 1.5\n", 3, "circuit_breaker.failure_rate.threshold", "(got 1.5)"},
		{"failure_rate window", "circuit_breaker:\n  failure_rate:\n    window: 0s\n", 3, "circuit_breaker.failure_rate.window", "more than 0"},
		{"failure_rate min_calls", "circuit_breaker:\n  failure_rate:\n    min_calls: 0\n", 3, "circuit_breaker.failure_rate.min_calls", "at least 1"},
		{"slow_call duration", "circuit_breaker:\n  slow_call:\n    duration: 0s\n", 3, "circuit_breaker.slow_call.duration", "more than 0"},
		{"slow_call rate", "circuit_breaker:\n  slow_call:\n    rate: 2\n", 3, "circuit_breaker.slow_call.rate", "(got 2)"},
		{"slow_call min_calls", "circuit_breaker:\n  slow_call:\n    min_calls: -1\n", 3, "circuit_breaker.slow_call.min_calls", "at least 1"},

		{"health interval", "health_check:\n  interval: 0s\n", 2, "health_check.interval", "more than 0"},
		{"health timeout", "health_check:\n  timeout: -2s\n", 2, "health_check.timeout", "must not be negative"},
		{"health timeout above interval", "health_check:\n  interval: 5s\n  timeout: 10s\n", 2, "health_check.interval", "must be at least timeout (10s) (got 5s)"},
		{"health timeout above default interval", "health_check:\n  timeout: 1m\n", 2, "health_check.timeout", "must be at most interval (1s) (got 1m)"},
		{"unhealthy_interval", "health_check:\n  unhealthy_interval: 0s\n", 2, "health_check.unhealthy_interval", "more than 0"},
		{"unhealthy_interval above interval", "health_check:\n  unhealthy_interval: 2s\n", 2, "health_check.unhealthy_interval", "must be at most interval (1s) (got 2s)"},
		{"base_ejection_time", "health_check:\n  base_ejection_time: -5s\n", 2, "health_check.base_ejection_time", "must not be negative"},
		{"health jitter", "health_check:\n  jitter: 2\n", 2, "health_check.jitter", "between 0 and 1"},
		{"healthy_threshold", "health_check:\n  healthy_threshold: 0\n", 2, "health_check.healthy_threshold", "at least 1"},
		{"unhealthy_threshold", "health_check:\n  unhealthy_threshold: 0\n", 2, "health_check.unhealthy_threshold", "at least 1"},
		{"canary without image", "health_check:\n  canary:\n    enabled: true\n", 2, "health_check.canary.image", "is required when canary is enabled"},
		{"canary interval", "health_check:\n  canary:\n    interval: 0s\n", 3, "health_check.canary.interval", "more than 0"},

		{"max_queued_jobs", "queue:\n  max_queued_jobs: 0\n", 2, "queue.max_queued_jobs", "at least 1 (got 0)"},
		{"max_ejected_percent high", "graceful_degradation:\n  max_ejected_percent: 101\n", 2, "graceful_degradation.max_ejected_percent", "between 0 and 100 (got 101)"},
		{"max_ejected_percent low", "graceful_degradation:\n  max_ejected_percent: -1\n", 2, "graceful_degradation.max_ejected_percent", "between 0 and 100"},
		{"retry max_attempts", "retry:\n  max_attempts: 0\n", 2, "retry.max_attempts", "at least 1"},
		{"retry backoff", "retry:\n  backoff: 0s\n", 2, "retry.backoff", "more than 0"},
		{"retry max_backoff below backoff", "retry:\n  backoff: 10s\n  max_backoff: 5s\n", 3, "retry.max_backoff", "must be at least backoff (10s) (got 5s)"},
		{"retry jitter", "retry:\n  jitter: -1\n", 2, "retry.jitter", "between 0 and 1"},
		{"lost_host after", "lost_host:\n  after: 0s\n", 2, "lost_host.after", "more than 0"},
		{"lost_host policy", "lost_host:\n  policy: retry\n", 2, "lost_host.policy", `must be reschedule or lost (got "retry")`},
		{"logs max_bytes 0", "logs:\n  max_bytes: 0\n", 2, "logs.max_bytes", "at least 1 byte"},
		{"logs max_bytes negative", "logs:\n  max_bytes: -1KiB\n", 2, "logs.max_bytes", "must not be negative"},
		{"docker ping", "docker_timeouts:\n  ping: 0s\n", 2, "docker_timeouts.ping", "more than 0"},
		{"docker image_pull", "docker_timeouts:\n  image_pull: -1s\n", 2, "docker_timeouts.image_pull", "must not be negative"},
		{"poll_interval", "poll_interval: 0s\n", 1, "poll_interval", "more than 0"},
		{"stop_grace_period", "stop_grace_period: -1s\n", 1, "stop_grace_period", "must not be negative"},
		{"retention", "retention: -1h\n", 1, "retention", "must not be negative (got -1h); 0 keeps finished jobs forever"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, nil) })
	}
}

func TestTypeErrors(t *testing.T) {
	tests := []problemCase{
		{"int from word", host("    capacity: four\n"), 4, "hosts[0].capacity", `must be a whole number (got "four")`},
		{"int from quoted number", host("    capacity: \"4\"\n"), 4, "hosts[0].capacity", `must be a whole number (got "4")`},
		{"int from float", host("    capacity: 4.5\n"), 4, "hosts[0].capacity", "must be a whole number (got 4.5)"},
		{"int too large", host("    capacity: 18446744073709551615\n"), 4, "hosts[0].capacity", "too large"},
		{"float from word", host("    weight: heavy\n"), 4, "hosts[0].weight", `must be a number (got "heavy")`},
		{"float from inf", host("    weight: .inf\n"), 4, "hosts[0].weight", "must be a number (got .inf)"},
		{"bool from yes", "circuit_breaker:\n  enabled: yes\n", 2, "circuit_breaker.enabled", `must be true or false (got "yes")`},
		{"bool from number", "circuit_breaker:\n  enabled: 1\n", 2, "circuit_breaker.enabled", "must be true or false (got 1)"},
		{"string from list", "listen: [a, b]\n", 1, "listen", "must be a string (got a list)"},
		{"string from mapping", "listen:\n  host: a\n", 2, "listen", "must be a string (got a mapping)"},
		{"duration bare number", "circuit_breaker:\n  recovery_timeout: 30\n", 2, "circuit_breaker.recovery_timeout", `needs a unit: write "30s"`},
		{"duration bare float", "poll_interval: 1.5\n", 1, "poll_interval", `needs a unit: write "1.5s"`},
		{"duration quoted bare number", "poll_interval: \"2\"\n", 1, "poll_interval", `needs a unit: write "2s"`},
		{"duration word", "poll_interval: often\n", 1, "poll_interval", `must be a duration such as "30s"`},
		{"duration list", "poll_interval: [1s]\n", 1, "poll_interval", `must be a duration such as "30s" (got a list)`},
		{"size word", "logs:\n  max_bytes: lots\n", 2, "logs.max_bytes", "must be a size like"},
		{"size bad unit", "logs:\n  max_bytes: 1XB\n", 2, "logs.max_bytes", "must be a size like"},
		{"section not a mapping", "circuit_breaker: 5\n", 1, "circuit_breaker", "must be a mapping of settings (got 5)"},
		{"optional section not a mapping", "circuit_breaker:\n  failure_rate: true\n", 2, "circuit_breaker.failure_rate", "must be a mapping of settings (or null to leave it off)"},
		{"hosts not a list", "hosts:\n  name: h1\n", 2, "hosts", "must be a list (got a mapping)"},
		{"host not a mapping", "hosts:\n  - h1\n", 2, "hosts[0]", `must be a mapping of settings (got "h1")`},
		{"labels not a mapping", host("    labels: [a]\n"), 4, "hosts[0].labels", "must be a mapping of names to strings"},
		{"label value a list", host("    labels:\n      zone: [a]\n"), 5, "hosts[0].labels.zone", "must be a string (got a list)"},
		{"policy list", "lost_host:\n  policy: [lost]\n", 2, "lost_host.policy", "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, nil) })
	}
}

func TestUnknownFields(t *testing.T) {
	tests := []problemCase{
		{"typo in section", "circuit_breaker:\n  failure_treshold: 3\n", 2, "circuit_breaker.failure_treshold", "unknown field; did you mean failure_threshold?"},
		{"typo of alias", "circuit_breaker:\n  reset_timout: 3s\n", 2, "circuit_breaker.reset_timout", "did you mean reset_timeout?"},
		{"typo in host", host("    capacty: 3\n"), 4, "hosts[0].capacty", "did you mean capacity?"},
		{"typo of section", "circuit_breakers:\n  enabled: true\n", 1, "circuit_breakers", "did you mean circuit_breaker?"},
		{"wrong case", "Listen: :7070\n", 1, "Listen", "did you mean listen?"},
		{"in the wrong section", "failure_threshold: 3\n", 1, "failure_threshold", "failure_threshold belongs in one of circuit_breaker.failure_threshold, workflows.circuit_breaker.failure_threshold"},
		{"in the wrong section, one place", "recovery_timeout: 3s\n", 1, "recovery_timeout", "did you mean circuit_breaker.recovery_timeout?"},
		{"host key at top", "capacity: 3\n", 1, "capacity", "did you mean hosts[].capacity?"},
		{"ambiguous", "jitter: 0.1\n", 1, "jitter", "jitter belongs in one of circuit_breaker.jitter, health_check.jitter, retry.jitter"},
		{"elsewhere", "timeout: 3s\n", 1, "timeout", "timeout belongs in one of health_check.timeout, alerts.receivers[].timeout"},
		{"elsewhere, once", "canary:\n  enabled: true\n", 1, "canary", "did you mean health_check.canary?"},
		{"nothing close", "colour: blue\n", 1, "colour", "unknown field"},
		{"in tls", "hosts:\n  - name: h1\n    address: tcp://h:1\n    tls:\n      ca_file: /ca.pem\n", 5, "hosts[0].tls.ca_file", "unknown field"},
		{"in a merged mapping", "x-h: &h\n  capcity: 3\nhosts:\n  - <<: *h\n    name: a\n    address: unix:///a.sock\n", 2, "hosts[0].capcity", "did you mean capacity?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, nil) })
	}
	// No suggestion when nothing is close.
	ps := problemsOf(t, "colour: blue\n", nil)
	if strings.Contains(ps[0].Message, "did you mean") {
		t.Errorf("unexpected suggestion: %q", ps[0])
	}
}

func TestDuplicatesAndAliasConflicts(t *testing.T) {
	tests := []problemCase{
		{"duplicate key", "listen: :1\nlisten: :2\n", 2, "listen", "duplicate key (first set on line 1)"},
		{"duplicate label", host("    labels:\n      a: x\n      a: y\n"), 6, "hosts[0].labels.a", "duplicate key (first set on line 5)"},
		{"reset_timeout and recovery_timeout", "circuit_breaker:\n  recovery_timeout: 1m\n  reset_timeout: 2m\n", 3, "circuit_breaker.recovery_timeout", "recovery_timeout (line 2) and reset_timeout (line 3) are the same setting"},
		{"top-level max_queued_jobs and queue.max_queued_jobs", "queue:\n  max_queued_jobs: 10\nmax_queued_jobs: 20\n", 3, "queue.max_queued_jobs", "max_queued_jobs (line 3) and queue.max_queued_jobs (line 2) are the same setting"},
		{"top-level alias twice", "max_queued_jobs: 20\nmax_queued_jobs: 10\n", 2, "queue.max_queued_jobs", "duplicate key max_queued_jobs (first set on line 1)"},
		{"top-level alias first", "max_queued_jobs: 20\nqueue:\n  max_queued_jobs: 10\n", 1, "queue.max_queued_jobs", "are the same setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.check(t, nil) })
	}
}

func TestAliases(t *testing.T) {
	c := mustParse(t, "circuit_breaker:\n  reset_timeout: 45s\n", nil)
	if c.CircuitBreaker.RecoveryTimeout.String() != "45s" {
		t.Errorf("reset_timeout: recovery timeout = %v", c.CircuitBreaker.RecoveryTimeout)
	}
	c = mustParse(t, "max_queued_jobs: 7\n", nil)
	if c.Queue.MaxQueuedJobs != 7 {
		t.Errorf("top-level max_queued_jobs: max queued jobs = %d", c.Queue.MaxQueuedJobs)
	}
	// The alias is validated under its real name, at its own line.
	ps := problemsOf(t, "listen: :1\nmax_queued_jobs: 0\n", nil)
	if got, want := ps[0].String(), "fusebox.yaml:2:18: queue.max_queued_jobs: must be at least 1 (got 0)"; got != want {
		t.Errorf("problem = %q, want %q", got, want)
	}
}

func TestMalformedYAML(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		line int
		msg  string
	}{
		{"unclosed flow sequence", "listen: :1\nhosts: [a,\nqueue: {}\n", 2, "invalid YAML"},
		{"bad indentation", "circuit_breaker:\n  enabled: true\n jitter: 0.1\n", 3, "invalid YAML"},
		{"mapping in a scalar", "listen: a: b\n", 1, "invalid YAML"},
		{"unterminated quote", "listen: :1\nlog_level: info\ndata_dir: \"/x\n", 3, "invalid YAML"},
		{"tab indentation", "circuit_breaker:\n\tenabled: true\n", 2, "invalid YAML"},
		{"two documents", "listen: :1\n---\nlog_level: info\n", 3, "only one YAML document is allowed"},
		{"a list at the top", "- a\n- b\n", 1, "must be a mapping of settings (got a list)"},
		{"a string at the top", "hello\n", 1, `must be a mapping of settings (got "hello")`},
		{"unknown anchor", "listen: :1\nhosts: *nope\n", 2, "unknown anchor *nope"},
		{"bad merge", "hosts:\n  - <<: 5\n    name: a\n", 2, "<< must merge a mapping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, tt.yaml, nil)
			p := ps[0]
			if p.Line != tt.line || !strings.Contains(p.Message, tt.msg) || !strings.HasPrefix(p.String(), fmt.Sprintf("fusebox.yaml:%d:", tt.line)) {
				t.Errorf("got %q; want line %d and %q", ps, tt.line, tt.msg)
			}
		})
	}
}

func TestEmptyFiles(t *testing.T) {
	for _, yaml := range []string{"", "\n\n", "# only a comment\n", "---\n", "\xef\xbb\xbflisten: :7070\n", "~\n"} {
		mustParse(t, yaml, nil)
	}
}

func TestNullKeepsDefaults(t *testing.T) {
	c := mustParse(t, "listen:\nhosts:\ncircuit_breaker:\n  failure_threshold: ~\n  failure_rate: null\nlogs:\n", nil)
	d := mustParse(t, "", nil)
	if c.Listen != d.Listen || len(c.Hosts) != 1 || c.CircuitBreaker.FailureThreshold != FailureThresholdDefault || c.CircuitBreaker.FailureRate != nil || c.Logs != d.Logs {
		t.Errorf("null did not keep the defaults: %+v", c)
	}
}

func TestOptionalSections(t *testing.T) {
	c := mustParse(t, "circuit_breaker:\n  failure_rate: {}\n  slow_call:\n    rate: 0.5\n", nil)
	if fr := c.CircuitBreaker.FailureRate; fr == nil || *fr != DefaultFailureRate() {
		t.Errorf("failure_rate: {} = %+v, want the defaults", fr)
	}
	if sc := c.CircuitBreaker.SlowCall; sc == nil || sc.Rate != 0.5 || sc.Duration != SlowCallDurationDefault || sc.MinCalls != SlowCallMinCallsDefault {
		t.Errorf("slow_call = %+v", sc)
	}
}

func TestHostsAndAnchors(t *testing.T) {
	c := mustParse(t, `x-defaults: &big
  capacity: 8
  labels: {zone: a}
hosts:
  - <<: *big
    name: a
    address: unix:///a.sock
  - <<: *big
    name: b
    address: tcp://10.0.0.2:2376
    capacity: 2
    weight: 0.5
    network_mode: none
    tls:
      ca: /ca.pem
      cert: /cert.pem
      key: /key.pem
  - name: c
    address: tcp://[::1]:2375
    labels:
      gpu: false
      n: 3
      empty:
`, nil)
	want := []Host{
		{Name: "a", Address: "unix:///a.sock", Labels: map[string]string{"zone": "a"}, Capacity: 8, Weight: 1},
		{Name: "b", Address: "tcp://10.0.0.2:2376", Labels: map[string]string{"zone": "a"}, Capacity: 2, Weight: 0.5,
			NetworkMode: "none", TLS: &TLS{CA: "/ca.pem", Cert: "/cert.pem", Key: "/key.pem"}},
		{Name: "c", Address: "tcp://[::1]:2375", Labels: map[string]string{"gpu": "false", "n": "3", "empty": ""}, Capacity: 4, Weight: 1},
	}
	if !reflect.DeepEqual(c.Hosts, want) {
		t.Errorf("hosts:\n got %+v\nwant %+v", c.Hosts, want)
	}
}

func TestEveryProblemIsReported(t *testing.T) {
	yaml := `listen: nope
log_level: loud
hosts:
  - name: h1
    address: ssh://box
    capacity: 0
  - name: h1
    address: unix:///a.sock
    weight: -1
circuit_breaker:
  failure_treshold: 3
  recovery_timeout: 30
  jitter: 2
  failure_rate:
    threshold: 0
queue:
  max_queued_jobs: many
lost_host:
  policy: maybe
poll_interval: 0s
`
	ps := problemsOf(t, yaml, map[string]string{"FUSEBOX_RETRY_MAX_ATTEMPTS": "zero"})
	want := []string{
		"fusebox.yaml:1:9: listen: must be host:port",
		"fusebox.yaml:2:12: log_level: must be one of debug, info, warn, error",
		"fusebox.yaml:5:14: hosts[0].address: ssh:// is not supported",
		"fusebox.yaml:6:15: hosts[0].capacity: must be at least 1 (got 0)",
		"fusebox.yaml:7:11: hosts[1].name: duplicate host name",
		"fusebox.yaml:9:13: hosts[1].weight: must be more than 0 (got -1)",
		"fusebox.yaml:11:3: circuit_breaker.failure_treshold: unknown field; did you mean failure_threshold?",
		"fusebox.yaml:12:21: circuit_breaker.recovery_timeout: needs a unit",
		"fusebox.yaml:13:11: circuit_breaker.jitter: must be between 0 and 1 (got 2)",
		"fusebox.yaml:15:16: circuit_breaker.failure_rate.threshold: must be more than 0 and at most 1",
		"fusebox.yaml:17:20: queue.max_queued_jobs: must be a whole number",
		"fusebox.yaml:19:11: lost_host.policy: must be reschedule or lost",
		"fusebox.yaml:20:16: poll_interval: must be more than 0",
		"$FUSEBOX_RETRY_MAX_ATTEMPTS: retry.max_attempts: must be a whole number (got \"zero\")",
	}
	if len(ps) != len(want) {
		t.Errorf("got %d problems, want %d:\n%v", len(ps), len(want), ps)
	}
	for i := range min(len(ps), len(want)) {
		if !strings.HasPrefix(ps[i].String(), want[i]) {
			t.Errorf("problem %d = %q\n             want %q...", i, ps[i], want[i])
		}
	}
}

func TestValidateWithoutPositions(t *testing.T) {
	c := Default()
	c.Hosts = append(c.Hosts, DefaultHost("", "tcp://x"))
	c.Retry.Jitter = 3
	err := c.Validate()
	ps, ok := err.(Problems)
	if !ok || len(ps) != 3 {
		t.Fatalf("Validate() = %v, want 3 problems", err)
	}
	for _, p := range ps {
		if p.File != "" || p.Line != 0 || p.Env != "" || p.Field == "" {
			t.Errorf("problem %+v: want a field and no position", p)
		}
	}
}

func TestMergeBombIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-a0: &a0 {capacity: 1}\n")
	for i := 1; i <= 40; i++ {
		fmt.Fprintf(&b, "x-a%d: &a%d {<<: [*a%d, *a%d]}\n", i, i, i-1, i-1)
	}
	b.WriteString("hosts:\n  - <<: *a40\n    name: a\n    address: unix:///a.sock\n")
	ps := problemsOf(t, b.String(), nil)
	if !strings.Contains(ps.Error(), "expands to more than") {
		t.Errorf("problems = %v", ps)
	}
}

func TestAuthTokens(t *testing.T) {
	src := "auth:\n  tokens:\n    - name: ci\n      token: short\n      role: boss\n    - token: 0123456789abcdef0123\n      role: admin\n    - token: 0123456789abcdef0123\n      role: read\n"
	_, err := Parse("fusebox.yaml", []byte(src), nil)
	if err == nil {
		t.Fatal("bad tokens accepted")
	}
	for _, want := range []string{
		"fusebox.yaml:4:14: auth.tokens[0].token: must be at least 16 characters",
		"fusebox.yaml:5:13: auth.tokens[0].role: must be one of read, submit, admin",
		"auth.tokens[2].token: is the same as auth.tokens[1].token",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	good := "auth:\n  tokens:\n    - name: ci\n      token: 0123456789abcdef0123\n      role: submit\n"
	c, err := Parse("fusebox.yaml", []byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Auth.Tokens) != 1 || c.Auth.Tokens[0].Role != "submit" || c.Auth.Tokens[0].Name != "ci" {
		t.Fatalf("%+v", c.Auth)
	}
}

func TestAlerts(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	src := "alerts:\n  queue_threshold: 1.5\n  backoff: 10m\n  receivers:\n" +
		"    - name: ops\n      url: https://alerts.example/x\n      secret: " + secret + "\n" +
		"    - name: ops\n      url: ftp://alerts.example/x\n      secret: MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n" +
		"    - url: http://h/\n      secret: whsec_c2hvcnQ=\n      timeout: 0s\n" +
		"    - name: x y\n      url: http://h/\n      secret: whsec_not*base64\n"
	_, err := Parse("fusebox.yaml", []byte(src), nil)
	if err == nil {
		t.Fatal("bad alerts accepted")
	}
	for _, want := range []string{
		"fusebox.yaml:2:20: alerts.queue_threshold: must be more than 0 and at most 1",
		"fusebox.yaml:3:12: alerts.backoff: must be at most max_backoff (5m) (got 10m)",
		`fusebox.yaml:8:13: alerts.receivers[1].name: duplicate receiver name "ops" (also alerts.receivers[0])`,
		"fusebox.yaml:9:12: alerts.receivers[1].url: must be an http:// or https:// URL",
		`fusebox.yaml:10:15: alerts.receivers[1].secret: must start with "whsec_"`,
		"alerts.receivers[2].name: is required",
		"fusebox.yaml:12:15: alerts.receivers[2].secret: the key must be 24 to 64 bytes (got 5)",
		"fusebox.yaml:13:16: alerts.receivers[2].timeout: must be more than 0",
		`alerts.receivers[3].name: must be letters, digits`,
		`alerts.receivers[3].secret: the part after "whsec_" must be base64`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "MfKQ9r8GKYqr") {
		t.Errorf("a problem quotes a secret:\n%v", err)
	}
	good := "alerts:\n  receivers:\n    - name: ops\n      url: https://alerts.example/x\n      secret: " + secret + "\n"
	c, err := Parse("fusebox.yaml", []byte(good), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []AlertReceiver{{Name: "ops", URL: "https://alerts.example/x", Secret: secret, Timeout: AlertReceiverTimeoutDefault}}
	if !reflect.DeepEqual(c.Alerts.Receivers, want) || c.Alerts.RepeatInterval != 4*time.Hour {
		t.Fatalf("%+v", c.Alerts)
	}
}
