package api

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"
)

// Role is what a token may do. Each role includes the ones below it:
// read < submit < admin.
type Role string

const (
	RoleRead   Role = "read"   // every GET
	RoleSubmit Role = "submit" // submit and cancel jobs
	RoleAdmin  Role = "admin"  // isolate, drain, release, reset hosts
)

// level orders roles; 0 for an unknown role.
func (r Role) level() int {
	switch r {
	case RoleRead:
		return 1
	case RoleSubmit:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// Valid reports whether r is read, submit or admin.
func (r Role) Valid() bool { return r.level() > 0 }

// Token is one bearer token and its role.
type Token struct {
	Value string
	Role  Role
	Name  string // optional, for logs and as who did an operator action ("ci", "alice"); never the value
}

// Config is the API server's configuration. A zero field means its default.
type Config struct {
	// Tokens accepted in "Authorization: Bearer <value>". With none, every
	// endpoint is open, and Serve refuses any address beyond loopback.
	Tokens []Token
	// TLS, when set, makes Serve serve HTTPS with the certificate and key
	// in these files, read again when their content changes (no restart).
	TLS *TLSFiles
	// InsecureHTTP lets Serve listen beyond loopback with tokens but without
	// TLS (behind a proxy that terminates TLS, say). Tokens are still
	// required beyond loopback.
	InsecureHTTP bool
	// MaxBodyBytes bounds a request body (413 past it).
	MaxBodyBytes int64
	// RequestTimeout bounds every request but log follows.
	RequestTimeout time.Duration
	// QueueFullRetryAfter is the Retry-After sent with a 429 when the error
	// does not say (an error with a RetryHint does).
	QueueFullRetryAfter time.Duration
	// ShutdownTimeout bounds the wait for requests in flight when Serve's
	// context ends; connections still open after it are closed.
	ShutdownTimeout time.Duration
	// StreamWriteTimeout bounds each write of a log follow to a client, so
	// a client that stops reading cannot hold a stream forever.
	StreamWriteTimeout time.Duration
	// ReadHeaderTimeout, ReadTimeout and IdleTimeout are the http.Server's:
	// reading a request's header, reading the whole request, and keeping an
	// idle connection open.
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	IdleTimeout       time.Duration
	// WriteTimeout bounds writing the answer of every route but log follows,
	// counted from when its handler starts (default: RequestTimeout + 10s).
	// A follow instead has StreamWriteTimeout on each of its writes.
	WriteTimeout time.Duration
	// MaxFollowsPerToken bounds the log follows one token (or, without
	// tokens, every client together) may have open at once, and apart from
	// them its event streams; the next one is refused with 429.
	MaxFollowsPerToken int
	// FollowStartTimeout ends a log follow of a job that stays queued or
	// launching (at the start, or after a failover) this long, with an
	// error event saying so.
	FollowStartTimeout time.Duration
	// EventHeartbeat is how often GET /v1/events sends a comment line on an
	// idle stream, so that proxies and load balancers keep it open.
	EventHeartbeat time.Duration
}

// TLSFiles names the PEM files of the API server's certificate (with its
// chain) and private key.
type TLSFiles struct {
	CertFile string
	KeyFile  string
}

// Defaults of Config.
const (
	MaxBodyBytesDefault        = 1 << 20
	RequestTimeoutDefault      = 30 * time.Second
	QueueFullRetryAfterDefault = 5 * time.Second
	ShutdownTimeoutDefault     = 10 * time.Second
	StreamWriteTimeoutDefault  = time.Minute
	ReadHeaderTimeoutDefault   = 10 * time.Second
	ReadTimeoutDefault         = time.Minute
	IdleTimeoutDefault         = 2 * time.Minute
	MaxFollowsPerTokenDefault  = 8
	FollowStartTimeoutDefault  = 10 * time.Minute
	EventHeartbeatDefault      = 15 * time.Second
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	def(&c.RequestTimeout, RequestTimeoutDefault)
	def(&c.QueueFullRetryAfter, QueueFullRetryAfterDefault)
	def(&c.ShutdownTimeout, ShutdownTimeoutDefault)
	def(&c.StreamWriteTimeout, StreamWriteTimeoutDefault)
	def(&c.ReadHeaderTimeout, ReadHeaderTimeoutDefault)
	def(&c.ReadTimeout, ReadTimeoutDefault)
	def(&c.IdleTimeout, IdleTimeoutDefault)
	def(&c.WriteTimeout, c.RequestTimeout+10*time.Second)
	def(&c.FollowStartTimeout, FollowStartTimeoutDefault)
	def(&c.EventHeartbeat, EventHeartbeatDefault)
	if c.MaxFollowsPerToken <= 0 {
		c.MaxFollowsPerToken = MaxFollowsPerTokenDefault
	}
	return c
}

// Validate returns every problem of c, each naming its field
// ("tokens[1].role").
func (c Config) Validate() error {
	var errs []error
	seen := map[string]int{}
	for i, t := range c.Tokens {
		switch {
		case t.Value == "":
			errs = append(errs, fmt.Errorf("api: tokens[%d].value: is empty", i))
		case strings.ContainsAny(t.Value, " \t\r\n"):
			errs = append(errs, fmt.Errorf("api: tokens[%d].value: must not contain white space", i))
		default:
			if j, ok := seen[t.Value]; ok {
				errs = append(errs, fmt.Errorf("api: tokens[%d].value: is the same as tokens[%d].value", i, j))
			}
			seen[t.Value] = i
		}
		if !t.Role.Valid() {
			errs = append(errs, fmt.Errorf("api: tokens[%d].role: must be one of read, submit, admin (got %q)", i, t.Role))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"request_timeout", c.RequestTimeout}, {"queue_full_retry_after", c.QueueFullRetryAfter},
		{"shutdown_timeout", c.ShutdownTimeout}, {"stream_write_timeout", c.StreamWriteTimeout},
		{"read_header_timeout", c.ReadHeaderTimeout}, {"read_timeout", c.ReadTimeout},
		{"idle_timeout", c.IdleTimeout}, {"write_timeout", c.WriteTimeout},
		{"follow_start_timeout", c.FollowStartTimeout}, {"event_heartbeat", c.EventHeartbeat},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("api: %s: must not be negative (got %v)", d.name, d.v))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("api: max_body_bytes: must not be negative (got %d)", c.MaxBodyBytes))
	}
	if c.MaxFollowsPerToken < 0 {
		errs = append(errs, fmt.Errorf("api: max_follows_per_token: must not be negative (got %d)", c.MaxFollowsPerToken))
	}
	if t := c.TLS; t != nil {
		if t.CertFile == "" {
			errs = append(errs, errors.New("api: tls.cert: is required with tls (the server certificate's PEM file)"))
		}
		if t.KeyFile == "" {
			errs = append(errs, errors.New("api: tls.key: is required with tls (the server key's PEM file)"))
		}
	}
	return errors.Join(errs...)
}

// ErrInsecureListen is wrapped by CheckListen's refusals.
var ErrInsecureListen = errors.New("refusing to listen beyond loopback")

// CheckListen refuses a TCP listen address beyond loopback (anything but
// 127.0.0.1, ::1, localhost; an empty host, ":7070", means every interface)
// when no tokens are configured (anyone who could reach it could run
// containers on the fleet), and when there is no TLS and InsecureHTTP is
// not set (the bearer tokens would cross the network in clear).
func (c Config) CheckListen(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("api: listen address %q: %w (use host:port, e.g. 127.0.0.1:7070)", addr, err)
	}
	if isLoopback(host) {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	switch {
	case len(c.Tokens) == 0:
		return fmt.Errorf("api: listen %s (%s): %w without auth tokens: anyone who can reach it could run containers; "+
			"configure tokens (with roles read, submit, admin), or listen on 127.0.0.1", addr, shown, ErrInsecureListen)
	case c.TLS == nil && !c.InsecureHTTP:
		return fmt.Errorf("api: listen %s (%s): %w over plain HTTP: the bearer tokens would cross the network in clear; "+
			"configure api.tls (cert and key), or set api.insecure_http: true if a proxy in front terminates TLS", addr, shown, ErrInsecureListen)
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	if i := strings.IndexByte(host, '%'); i >= 0 { // IPv6 zone
		host = host[:i]
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
