package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestEnvOverrides(t *testing.T) {
	file := "listen: 127.0.0.1:1\ncircuit_breaker:\n  failure_threshold: 9\n"
	tests := []struct {
		name  string
		env   map[string]string
		check func(c *Config) bool
	}{
		{"string", map[string]string{"FUSEBOX_LISTEN": "0.0.0.0:7070"}, func(c *Config) bool { return c.Listen == "0.0.0.0:7070" }},
		{"int wins over the file", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "3"}, func(c *Config) bool { return c.CircuitBreaker.FailureThreshold == 3 }},
		{"duration", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "45s"}, func(c *Config) bool { return c.CircuitBreaker.RecoveryTimeout == 45*time.Second }},
		{"duration by alias", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_RESET_TIMEOUT": "45s"}, func(c *Config) bool { return c.CircuitBreaker.RecoveryTimeout == 45*time.Second }},
		{"nested", map[string]string{"FUSEBOX_QUEUE_MAX_QUEUED_JOBS": "12"}, func(c *Config) bool { return c.Queue.MaxQueuedJobs == 12 }},
		{"deeper", map[string]string{"FUSEBOX_HEALTH_CHECK_CANARY_ENABLED": "true", "FUSEBOX_HEALTH_CHECK_CANARY_IMAGE": "busybox"}, func(c *Config) bool {
			return c.HealthCheck.Canary.Enabled && c.HealthCheck.Canary.Image == "busybox"
		}},
		{"bool forms", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_ENABLED": "off"}, func(c *Config) bool { return !c.CircuitBreaker.Enabled }},
		{"mcp read-only", map[string]string{"FUSEBOX_MCP_READ_ONLY": "true"}, func(c *Config) bool { return c.MCP.ReadOnly }},
		{"float", map[string]string{"FUSEBOX_RETRY_JITTER": "0.5"}, func(c *Config) bool { return c.Retry.Jitter == 0.5 }},
		{"size", map[string]string{"FUSEBOX_LOGS_MAX_BYTES": "2MiB"}, func(c *Config) bool { return c.Logs.MaxBytes == 2<<20 }},
		{"typed string", map[string]string{"FUSEBOX_LOST_HOST_POLICY": "lost"}, func(c *Config) bool { return c.LostHost.Policy == LostHostLost }},
		{"turns an optional section on", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_FAILURE_RATE_THRESHOLD": "0.3"}, func(c *Config) bool {
			fr := c.CircuitBreaker.FailureRate
			return fr != nil && fr.Threshold == 0.3 && fr.Window == FailureRateWindowDefault && fr.MinCalls == FailureRateMinCallsDefault
		}},
		{"leaves optional sections off", map[string]string{}, func(c *Config) bool {
			return c.CircuitBreaker.FailureRate == nil && c.CircuitBreaker.SlowCall == nil
		}},
		{"empty is unset", map[string]string{"FUSEBOX_LISTEN": ""}, func(c *Config) bool { return c.Listen == "127.0.0.1:1" }},
		{"legacy enabled", map[string]string{"CIRCUIT_BREAKER_ENABLED": "false"}, func(c *Config) bool { return !c.CircuitBreaker.Enabled }},
		{"legacy threshold", map[string]string{"CIRCUIT_BREAKER_FAILURE_THRESHOLD": "2"}, func(c *Config) bool { return c.CircuitBreaker.FailureThreshold == 2 }},
		{"legacy recovery", map[string]string{"CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "2m"}, func(c *Config) bool { return c.CircuitBreaker.RecoveryTimeout == 2*time.Minute }},
		{"legacy max queued", map[string]string{"MAX_QUEUED_JOBS": "50"}, func(c *Config) bool { return c.Queue.MaxQueuedJobs == 50 }},
		{"FUSEBOX_ wins over legacy", map[string]string{"CIRCUIT_BREAKER_FAILURE_THRESHOLD": "2", "FUSEBOX_CIRCUIT_BREAKER_FAILURE_THRESHOLD": "4"}, func(c *Config) bool {
			return c.CircuitBreaker.FailureThreshold == 4
		}},
		{"FUSEBOX_ alias wins over legacy", map[string]string{"CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "2m", "FUSEBOX_CIRCUIT_BREAKER_RESET_TIMEOUT": "3m"}, func(c *Config) bool {
			return c.CircuitBreaker.RecoveryTimeout == 3*time.Minute
		}},
		{"hosts", map[string]string{"FUSEBOX_HOSTS": " h1=unix:///a.sock, h2=tcp://127.0.0.1:2375 ,"}, func(c *Config) bool {
			return reflect.DeepEqual(c.Hosts, []Host{DefaultHost("h1", "unix:///a.sock"), DefaultHost("h2", "tcp://127.0.0.1:2375")})
		}},
		{"data dir", map[string]string{"FUSEBOX_DATA_DIR": "/srv/fb"}, func(c *Config) bool { return c.DataDir == "/srv/fb" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, file, tt.env)
			if !tt.check(c) {
				t.Errorf("env %v: config %+v", tt.env, c)
			}
		})
	}
}

func TestEnvHostsReplaceFileHosts(t *testing.T) {
	c := mustParse(t, host("    capacity: 9\n"), map[string]string{"FUSEBOX_HOSTS": "b=unix:///b.sock"})
	if !reflect.DeepEqual(c.Hosts, []Host{DefaultHost("b", "unix:///b.sock")}) {
		t.Errorf("hosts = %+v", c.Hosts)
	}
}

func TestEnvProblems(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"not an int", map[string]string{"FUSEBOX_QUEUE_MAX_QUEUED_JOBS": "many"}, `$FUSEBOX_QUEUE_MAX_QUEUED_JOBS: queue.max_queued_jobs: must be a whole number (got "many")`},
		{"not a bool", map[string]string{"CIRCUIT_BREAKER_ENABLED": "maybe"}, `$CIRCUIT_BREAKER_ENABLED: circuit_breaker.enabled: must be true or false (got "maybe")`},
		{"not a number", map[string]string{"FUSEBOX_RETRY_JITTER": "NaN"}, `$FUSEBOX_RETRY_JITTER: retry.jitter: must be a number (got "NaN")`},
		{"bare duration", map[string]string{"FUSEBOX_POLL_INTERVAL": "5"}, `$FUSEBOX_POLL_INTERVAL: poll_interval: needs a unit: write "5s"`},
		{"bad size", map[string]string{"FUSEBOX_LOGS_MAX_BYTES": "big"}, `$FUSEBOX_LOGS_MAX_BYTES: logs.max_bytes: must be a size like`},
		{"out of range", map[string]string{"FUSEBOX_QUEUE_MAX_QUEUED_JOBS": "0"}, `$FUSEBOX_QUEUE_MAX_QUEUED_JOBS: queue.max_queued_jobs: must be at least 1 (got 0)`},
		{"legacy out of range", map[string]string{"CIRCUIT_BREAKER_FAILURE_THRESHOLD": "0"}, `$CIRCUIT_BREAKER_FAILURE_THRESHOLD: circuit_breaker.failure_threshold: must be at least 1 (got 0)`},
		{"relation", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "1h"}, `$FUSEBOX_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: circuit_breaker.recovery_timeout: must be at most max_recovery_timeout (10m) (got 1h)`},
		{"name and alias", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_RECOVERY_TIMEOUT": "1m", "FUSEBOX_CIRCUIT_BREAKER_RESET_TIMEOUT": "2m"},
			`$FUSEBOX_CIRCUIT_BREAKER_RECOVERY_TIMEOUT: circuit_breaker.recovery_timeout: $FUSEBOX_CIRCUIT_BREAKER_RECOVERY_TIMEOUT and $FUSEBOX_CIRCUIT_BREAKER_RESET_TIMEOUT are the same setting`},
		{"optional section", map[string]string{"FUSEBOX_CIRCUIT_BREAKER_SLOW_CALL_RATE": "2"}, `$FUSEBOX_CIRCUIT_BREAKER_SLOW_CALL_RATE: circuit_breaker.slow_call.rate: must be more than 0 and at most 1`},
		{"hosts entry", map[string]string{"FUSEBOX_HOSTS": "h1=unix:///a.sock,h2"}, `$FUSEBOX_HOSTS: hosts[1]: "h2" must be name=address`},
		{"hosts empty list", map[string]string{"FUSEBOX_HOSTS": " , "}, `$FUSEBOX_HOSTS: hosts: must list at least one name=address`},
		{"hosts bad address", map[string]string{"FUSEBOX_HOSTS": "h1=unix:///a.sock,h2=ssh://x"}, `$FUSEBOX_HOSTS: hosts[1].address: ssh:// is not supported`},
		{"hosts bad name", map[string]string{"FUSEBOX_HOSTS": "=unix:///a.sock"}, `$FUSEBOX_HOSTS: hosts[0].name: is required`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := problemsOf(t, "", tt.env)
			if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), tt.want) {
				t.Errorf("problems:\n%v\nwant one starting %q", ps, tt.want)
			}
		})
	}
}

func TestEnvNames(t *testing.T) {
	names := EnvNames()
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			t.Errorf("two fields share the variable %s", n)
		}
		seen[n] = true
		if !strings.HasPrefix(n, EnvPrefix) || strings.ContainsAny(n, ".[]-") || n != strings.ToUpper(n) {
			t.Errorf("bad variable name %q", n)
		}
	}
	for _, n := range []string{"FUSEBOX_LISTEN", "FUSEBOX_DATA_DIR", "FUSEBOX_CIRCUIT_BREAKER_FAILURE_THRESHOLD",
		"FUSEBOX_CIRCUIT_BREAKER_RECOVERY_TIMEOUT", "FUSEBOX_QUEUE_MAX_QUEUED_JOBS", "FUSEBOX_CIRCUIT_BREAKER_SLOW_CALL_MIN_CALLS",
		"FUSEBOX_DOCKER_TIMEOUTS_IMAGE_PULL", "FUSEBOX_STOP_GRACE_PERIOD", "FUSEBOX_HOSTS"} {
		if !seen[n] {
			t.Errorf("EnvNames() lacks %s", n)
		}
	}
	for _, l := range legacyEnv {
		if !seen[EnvName(l.path)] {
			t.Errorf("legacy %s names %s, which has no variable", l.name, l.path)
		}
	}
}

// TestEveryVariableWorks sets each variable to a value of the wrong type (or,
// for strings, a value validation refuses or accepts) and checks the problem
// or the change names it.
func TestEveryVariableWorks(t *testing.T) {
	for _, name := range EnvNames() {
		if name == EnvHosts {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c, err := Parse("", nil, envOf(map[string]string{name: "\x01not a value"}))
			if err != nil {
				if !strings.Contains(err.Error(), "$"+name+": ") {
					t.Errorf("problem does not name %s: %v", name, err)
				}
				return
			}
			// A free-form string (network mode, canary image): the value must have landed.
			found := false
			eachLeaf(reflect.TypeFor[Config](), "", func(path string, f fieldInfo, parent string) {
				if EnvName(path) == name {
					v := fieldByPath(reflect.ValueOf(c).Elem(), path)
					found = v.Kind() == reflect.String && v.String() == "\x01not a value"
				}
			})
			if !found {
				t.Errorf("%s was accepted but not applied", name)
			}
		})
	}
}
