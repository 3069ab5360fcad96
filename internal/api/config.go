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
	Name  string // optional, for logs ("ci", "alice"); never the value
}

// Config is the API server's configuration. A zero field means its default.
type Config struct {
	// Tokens accepted in "Authorization: Bearer <value>". With none, every
	// endpoint is open, and Serve refuses any address beyond loopback.
	Tokens []Token
	// MaxBodyBytes bounds a request body (413 past it).
	MaxBodyBytes int64
	// RequestTimeout bounds every request but log follows.
	RequestTimeout time.Duration
	// QueueFullRetryAfter is the Retry-After sent with a 429 when the error
	// does not say (an error with a RetryAfter() time.Duration method does).
	QueueFullRetryAfter time.Duration
	// ShutdownTimeout bounds the wait for requests in flight when Serve's
	// context ends; connections still open after it are closed.
	ShutdownTimeout time.Duration
	// StreamWriteTimeout bounds each write of a log follow to a client, so
	// a client that stops reading cannot hold a stream forever.
	StreamWriteTimeout time.Duration
}

// Defaults of Config.
const (
	MaxBodyBytesDefault        = 1 << 20
	RequestTimeoutDefault      = 30 * time.Second
	QueueFullRetryAfterDefault = 5 * time.Second
	ShutdownTimeoutDefault     = 10 * time.Second
	StreamWriteTimeoutDefault  = time.Minute
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = MaxBodyBytesDefault
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = RequestTimeoutDefault
	}
	if c.QueueFullRetryAfter <= 0 {
		c.QueueFullRetryAfter = QueueFullRetryAfterDefault
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = ShutdownTimeoutDefault
	}
	if c.StreamWriteTimeout <= 0 {
		c.StreamWriteTimeout = StreamWriteTimeoutDefault
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
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("api: %s: must not be negative (got %v)", d.name, d.v))
		}
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("api: max_body_bytes: must not be negative (got %d)", c.MaxBodyBytes))
	}
	return errors.Join(errs...)
}

// ErrInsecureListen is wrapped by CheckListen's refusal.
var ErrInsecureListen = errors.New("refusing to listen beyond loopback without auth tokens")

// CheckListen refuses a TCP listen address that is not loopback (127.0.0.1,
// ::1, localhost) when no tokens are configured: without tokens anyone who
// can reach the address could run containers on the fleet. An empty host
// (":7070") means every interface and is refused too.
func CheckListen(addr string, tokens []Token) error {
	if len(tokens) > 0 {
		return nil
	}
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
	return fmt.Errorf("api: listen %s (%s): %w: anyone who can reach it could run containers; "+
		"configure tokens (with roles read, submit, admin), or listen on 127.0.0.1", addr, shown, ErrInsecureListen)
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
