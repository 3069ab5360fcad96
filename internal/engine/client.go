package engine

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/moby/moby/client"
)

// Timeouts are the deadlines of the bounded Docker API calls. A zero field
// means its default.
type Timeouts struct {
	Ping         time.Duration // default 2s
	Inspect      time.Duration // container inspect; default 5s
	Create       time.Duration // default 30s
	Start        time.Duration // default 30s
	Stop         time.Duration // added to the stop grace period; default 30s
	Remove       time.Duration // default 30s
	List         time.Duration // default 10s
	ImageInspect time.Duration // default 5s
	ImageLoad    time.Duration // default 5m
	ImagePull    time.Duration // default 10m
	Logs         time.Duration // inactivity deadline of a log read (no byte for this long), not a whole-read one; default 30s
	Archive      time.Duration // inactivity deadline of an archive copy (CopyFrom, CopyTo), not a whole-copy one; default 30s
}

// Default call deadlines.
const (
	PingTimeoutDefault         = 2 * time.Second
	InspectTimeoutDefault      = 5 * time.Second
	CreateTimeoutDefault       = 30 * time.Second
	StartTimeoutDefault        = 30 * time.Second
	StopTimeoutDefault         = 30 * time.Second
	RemoveTimeoutDefault       = 30 * time.Second
	ListTimeoutDefault         = 10 * time.Second
	ImageInspectTimeoutDefault = 5 * time.Second
	ImageLoadTimeoutDefault    = 5 * time.Minute
	ImagePullTimeoutDefault    = 10 * time.Minute
	LogsTimeoutDefault         = 30 * time.Second
	ArchiveTimeoutDefault      = 30 * time.Second
)

// WithDefaults returns t with every zero field set to its default.
func (t Timeouts) WithDefaults() Timeouts {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.Ping, PingTimeoutDefault)
	def(&t.Inspect, InspectTimeoutDefault)
	def(&t.Create, CreateTimeoutDefault)
	def(&t.Start, StartTimeoutDefault)
	def(&t.Stop, StopTimeoutDefault)
	def(&t.Remove, RemoveTimeoutDefault)
	def(&t.List, ListTimeoutDefault)
	def(&t.ImageInspect, ImageInspectTimeoutDefault)
	def(&t.ImageLoad, ImageLoadTimeoutDefault)
	def(&t.ImagePull, ImagePullTimeoutDefault)
	def(&t.Logs, LogsTimeoutDefault)
	def(&t.Archive, ArchiveTimeoutDefault)
	return t
}

// TLS holds the client-certificate files for a tcp+TLS host.
type TLS struct {
	CAFile             string
	CertFile           string
	KeyFile            string
	InsecureSkipVerify bool
}

// Config describes one Docker host.
type Config struct {
	Name        string // the host's name in fusebox, used in errors
	Address     string // unix:///path or tcp://host:port
	TLS         *TLS   // only for tcp
	NetworkMode string // network mode for job containers ("" = engine default)
	Timeouts    Timeouts
	// Observe, if set, is called after every bounded call with its
	// operation, duration and error class (for latency metrics). It must
	// not block.
	Observe func(host, op string, d time.Duration, class Class)
	// Gate, if set, is passed through by every bounded call but ping before
	// it starts (the call's deadline starts after it): it may make the call
	// wait, or refuse it with an error. release gets the call's duration
	// and class. The fleet uses it to bound the calls in flight per host.
	Gate func(ctx context.Context, op string) (release func(d time.Duration, class Class), err error)
	// Dial, if set, replaces the connection to Address (which must still
	// be well formed): the in-process simulated engines of internal/sim
	// (the scale benchmarks) are reached through it. TLS is not applied.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Client talks to one Docker host. It is safe for concurrent use.
type Client struct {
	name     string
	network  string
	timeouts Timeouts
	api      *client.Client // bounded calls: each gets its own deadline
	stream   *client.Client // wait, logs follow, events: bounded by their context only
	observe  func(host, op string, d time.Duration, class Class)
	gate     func(ctx context.Context, op string) (func(time.Duration, Class), error)
	probe    *client.Client // Ping only: /_ping is not versioned, so it never negotiates
	// The moby client negotiates the API version lazily, inside the first
	// call that needs it, under a lock that no context cancels: against a
	// daemon that hangs, every call would wait for that first one's
	// deadline. So once a Ping has answered, api and stream negotiate at
	// once, in the background (negotiate), before other calls need it; and
	// Ping itself, the health check, never waits for that lock.
	negotiating sync.Mutex // held by the one negotiate running
	negotiated  atomic.Bool
	wg          sync.WaitGroup
}

// New returns a client for cfg. It does not contact the engine.
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		return nil, errors.New("engine: host name is required")
	}
	if !strings.HasPrefix(cfg.Address, "unix://") && !strings.HasPrefix(cfg.Address, "tcp://") {
		return nil, fmt.Errorf("engine %s: address %q: must start with unix:// or tcp://", cfg.Name, cfg.Address)
	}
	if cfg.TLS != nil && !strings.HasPrefix(cfg.Address, "tcp://") {
		return nil, fmt.Errorf("engine %s: tls is only valid with a tcp:// address", cfg.Name)
	}
	t := cfg.Timeouts.WithDefaults()
	// A backstop on the bounded client, above every per-call deadline,
	// catches a call that forgot its context deadline.
	backstop := max(t.ImagePull, t.ImageLoad) + time.Minute
	api, err := newAPIClient(cfg, backstop)
	if err != nil {
		return nil, fmt.Errorf("engine %s: %w", cfg.Name, err)
	}
	stream, err := newAPIClient(cfg, 0)
	if err != nil {
		api.Close()
		return nil, fmt.Errorf("engine %s: %w", cfg.Name, err)
	}
	probe, err := newAPIClient(cfg, backstop)
	if err != nil {
		api.Close()
		stream.Close()
		return nil, fmt.Errorf("engine %s: %w", cfg.Name, err)
	}
	return &Client{name: cfg.Name, network: cfg.NetworkMode, timeouts: t, api: api, stream: stream, probe: probe, observe: cfg.Observe, gate: cfg.Gate}, nil
}

func newAPIClient(cfg Config, timeout time.Duration) (*client.Client, error) {
	// API-version negotiation is on by default in this client: it speaks
	// to Docker 20.10 (API 1.41) as well as current engines.
	opts := []client.Opt{client.WithUserAgent("fusebox")}
	if cfg.TLS != nil {
		tc, err := tlsConfig(cfg.TLS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithHTTPClient(&http.Client{Transport: &http.Transport{TLSClientConfig: tc}}))
	}
	opts = append(opts, client.WithHost(cfg.Address))
	if cfg.Dial != nil {
		opts = append(opts, client.WithDialContext(cfg.Dial))
	}
	if timeout > 0 {
		opts = append(opts, client.WithTimeout(timeout))
	}
	return client.New(opts...)
}

// tlsConfig builds the client TLS configuration from certificate files.
func tlsConfig(t *TLS) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: t.InsecureSkipVerify}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificate found", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		return nil, errors.New("tls: cert and key must be given together")
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Name returns the host's name.
func (c *Client) Name() string { return c.name }

// Timeouts returns the client's call deadlines, defaults filled in.
func (c *Client) Timeouts() Timeouts { return c.timeouts }

// Close releases the client's connections, once a negotiation under way
// has ended.
func (c *Client) Close() error {
	c.wg.Wait()
	return errors.Join(c.api.Close(), c.stream.Close(), c.probe.Close())
}

// call runs fn with a deadline of d added to ctx and classifies its error.
func (c *Client) call(ctx context.Context, op string, d time.Duration, fn func(ctx context.Context) error) (err error) {
	if c.gate != nil && op != "ping" {
		release, gerr := c.gate(ctx, op)
		if gerr != nil {
			return classify(ctx, c.name, op, gerr)
		}
		start := time.Now()
		defer func() { release(time.Since(start), ClassOf(err)) }()
	}
	cctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	cctx, sent := traceSent(cctx)
	start := time.Now()
	err = classify(ctx, c.name, op, fn(cctx))
	markNotSent(err, sent)
	if c.observe != nil {
		c.observe(c.name, op, time.Since(start), ClassOf(err))
	}
	return err
}

// Ping checks that the engine answers, within the ping deadline. A
// deadlocked daemon may still answer ping (nomad#1359); the fleet's canary
// check covers that.
func (c *Client) Ping(ctx context.Context) error {
	return c.call(ctx, "ping", c.timeouts.Ping, func(ctx context.Context) error {
		_, err := c.probe.Ping(ctx, client.PingOptions{})
		if err == nil && !c.negotiated.Load() && c.negotiating.TryLock() {
			c.wg.Add(1)
			go c.negotiate()
		}
		return err
	})
}

// negotiate has api and stream learn the engine's API version, each with
// a ping's deadline; a failure leaves it to the next Ping. It runs in the
// background because another call may hold a client's negotiation lock
// (until its own deadline, or for good: a stream against a daemon that
// hangs); Close waits for it.
func (c *Client) negotiate() {
	defer c.wg.Done()
	defer c.negotiating.Unlock()
	for _, cl := range []*client.Client{c.api, c.stream} {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeouts.Ping)
		_, err := cl.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
		cancel()
		if err != nil {
			return
		}
	}
	c.negotiated.Store(true)
}

// Version returns the engine's version and API version.
func (c *Client) Version(ctx context.Context) (version, apiVersion string, err error) {
	err = c.call(ctx, "version", c.timeouts.Ping, func(ctx context.Context) error {
		v, err := c.api.ServerVersion(ctx, client.ServerVersionOptions{})
		version, apiVersion = v.Version, v.APIVersion
		return err
	})
	return version, apiVersion, err
}
