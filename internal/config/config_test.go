package config

import (
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns an environment lookup over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// mustParse parses a file that must have no problems.
func mustParse(t *testing.T, yaml string, env map[string]string) *Config {
	t.Helper()
	c, err := Parse("fusebox.yaml", []byte(yaml), envOf(env))
	if err != nil {
		t.Fatalf("Parse: unexpected problems:\n%v\nfile:\n%s", err, yaml)
	}
	return c
}

// problemsOf parses a file that must have problems, and returns them.
func problemsOf(t *testing.T, yaml string, env map[string]string) Problems {
	t.Helper()
	c, err := Parse("fusebox.yaml", []byte(yaml), envOf(env))
	if err == nil {
		t.Fatalf("Parse: want problems, got none (config %+v)\nfile:\n%s", c, yaml)
	}
	if c != nil {
		t.Errorf("Parse returned a config with its problems")
	}
	var ps Problems
	if !errors.As(err, &ps) || len(ps) == 0 {
		t.Fatalf("Parse: error %T %v is not Problems", err, err)
	}
	return ps
}

// withEUID runs the test as if the process ran with effective user id uid.
func withEUID(t *testing.T, uid int) {
	old := geteuid
	geteuid = func() int { return uid }
	t.Cleanup(func() { geteuid = old })
}

func TestDefaultsNoFile(t *testing.T) {
	withEUID(t, 1000)
	c := mustParse(t, "", map[string]string{"HOME": "/home/u"})
	want := &Config{
		Listen:   "127.0.0.1:7070",
		DataDir:  "/home/u/.local/share/fusebox",
		LogLevel: "info",
		Hosts:    []Host{{Name: "local", Address: "unix:///var/run/docker.sock", Capacity: 4, Weight: 1}},
		CircuitBreaker: CircuitBreaker{
			Enabled: true, FailureThreshold: 5, RecoveryTimeout: time.Minute, MaxRecoveryTimeout: 10 * time.Minute,
			Jitter: 0.1, HalfOpenTimeout: 30 * time.Second, HalfOpenMaxProbes: 1, SuccessThreshold: 1,
			ProbeTimeout: 2 * time.Minute,
		},
		HealthCheck: HealthCheck{
			Interval: time.Second, Timeout: time.Second, Jitter: 0.2, HealthyThreshold: 2, UnhealthyThreshold: 2,
			UnhealthyInterval: 250 * time.Millisecond, BaseEjectionTime: 5 * time.Second,
			Canary: Canary{Interval: 5 * time.Minute},
		},
		Queue:               Queue{MaxQueuedJobs: 1000},
		SpecLimits:          SpecLimits{MaxSpecBytes: 64 << 10, MaxCommandArgs: 1024, MaxEnv: 256, MaxLabels: 64, MaxArgBytes: 32 << 10},
		GracefulDegradation: GracefulDegradation{Enabled: true, MaxEjectedPercent: 50},
		Retry:               Retry{MaxAttempts: 3, Backoff: time.Second, MaxBackoff: time.Minute, Jitter: 0.2},
		LostHost:            LostHost{After: 5 * time.Minute, Policy: LostHostReschedule},
		Logs:                Logs{MaxBytes: 1 << 20},
		DockerTimeouts: DockerTimeouts{
			Ping: 2 * time.Second, Inspect: 5 * time.Second, Create: 30 * time.Second, Start: 30 * time.Second,
			Stop: 30 * time.Second, Remove: 30 * time.Second, List: 10 * time.Second, ImageInspect: 5 * time.Second,
			ImageLoad: 5 * time.Minute, ImagePull: 10 * time.Minute, Logs: 30 * time.Second,
		},
		PollInterval:    2 * time.Second,
		StopGracePeriod: 10 * time.Second,
		Retention:       7 * 24 * time.Hour,
		API:             API{MaxFollowsPerToken: 8, FollowStartTimeout: 10 * time.Minute},
		Alerts: Alerts{RepeatInterval: 4 * time.Hour, QueueThreshold: 0.8, EvalInterval: 5 * time.Second, DegradedFor: time.Minute,
			Backoff: time.Second, MaxBackoff: 5 * time.Minute},
		Workflows: Workflows{CacheTTL: 7 * 24 * time.Hour, MaxArtifactBytes: 1 << 30, MaxRunBytes: 10 << 30,
			CircuitBreaker: WorkflowsBreaker{FailureThreshold: 5, ResetTimeout: time.Minute, HalfOpenTimeout: time.Hour}},
		Images: Images{Transfer: true, RegistryBreaker: RegistryBreaker{FailureThreshold: 3, ResetTimeout: 10 * time.Second}},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", c, want)
	}
	if driver, dsn := c.DB(); driver != "sqlite" || dsn != "/home/u/.local/share/fusebox/fusebox.db" {
		t.Errorf("DB() = %q, %q", driver, dsn)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestDefaultFillsEverything(t *testing.T) {
	t.Setenv("DOCKER_HOST", "")
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	// Every field but the optional sections and the empty-by-default ones is set.
	optional := map[string]bool{
		"database": true, "hosts[0].tls": true, "hosts[0].labels": true, "hosts[0].network_mode": true,
		"circuit_breaker.failure_rate": true, "circuit_breaker.slow_call": true,
		"health_check.canary.enabled": true, "health_check.canary.image": true,
		"api.tls.cert": true, "api.tls.key": true, "api.insecure_http": true,
		"alerts.external_url": true, "mcp.read_only": true, "images.docker_config": true,
	}
	var walk func(v reflect.Value, path string)
	walk = func(v reflect.Value, path string) {
		switch v.Kind() {
		case reflect.Struct:
			for _, f := range fieldsOf(v.Type()) {
				walk(v.Field(f.index), joinPath(path, f.name))
			}
		case reflect.Slice:
			for i := range v.Len() {
				walk(v.Index(i), path+"["+string(rune('0'+i))+"]")
			}
		default:
			if v.IsZero() && !optional[path] {
				t.Errorf("Default(): %s is not set", path)
			}
		}
	}
	walk(reflect.ValueOf(c).Elem(), "")
}

func TestDefaultDataDir(t *testing.T) {
	tests := []struct {
		name string
		euid int
		env  map[string]string
		want string
	}{
		{"FUSEBOX_DATA_DIR wins", 0, map[string]string{"FUSEBOX_DATA_DIR": "/srv/fb", "HOME": "/root"}, "/srv/fb"},
		{"root", 0, map[string]string{"HOME": "/root", "XDG_DATA_HOME": "/root/.data"}, "/var/lib/fusebox"},
		{"XDG_DATA_HOME", 1000, map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "/home/u/.data"}, "/home/u/.data/fusebox"},
		{"relative XDG_DATA_HOME is ignored", 1000, map[string]string{"HOME": "/home/u", "XDG_DATA_HOME": "data"}, "/home/u/.local/share/fusebox"},
		{"HOME", 1000, map[string]string{"HOME": "/home/u"}, "/home/u/.local/share/fusebox"},
		{"nothing", 1000, nil, "/var/lib/fusebox"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withEUID(t, tt.euid)
			if got := mustParse(t, "", tt.env).DataDir; got != tt.want {
				t.Errorf("data_dir = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestDefaultHostFromDockerEnv(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want Host
	}{
		{"unset", nil, DefaultHost("local", "unix:///var/run/docker.sock")},
		{"unix", map[string]string{"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}, DefaultHost("local", "unix:///run/user/1000/docker.sock")},
		{"tcp with port", map[string]string{"DOCKER_HOST": "tcp://10.0.0.5:2375"}, DefaultHost("local", "tcp://10.0.0.5:2375")},
		{"tcp without port", map[string]string{"DOCKER_HOST": "tcp://10.0.0.5"}, DefaultHost("local", "tcp://10.0.0.5:2375")},
		{"tcp with TLS", map[string]string{"DOCKER_HOST": "tcp://10.0.0.5", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/certs"}, func() Host {
			h := DefaultHost("local", "tcp://10.0.0.5:2376")
			h.TLS = &TLS{CA: "/certs/ca.pem", Cert: "/certs/cert.pem", Key: "/certs/key.pem"}
			return h
		}()},
		{"TLS certs in ~/.docker", map[string]string{"DOCKER_HOST": "tcp://h:2376", "DOCKER_TLS_VERIFY": "1", "HOME": "/home/u"}, func() Host {
			h := DefaultHost("local", "tcp://h:2376")
			h.TLS = &TLS{CA: "/home/u/.docker/ca.pem", Cert: "/home/u/.docker/cert.pem", Key: "/home/u/.docker/key.pem"}
			return h
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := mustParse(t, "", tt.env)
			if len(c.Hosts) != 1 || !reflect.DeepEqual(c.Hosts[0], tt.want) {
				t.Errorf("hosts = %+v, want [%+v]", c.Hosts, tt.want)
			}
		})
	}
}

func TestDockerHostProblemNamesTheVariable(t *testing.T) {
	ps := problemsOf(t, "", map[string]string{"DOCKER_HOST": "ssh://me@box"})
	want := `$DOCKER_HOST: hosts[0].address: ssh:// is not supported`
	if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), want) {
		t.Errorf("problems = %q, want one starting %q", ps, want)
	}
}

func TestFileHostsReplaceDockerHost(t *testing.T) {
	// A host from the file with no address is not blamed on DOCKER_HOST.
	ps := problemsOf(t, "hosts:\n  - name: a\n", map[string]string{"DOCKER_HOST": "tcp://x:1"})
	if got := ps[0].String(); got != "fusebox.yaml:2:5: hosts[0].address: is required, e.g. unix:///var/run/docker.sock or tcp://10.0.0.5:2376" {
		t.Errorf("problem = %q", got)
	}
}

func TestDB(t *testing.T) {
	tests := []struct{ database, driver, dsn string }{
		{"", "sqlite", "/data/fusebox.db"},
		{"sqlite:///srv/fb/x.db", "sqlite", "/srv/fb/x.db"},
		{"SQLITE:///srv/fb/x.db", "sqlite", "/srv/fb/x.db"},
		{"sqlite://x.db", "sqlite", "/data/x.db"},
		{"/srv/y.db", "sqlite", "/srv/y.db"},
		{"y.db", "sqlite", "/data/y.db"},
		{"postgres://fb@db/fusebox", "postgres", "postgres://fb@db/fusebox"},
		{"postgresql://fb@db/fusebox", "postgres", "postgresql://fb@db/fusebox"},
	}
	for _, tt := range tests {
		c := &Config{DataDir: "/data", Database: tt.database}
		if driver, dsn := c.DB(); driver != tt.driver || dsn != tt.dsn {
			t.Errorf("database %q: DB() = %q, %q; want %q, %q", tt.database, driver, dsn, tt.driver, tt.dsn)
		}
	}
}

func TestSlogLevel(t *testing.T) {
	for level, want := range map[string]slog.Level{"debug": slog.LevelDebug, "info": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		c := mustParse(t, "log_level: "+strings.ToUpper(level), nil)
		if c.LogLevel != level || c.SlogLevel() != want {
			t.Errorf("log_level %s: LogLevel %q, SlogLevel %v", level, c.LogLevel, c.SlogLevel())
		}
	}
}

func TestParseSize(t *testing.T) {
	tests := []struct {
		in   string
		want Size
		err  string
	}{
		{"0", 0, ""},
		{"1048576", 1 << 20, ""},
		{"1MiB", 1 << 20, ""},
		{"512KiB", 512 << 10, ""},
		{"512kib", 512 << 10, ""},
		{"1.5 MiB", 3 << 19, ""},
		{"10MB", 10e6, ""},
		{"2GiB", 2 << 30, ""},
		{"1TB", 1e12, ""},
		{"100B", 100, ""},
		{"-1", 0, "must not be negative"},
		{"-1KiB", 0, "must not be negative"},
		{"MiB", 0, "must be a size"},
		{"1XB", 0, "must be a size"},
		{"ten", 0, "must be a size"},
		{"1 0MiB", 0, "must be a size"},
		{"0x10", 0, "must be a size"},
		{"inf", 0, "must be a size"},
		{"9999999TiB", 0, "too large"},
		{"1e30", 0, "too large"},
	}
	for _, tt := range tests {
		got, err := ParseSize(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("ParseSize(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSize(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestSizeString(t *testing.T) {
	for s, want := range map[Size]string{0: "0B", 1: "1B", 1 << 20: "1MiB", 1536: "1536B", 3 << 30: "3GiB", 10e6: "10MB", 1000: "1KB"} {
		if got := s.String(); got != want {
			t.Errorf("Size(%d).String() = %q, want %q", int64(s), got, want)
		}
		back, err := ParseSize(s.String())
		if err != nil || back != s {
			t.Errorf("ParseSize(%q) = %v, %v; want %d", s.String(), back, err, int64(s))
		}
	}
	var s Size
	if err := s.UnmarshalText([]byte("2MiB")); err != nil || s != 2<<20 {
		t.Errorf("UnmarshalText: %v, %v", s, err)
	}
	if b, _ := s.MarshalText(); string(b) != "2MiB" {
		t.Errorf("MarshalText = %q", b)
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30s", 30 * time.Second, ""},
		{"1m30s", 90 * time.Second, ""},
		{"500ms", 500 * time.Millisecond, ""},
		{"0", 0, ""},
		{"-5s", -5 * time.Second, ""},
		{"30", 0, `needs a unit: write "30s"`},
		{"1.5", 0, `needs a unit: write "1.5s"`},
		{"1e3", 0, "needs a unit"},
		{"soon", 0, "must be a duration"},
		{"", 0, "must be a duration"},
	}
	for _, tt := range tests {
		got, err := parseDuration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseDuration(%q) = %v, %v; want error containing %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{time.Minute: "1m", time.Hour: "1h", 90 * time.Second: "1m30s", 30 * time.Second: "30s", -time.Second: "-1s"} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "f.yaml", Line: 14, Column: 15, Field: "hosts[1].capacity", Message: "must be at least 1 (got -2)"}, "f.yaml:14:15: hosts[1].capacity: must be at least 1 (got -2)"},
		{Problem{File: "f.yaml", Line: 3, Field: "listen", Message: "m"}, "f.yaml:3: listen: m"},
		{Problem{File: "f.yaml", Message: "cannot read"}, "f.yaml: cannot read"},
		{Problem{Env: "FUSEBOX_LISTEN", Field: "listen", Message: "m"}, "$FUSEBOX_LISTEN: listen: m"},
		{Problem{Field: "listen", Message: "m"}, "listen: m"},
		{Problem{Line: 2, Column: 1, Message: "m"}, "2:1: m"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
	ps := Problems{tests[0].p, tests[1].p}
	if got, want := ps.Error(), "2 config problems:\n"+tests[0].want+"\n"+tests[1].want; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestSuggest(t *testing.T) {
	names := []string{"failure_threshold", "recovery_timeout", "reset_timeout", "jitter", "enabled"}
	for in, want := range map[string]string{
		"failure_treshold":  "failure_threshold",
		"failure_thresold":  "failure_threshold",
		"Failure_Threshold": "failure_threshold",
		"recovery_timout":   "recovery_timeout",
		"jiter":             "jitter",
		"enable":            "enabled",
		"zzz":               "",
		"timeout":           "",
	} {
		if got := suggest(in, names); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
