package config

import (
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// hostNameRE is what a host name must match.
var hostNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)

// maxHostNameLen bounds host names, which appear in metrics labels and URLs.
const maxHostNameLen = 63

// maxWeight bounds host weights, so that sums of weights stay exact.
const maxWeight = 1e6

// validator collects every problem of a Config, placed by sources.
type validator struct {
	src   *sources
	probs []Problem
}

// validate checks every range and relation of c; src (which may be nil) says
// where each value came from.
func validate(c *Config, src *sources) []Problem {
	v := &validator{src: src}
	v.top(c)
	v.hosts(c.Hosts)
	v.breaker(&c.CircuitBreaker)
	v.health(&c.HealthCheck)
	v.atLeast("queue.max_queued_jobs", c.Queue.MaxQueuedJobs, 1)
	v.specLimits(&c.SpecLimits)
	if p := c.GracefulDegradation.MaxEjectedPercent; p < 0 || p > 100 {
		v.bad("graceful_degradation.max_ejected_percent", "must be between 0 and 100 (got %d)", p)
	}
	v.atLeast("retry.max_attempts", c.Retry.MaxAttempts, 1)
	v.positive("retry.backoff", c.Retry.Backoff)
	v.positive("retry.max_backoff", c.Retry.MaxBackoff)
	v.order("retry.backoff", c.Retry.Backoff, "retry.max_backoff", c.Retry.MaxBackoff)
	v.fraction("retry.jitter", c.Retry.Jitter)
	v.positive("lost_host.after", c.LostHost.After)
	if !slices.Contains(LostHostPolicies, c.LostHost.Policy) {
		v.bad("lost_host.policy", "must be reschedule or lost (got %q)", c.LostHost.Policy)
	}
	if c.Logs.MaxBytes < 1 {
		v.bad("logs.max_bytes", "must be at least 1 byte, e.g. 1MiB (got %d)", c.Logs.MaxBytes)
	}
	dt := reflect.ValueOf(c.DockerTimeouts)
	for _, f := range fieldsOf(dt.Type()) {
		v.positive("docker_timeouts."+f.name, time.Duration(dt.Field(f.index).Int()))
	}
	v.positive("poll_interval", c.PollInterval)
	if c.Retention < 0 {
		v.bad("retention", "must not be negative (got %s); 0 keeps finished jobs forever", fmtDuration(c.Retention))
	}
	if c.StopGracePeriod < 0 {
		v.bad("stop_grace_period", "must not be negative (got %s); 0 kills at once", fmtDuration(c.StopGracePeriod))
	}
	v.auth(c)
	v.api(&c.API)
	v.alerts(&c.Alerts)
	v.workflows(&c.Workflows)
	v.images(c)
	return v.probs
}

func (v *validator) bad(path, format string, args ...any) {
	if v.src.isBroken(path) {
		return
	}
	v.probs = append(v.probs, v.src.problem(path, fmt.Sprintf(format, args...)))
}

func (v *validator) top(c *Config) {
	if host, port, err := net.SplitHostPort(c.Listen); err != nil {
		v.bad("listen", "must be host:port, e.g. 127.0.0.1:7070 or :7070 for every interface (got %q)", c.Listen)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 || strings.ContainsAny(host, " /") {
		v.bad("listen", "must be host:port with a port from 0 to 65535, e.g. 127.0.0.1:7070 (got %q)", c.Listen)
	}
	if strings.TrimSpace(c.DataDir) == "" {
		v.bad("data_dir", "must not be empty: set a directory fusebox may write, e.g. /var/lib/fusebox")
	}
	db := strings.TrimSpace(c.Database)
	switch {
	case db == "":
	case hasScheme(db, "postgres"), hasScheme(db, "postgresql"):
		v.bad("database", "postgres is not supported yet; leave database empty for SQLite in data_dir")
	case hasScheme(db, "sqlite"):
		if rest, _ := cutScheme(db, "sqlite"); strings.TrimSpace(rest) == "" {
			v.bad("database", "sqlite:// needs a file path, e.g. sqlite:///var/lib/fusebox/fusebox.db (got %q)", c.Database)
		}
	case strings.Contains(db, "://"):
		scheme, _, _ := strings.Cut(db, "://")
		v.bad("database", `unknown database %q: use "" (SQLite in data_dir), sqlite:///path/fusebox.db or postgres://...`, scheme+"://")
	}
	if !slices.Contains(LogLevels, strings.ToLower(c.LogLevel)) {
		v.bad("log_level", "must be one of %s (got %q)", strings.Join(LogLevels, ", "), c.LogLevel)
	}
}

func (v *validator) hosts(hosts []Host) {
	if len(hosts) == 0 {
		v.bad("hosts", "must list at least one host (leave hosts out to use the local Docker engine)")
		return
	}
	names := map[string]int{}
	addrs := map[string]int{}
	for i, h := range hosts {
		p := fmt.Sprintf("hosts[%d]", i)
		switch {
		case h.Name == "":
			v.bad(p+".name", "is required")
		case len(h.Name) > maxHostNameLen:
			v.bad(p+".name", "must be at most %d characters (got %d)", maxHostNameLen, len(h.Name))
		case !hostNameRE.MatchString(h.Name):
			v.bad(p+".name", "must be lower-case letters, digits, '_', '.' and '-', starting with a letter or digit (got %q)", h.Name)
		}
		if j, dup := names[h.Name]; dup && h.Name != "" {
			v.bad(p+".name", "duplicate host name %q (also hosts[%d]); names must be unique", h.Name, j)
		} else {
			names[h.Name] = i
		}
		scheme, norm, msg := checkAddress(h.Address)
		if msg != "" {
			v.bad(p+".address", "%s", msg)
		} else if j, dup := addrs[norm]; dup {
			v.bad(p+".address", "same Docker engine as hosts[%d] (%s); each host must be a different engine, or they would adopt each other's containers", j, hosts[j].Name)
		} else {
			addrs[norm] = i
		}
		if t := h.TLS; t != nil {
			if scheme != "tcp" && msg == "" {
				v.bad(p+".tls", "is only for tcp:// addresses (address is %q); remove tls", h.Address)
			}
			if t.Cert != "" && t.Key == "" {
				v.bad(p+".tls.key", "is required with tls.cert (a client certificate needs its key)")
			}
			if t.Key != "" && t.Cert == "" {
				v.bad(p+".tls.cert", "is required with tls.key (a client key needs its certificate)")
			}
		}
		for k := range h.Labels {
			if strings.TrimSpace(k) == "" {
				v.bad(p+".labels", "label names must not be empty")
			}
		}
		switch m := h.NetworkMode; {
		case m == "", m == "none", m == "bridge", m == "host", m == "default":
		case strings.HasPrefix(m, "container:"):
			v.bad(p+".network_mode", `must not be "container:...": job containers do not share another container's network (use none, bridge, host or a network's name)`)
		case !networkNameRE.MatchString(m):
			v.bad(p+".network_mode", `unknown network mode %q: use none, bridge, host, or the name of a network on the engine`, m)
		}
		v.atLeast(p+".capacity", h.Capacity, 1)
		if !(h.Weight > 0) {
			v.bad(p+".weight", "must be more than 0 (got %s)", fmtFloat(h.Weight))
		} else if h.Weight > maxWeight {
			v.bad(p+".weight", "must be at most %s (got %s)", fmtFloat(maxWeight), fmtFloat(h.Weight))
		}
	}
}

// networkNameRE is a docker network's name.
var networkNameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// checkAddress checks a Docker engine address; it returns its scheme, a
// normal form to compare addresses by, and what is wrong with it ("" if
// nothing).
func checkAddress(a string) (scheme, norm, msg string) {
	const want = "must be unix:///path/to/docker.sock or tcp://host:port"
	if strings.TrimSpace(a) == "" {
		return "", "", "is required, e.g. unix:///var/run/docker.sock or tcp://10.0.0.5:2376"
	}
	u, err := url.Parse(a)
	if err != nil || !strings.Contains(a, "://") {
		return "", "", fmt.Sprintf("%s (got %q)", want, a)
	}
	scheme = strings.ToLower(u.Scheme)
	switch scheme {
	case "unix":
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.RawQuery != "" || u.Fragment != "" {
			return scheme, "", fmt.Sprintf("a unix address needs an absolute path after unix://, e.g. unix:///var/run/docker.sock (got %q)", a)
		}
		return scheme, "unix://" + path.Clean(u.Path), ""
	case "tcp":
		host, port, err := net.SplitHostPort(u.Host)
		if u.Host == "" || err != nil {
			return scheme, "", fmt.Sprintf("a tcp address needs host:port, e.g. tcp://10.0.0.5:2376 (got %q)", a)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || host == "" {
			return scheme, "", fmt.Sprintf("a tcp address needs a host and a port from 1 to 65535, e.g. tcp://10.0.0.5:2376 (got %q)", a)
		}
		if (u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
			return scheme, "", fmt.Sprintf("a tcp address is just tcp://host:port (got %q)", a)
		}
		return scheme, "tcp://" + strings.ToLower(net.JoinHostPort(host, port)), ""
	case "ssh":
		return scheme, "", fmt.Sprintf("ssh:// is not supported (got %q); use tcp:// with tls, or forward the remote socket", a)
	case "http", "https":
		return scheme, "", fmt.Sprintf("use tcp://host:port, with a tls section for https (got %q)", a)
	}
	return scheme, "", fmt.Sprintf("%s (got %q)", want, a)
}

func (v *validator) breaker(b *CircuitBreaker) {
	const p = "circuit_breaker."
	v.atLeast(p+"failure_threshold", b.FailureThreshold, 1)
	v.positive(p+"recovery_timeout", b.RecoveryTimeout)
	v.positive(p+"max_recovery_timeout", b.MaxRecoveryTimeout)
	v.order(p+"recovery_timeout", b.RecoveryTimeout, p+"max_recovery_timeout", b.MaxRecoveryTimeout)
	v.fraction(p+"jitter", b.Jitter)
	v.positive(p+"half_open_timeout", b.HalfOpenTimeout)
	v.atLeast(p+"half_open_max_probes", b.HalfOpenMaxProbes, 1)
	v.atLeast(p+"success_threshold", b.SuccessThreshold, 1)
	v.positive(p+"probe_timeout", b.ProbeTimeout)
	if fr := b.FailureRate; fr != nil {
		v.rate(p+"failure_rate.threshold", fr.Threshold)
		v.positive(p+"failure_rate.window", fr.Window)
		v.atLeast(p+"failure_rate.min_calls", fr.MinCalls, 1)
	}
	if sc := b.SlowCall; sc != nil {
		v.positive(p+"slow_call.duration", sc.Duration)
		v.rate(p+"slow_call.rate", sc.Rate)
		v.atLeast(p+"slow_call.min_calls", sc.MinCalls, 1)
	}
}

func (v *validator) health(h *HealthCheck) {
	const p = "health_check."
	v.positive(p+"interval", h.Interval)
	v.positive(p+"timeout", h.Timeout)
	v.order(p+"timeout", h.Timeout, p+"interval", h.Interval)
	v.fraction(p+"jitter", h.Jitter)
	v.atLeast(p+"healthy_threshold", h.HealthyThreshold, 1)
	v.atLeast(p+"unhealthy_threshold", h.UnhealthyThreshold, 1)
	v.positive(p+"unhealthy_interval", h.UnhealthyInterval)
	v.order(p+"unhealthy_interval", h.UnhealthyInterval, p+"interval", h.Interval)
	v.positive(p+"base_ejection_time", h.BaseEjectionTime)
	if h.Canary.Enabled && strings.TrimSpace(h.Canary.Image) == "" {
		v.bad(p+"canary.image", "is required when canary is enabled, e.g. busybox:1.36 (a small image present on every host)")
	}
	v.positive(p+"canary.interval", h.Canary.Interval)
}

func (v *validator) specLimits(l *SpecLimits) {
	switch {
	case l.MaxSpecBytes < 1:
		v.bad("spec_limits.max_spec_bytes", "must be at least 1 byte, e.g. 64KiB (got %d)", l.MaxSpecBytes)
	case l.MaxSpecBytes > SpecMaxSpecBytesMax:
		v.bad("spec_limits.max_spec_bytes", "must be at most %s (got %s)", SpecMaxSpecBytesMax, l.MaxSpecBytes)
	}
	v.atLeast("spec_limits.max_command_args", l.MaxCommandArgs, 1)
	v.atLeast("spec_limits.max_env", l.MaxEnv, 1)
	v.atLeast("spec_limits.max_labels", l.MaxLabels, 1)
	switch {
	case l.MaxArgBytes < 1:
		v.bad("spec_limits.max_arg_bytes", "must be at least 1 byte, e.g. 32KiB (got %d)", l.MaxArgBytes)
	case l.MaxArgBytes > l.MaxSpecBytes && l.MaxSpecBytes >= 1:
		v.bad("spec_limits.max_arg_bytes", "must be at most spec_limits.max_spec_bytes (%s; got %s)", l.MaxSpecBytes, l.MaxArgBytes)
	}
}

func (v *validator) atLeast(path string, n, lo int) {
	if n < lo {
		v.bad(path, "must be at least %d (got %d)", lo, n)
	}
}

// positive checks a duration that must be more than zero.
func (v *validator) positive(path string, d time.Duration) {
	switch {
	case d < 0:
		v.bad(path, "must not be negative (got %s)", fmtDuration(d))
	case d == 0:
		v.bad(path, "must be more than 0, e.g. %q", "30s")
	}
}

// fraction checks a value in [0, 1], such as a jitter.
func (v *validator) fraction(path string, f float64) {
	if !(f >= 0 && f <= 1) {
		v.bad(path, "must be between 0 and 1 (got %s)", fmtFloat(f))
	}
}

// rate checks a value in (0, 1], such as a failure-rate threshold.
func (v *validator) rate(path string, f float64) {
	if !(f > 0 && f <= 1) {
		v.bad(path, "must be more than 0 and at most 1, e.g. 0.5 for half (got %s)", fmtFloat(f))
	}
}

// order checks low <= high. It blames the one the user wrote: high, unless
// only low was written.
func (v *validator) order(lowPath string, low time.Duration, highPath string, high time.Duration) {
	if low <= 0 || high <= 0 || low <= high || v.src.isBroken(lowPath) || v.src.isBroken(highPath) {
		return
	}
	if v.src.has(highPath) || !v.src.has(lowPath) {
		v.bad(highPath, "must be at least %s (%s) (got %s)", lastKey(lowPath), fmtDuration(low), fmtDuration(high))
	} else {
		v.bad(lowPath, "must be at most %s (%s) (got %s)", lastKey(highPath), fmtDuration(high), fmtDuration(low))
	}
}

func lastKey(p string) string {
	return p[strings.LastIndexByte(p, '.')+1:]
}

// fmtDuration writes d as it would be written in the file: 1m, not 1m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// fmtFloat writes f as 0.5 or 2000000, and very large or small values as 1e+300.
func fmtFloat(f float64) string {
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e15) {
		return strconv.FormatFloat(f, 'g', -1, 64)
	}
	return strconv.FormatFloat(f, 'f', -1, 64)
}

func (v *validator) auth(c *Config) {
	seen := map[string]int{}
	for i, t := range c.Auth.Tokens {
		p := fmt.Sprintf("auth.tokens[%d]", i)
		switch {
		case t.Token == "":
			v.bad(p+".token", "is required")
		case len(t.Token) < 16:
			v.bad(p+".token", "must be at least 16 characters (got %d); generate one with: openssl rand -hex 24", len(t.Token))
		case strings.ContainsAny(t.Token, " \t\r\n"):
			v.bad(p+".token", "must not contain white space")
		default:
			if j, dup := seen[t.Token]; dup {
				v.bad(p+".token", "is the same as auth.tokens[%d].token; each token must be different", j)
			}
			seen[t.Token] = i
		}
		if !slices.Contains(Roles, t.Role) {
			v.bad(p+".role", "must be one of %s (got %q)", strings.Join(Roles, ", "), t.Role)
		}
	}
}

func (v *validator) api(a *API) {
	// Blamed on the one that is set: that is where the user wrote something.
	if a.TLS.Cert != "" && a.TLS.Key == "" {
		v.bad("api.tls.cert", "needs api.tls.key as well (the server certificate's private key)")
	}
	if a.TLS.Key != "" && a.TLS.Cert == "" {
		v.bad("api.tls.key", "needs api.tls.cert as well (the certificate of this server key)")
	}
	if a.InsecureHTTP && a.TLS.Cert != "" {
		v.bad("api.insecure_http", "is for plain HTTP, but api.tls is set; remove one")
	}
	v.atLeast("api.max_follows_per_token", a.MaxFollowsPerToken, 1)
	v.positive("api.follow_start_timeout", a.FollowStartTimeout)
}

// alertReceiverNameRE is what an alert receiver's name must match (it is a
// metrics label and an argument of fusebox alerts test).
var alertReceiverNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)

// Bounds of an alert receiver's key, in bytes (the Standard Webhooks
// recommendation; internal/alert checks the same).
const (
	alertSecretMinBytes = 24
	alertSecretMaxBytes = 64
)

func (v *validator) workflows(w *Workflows) {
	const p = "workflows."
	v.positive(p+"cache_ttl", w.CacheTTL)
	if w.MaxArtifactBytes < 1 {
		v.bad(p+"max_artifact_bytes", "must be at least 1 byte, e.g. 1GiB (got %d)", w.MaxArtifactBytes)
	}
	if w.MaxRunBytes < w.MaxArtifactBytes {
		v.bad(p+"max_run_bytes", "must be at least max_artifact_bytes (%s), e.g. 10GiB (got %s)", w.MaxArtifactBytes, w.MaxRunBytes)
	}
	v.atLeast(p+"circuit_breaker.failure_threshold", w.CircuitBreaker.FailureThreshold, 1)
	v.positive(p+"circuit_breaker.reset_timeout", w.CircuitBreaker.ResetTimeout)
	v.positive(p+"circuit_breaker.half_open_timeout", w.CircuitBreaker.HalfOpenTimeout)
}

func (v *validator) images(c *Config) {
	v.atLeast("images.registry_breaker.failure_threshold", c.Images.RegistryBreaker.FailureThreshold, 1)
	v.positive("images.registry_breaker.reset_timeout", c.Images.RegistryBreaker.ResetTimeout)
	seen := map[string]bool{}
	for i, r := range c.Registries {
		p := fmt.Sprintf("registries[%d].", i)
		if r.Host == "" || strings.ContainsAny(r.Host, "/ ") {
			v.bad(p+"host", "must be a registry host as image references name it, e.g. ghcr.io or 127.0.0.1:5000 (got %q)", r.Host)
		} else if seen[r.Host] {
			v.bad(p+"host", "%s is listed twice", r.Host)
		}
		seen[r.Host] = true
		count := func(xs ...string) int {
			n := 0
			for _, x := range xs {
				if x != "" {
					n++
				}
			}
			return n
		}
		pw, tok := count(r.Password, r.PasswordFile, r.PasswordEnv), count(r.IdentityToken, r.IdentityTokenFile, r.IdentityTokenEnv)
		switch {
		case pw > 1:
			v.bad(p+"password", "give one of password, password_file and password_env")
		case tok > 1:
			v.bad(p+"identity_token", "give one of identity_token, identity_token_file and identity_token_env")
		case pw == 0 && tok == 0:
			v.bad(p+"password", "a username with a password (password, password_file or password_env), or an identity token, is required")
		case pw == 1 && r.Username == "":
			v.bad(p+"username", "is required with a password")
		}
	}
}

func (v *validator) alerts(a *Alerts) {
	const p = "alerts."
	v.positive(p+"repeat_interval", a.RepeatInterval)
	v.rate(p+"queue_threshold", a.QueueThreshold)
	v.positive(p+"eval_interval", a.EvalInterval)
	v.positive(p+"degraded_for", a.DegradedFor)
	v.positive(p+"backoff", a.Backoff)
	v.positive(p+"max_backoff", a.MaxBackoff)
	v.order(p+"backoff", a.Backoff, p+"max_backoff", a.MaxBackoff)
	if a.ExternalURL != "" {
		if msg := checkWebhookURL(a.ExternalURL); msg != "" {
			v.bad(p+"external_url", "%s", msg)
		}
	}
	names := map[string]int{}
	for i, r := range a.Receivers {
		rp := fmt.Sprintf("%sreceivers[%d]", p, i)
		switch {
		case r.Name == "":
			v.bad(rp+".name", "is required (it names the receiver in fusebox alerts and in metrics)")
		case !alertReceiverNameRE.MatchString(r.Name):
			v.bad(rp+".name", "must be letters, digits, '_', '.' and '-', starting with a letter or digit (got %q)", r.Name)
		default:
			if j, dup := names[r.Name]; dup {
				v.bad(rp+".name", "duplicate receiver name %q (also alerts.receivers[%d]); names must be unique", r.Name, j)
			}
			names[r.Name] = i
		}
		if msg := checkWebhookURL(r.URL); msg != "" {
			v.bad(rp+".url", "%s", msg)
		}
		if msg := checkWebhookSecret(r.Secret); msg != "" {
			v.bad(rp+".secret", "%s", msg)
		}
		v.positive(rp+".timeout", r.Timeout)
	}
}

// checkWebhookURL says what is wrong with a webhook URL ("" if nothing).
func checkWebhookURL(s string) string {
	if strings.TrimSpace(s) == "" {
		return "is required, e.g. https://alerts.example.com/fusebox"
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "must be an http:// or https:// URL with a host, e.g. https://alerts.example.com/fusebox"
	}
	return ""
}

// checkWebhookSecret says what is wrong with a receiver's signing secret
// ("" if nothing). It never quotes the secret.
func checkWebhookSecret(s string) string {
	const gen = "; generate one with: echo whsec_$(openssl rand -base64 32)"
	rest, ok := strings.CutPrefix(s, "whsec_")
	switch {
	case s == "":
		return "is required" + gen
	case !ok:
		return `must start with "whsec_" (then the key in base64)` + gen
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return `the part after "whsec_" must be base64` + gen
	}
	if len(key) < alertSecretMinBytes || len(key) > alertSecretMaxBytes {
		return fmt.Sprintf("the key must be %d to %d bytes (got %d)%s", alertSecretMinBytes, alertSecretMaxBytes, len(key), gen)
	}
	return ""
}
