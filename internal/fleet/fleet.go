package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
)

// HostConfig describes one Docker host.
type HostConfig struct {
	Name     string
	Engine   engine.Config // Name is set from HostConfig.Name
	Labels   map[string]string
	Capacity int     // max concurrent jobs; default 4
	Weight   float64 // placement weight; default 1
}

// HealthConfig configures the active health checks. They are an ejection
// rule of their own, apart from the breaker's count of failed real calls
// (as Envoy separates active health checking from outlier detection):
// UnhealthyThreshold failed checks in a row trip the host's breaker open at
// once, for BaseEjectionTime × consecutive trips; the breaker then probes
// and closes by itself. A check of a host whose breaker is closed is not a
// breaker call: a passing ping does not wipe out a run of failed launches.
type HealthConfig struct {
	Interval           time.Duration // between checks of a host that passes them; default 1s
	Timeout            time.Duration // ping deadline; default 1s
	Jitter             float64       // fraction of Interval and UnhealthyInterval, default 0.2; negative: none
	HealthyThreshold   int           // consecutive good checks before degraded -> healthy; default 2
	UnhealthyThreshold int           // consecutive failed checks that eject the host (open its breaker); default 2
	UnhealthyInterval  time.Duration // between checks after a failed one, to confirm it fast; default 250ms
	BaseEjectionTime   time.Duration // open time of an ejection, × consecutive trips (capped at the breaker's MaxOpenDuration); default 5s
	SlowThreshold      time.Duration // a check slower than this marks the host degraded; default Timeout/2
	// MaxEjectedPercent caps the share of hosts ejected at once for
	// slowness (health checks that time out: the daemon takes the
	// connection and does not answer in time), as Envoy's
	// max_ejection_percent does; past it a slow host stays in, degraded
	// and placed last. Whatever the cap, the last host in is never
	// ejected for slowness (a panic threshold: with every host slow,
	// fusebox keeps using them); a fleet of one host is not capped. A
	// host that refuses connections is ejected regardless. 0: 100;
	// negative: never eject for slowness.
	MaxEjectedPercent int
	Canary            CanaryConfig
}

// Defaults of HealthConfig. With them a hung daemon (it accepts
// connections and never answers) is ejected within Interval×(1+Jitter) +
// 2×Timeout + UnhealthyInterval ≈ 3.5 s, a dead one (connection refused)
// within Interval×(1+Jitter) + UnhealthyInterval ≈ 1.5 s; a ping to a
// healthy local daemon takes milliseconds, even on a loaded machine.
const (
	HealthIntervalDefault           = time.Second
	HealthTimeoutDefault            = time.Second
	HealthJitterDefault             = 0.2
	HealthHealthyThresholdDefault   = 2
	HealthUnhealthyThresholdDefault = 2
	HealthUnhealthyIntervalDefault  = 250 * time.Millisecond
	HealthBaseEjectionTimeDefault   = 5 * time.Second
	CapacityDefault                 = 4
)

func (h HealthConfig) withDefaults() HealthConfig {
	if h.Interval <= 0 {
		h.Interval = HealthIntervalDefault
	}
	if h.Timeout <= 0 {
		h.Timeout = HealthTimeoutDefault
	}
	switch {
	case h.Jitter < 0:
		h.Jitter = 0
	case h.Jitter == 0 || h.Jitter > 1:
		h.Jitter = HealthJitterDefault
	}
	if h.HealthyThreshold <= 0 {
		h.HealthyThreshold = HealthHealthyThresholdDefault
	}
	if h.UnhealthyThreshold <= 0 {
		h.UnhealthyThreshold = HealthUnhealthyThresholdDefault
	}
	if h.UnhealthyInterval <= 0 {
		h.UnhealthyInterval = min(HealthUnhealthyIntervalDefault, h.Interval)
	}
	if h.BaseEjectionTime <= 0 {
		h.BaseEjectionTime = HealthBaseEjectionTimeDefault
	}
	if h.SlowThreshold <= 0 {
		h.SlowThreshold = h.Timeout / 2
	}
	h.Canary = h.Canary.withDefaults()
	return h
}

// Config configures a Fleet.
type Config struct {
	Hosts   []HostConfig
	Breaker breaker.Settings // settings of every host's breaker
	Health  HealthConfig
	// DisableHealthChecks turns the background checks off (tests that drive
	// checks by hand with CheckNow).
	DisableHealthChecks bool
	// NoDegradation says the dispatcher spares no host that is out or slow
	// (graceful_degradation.enabled = false): Host.Struggling is then always
	// false and HostStatus.Degradation never lists logs_deferred or
	// polls_stretched.
	NoDegradation bool
	// Limiter bounds each host's in-flight Docker calls, adaptively.
	Limiter LimiterConfig
	// BreakersDisabled keeps every host breaker in the metrics-only state
	// (never rejects, still counts, so the counts stay visible):
	// circuit_breaker.enabled = false.
	BreakersDisabled bool
	Logger           *slog.Logger
}

// ErrHostNotFound is returned for an unknown host name.
var ErrHostNotFound = errors.New("host not found")

// Fleet is the set of hosts. It is safe for concurrent use.
type Fleet struct {
	cfg    Config
	logger *slog.Logger
	reg    *breaker.Registry
	hosts  []*Host
	byName map[string]*Host

	mu          sync.Mutex
	transitions []Transition // most recent last, capped
	listeners   []*listener

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const maxTransitions = 1000

// New builds a fleet with one engine client and one breaker per host. It
// does not contact the engines; Start begins the health checks.
func New(cfg Config) (*Fleet, error) {
	if len(cfg.Hosts) == 0 {
		return nil, errors.New("fleet: no hosts configured")
	}
	cfg.Health = cfg.Health.withDefaults()
	f := &Fleet{cfg: cfg, logger: cfg.Logger, byName: map[string]*Host{}}
	if f.logger == nil {
		f.logger = slog.New(slog.DiscardHandler)
	}
	bs := cfg.Breaker
	bs.Classify = classify
	userChange := bs.OnStateChange
	bs.OnStateChange = nil
	reg, err := breaker.NewRegistry(bs)
	if err != nil {
		return nil, fmt.Errorf("fleet: breaker settings: %w", err)
	}
	// On the registry, not in its default settings: breakers others create
	// in it with their own settings (a workflow's) report too.
	reg.OnStateChange(func(name string, from, to breaker.State) {
		if host, ok := strings.CutPrefix(name, breakerPrefix); ok {
			f.recordTransition(host, from, to)
		}
		if userChange != nil {
			userChange(name, from, to)
		}
	})
	f.reg = reg
	usual := &usualLatency{} // the fleet's, shared by the hosts' limiters
	for i, hc := range cfg.Hosts {
		if hc.Name == "" {
			return nil, fmt.Errorf("fleet: hosts[%d]: name is required", i)
		}
		if _, dup := f.byName[hc.Name]; dup {
			return nil, fmt.Errorf("fleet: hosts[%d]: duplicate name %q", i, hc.Name)
		}
		if hc.Capacity <= 0 {
			hc.Capacity = CapacityDefault
		}
		if hc.Weight <= 0 {
			hc.Weight = 1
		}
		ec := hc.Engine
		ec.Name = hc.Name
		// A health check is a ping: its deadline is the check's timeout.
		ec.Timeouts.Ping = cfg.Health.Timeout
		lim := newLimiter(cfg.Limiter, usual)
		lat := &latencies{}
		ec.Gate = func(ctx context.Context, op string) (func(time.Duration, engine.Class), error) {
			release, err := lim.acquire(ctx, laneOf(ctx))
			if err != nil {
				return nil, err
			}
			return func(d time.Duration, class engine.Class) {
				lat.record(d)
				release(op, d, class == engine.ClassHost)
			}, nil
		}
		cl, err := engine.New(ec)
		if err != nil {
			f.closeClients()
			return nil, fmt.Errorf("fleet: hosts[%d]: %w", i, err)
		}
		h := &Host{cfg: hc, client: cl, br: reg.Get(breakerPrefix + hc.Name), images: map[string]bool{}, health: cfg.Health, limiter: lim, calls: lat,
			noDegradation: cfg.NoDegradation}
		if cfg.BreakersDisabled {
			h.br.MetricsOnly()
		}
		f.hosts = append(f.hosts, h)
		f.byName[hc.Name] = h
	}
	return f, nil
}

const breakerPrefix = "host/"

// classify turns an engine error into a breaker outcome: only host faults
// count against the host; a job fault proves the host answered.
func classify(err error) breaker.Outcome {
	switch engine.ClassOf(err) {
	case engine.ClassHost:
		return breaker.Failure
	case engine.ClassIgnored:
		return breaker.Ignored
	}
	return breaker.Success // nil, or a job fault: the host answered
}

// Start begins the health checks. Stop ends them.
func (f *Fleet) Start(ctx context.Context) error {
	if f.cancel != nil {
		return errors.New("fleet: already started")
	}
	ctx, f.cancel = context.WithCancel(ctx)
	if f.cfg.DisableHealthChecks {
		return nil
	}
	// One check of every host before any job is placed, so that a host that
	// is down from the start is known as such (at most Health.Timeout).
	var first sync.WaitGroup
	for _, h := range f.hosts {
		first.Go(func() { f.CheckNow(ctx, h) })
	}
	first.Wait()
	for _, h := range f.hosts {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			f.healthLoop(ctx, h)
		}()
	}
	return nil
}

// Stop ends the health checks and closes the engine clients. Safe to call
// twice and before Start.
func (f *Fleet) Stop() {
	if f.cancel != nil {
		f.cancel()
	}
	f.wg.Wait()
	f.closeClients()
}

func (f *Fleet) closeClients() {
	for _, h := range f.hosts {
		h.closeOnce.Do(func() { h.client.Close() })
	}
}

// Hosts returns every host in configuration order.
func (f *Fleet) Hosts() []*Host { return f.hosts }

// Host returns the named host, or nil.
func (f *Fleet) Host(name string) *Host { return f.byName[name] }

// Subscribe adds a listener for breaker transitions of every host. The
// returned function removes it (safe to call twice).
func (f *Fleet) Subscribe(fn func(Transition)) (unsubscribe func()) {
	l := &listener{fn: fn}
	f.mu.Lock()
	f.listeners = append(f.listeners, l)
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.listeners = slices.DeleteFunc(f.listeners, func(x *listener) bool { return x == l })
		f.mu.Unlock()
	}
}

type listener struct{ fn func(Transition) }

func (f *Fleet) recordTransition(host string, from, to breaker.State) {
	t := Transition{Host: host, From: from, To: to, At: time.Now()}
	f.mu.Lock()
	f.transitions = append(f.transitions, t)
	if len(f.transitions) > maxTransitions {
		f.transitions = slices.Delete(f.transitions, 0, len(f.transitions)-maxTransitions)
	}
	ls := slices.Clone(f.listeners)
	f.mu.Unlock()
	f.logger.Info("host breaker changed", "host", host, "from", from, "to", to)
	for _, l := range ls {
		l.fn(t)
	}
}

// Breakers returns the registry that holds the hosts' breakers ("host/"
// and the host's name); other components keep theirs in it too (a
// workflow's: "workflow/" and its name), so every breaker is listed in one
// place. Only the hosts' transitions are recorded as Transitions; the
// others reach Config.Breaker.OnStateChange.
func (f *Fleet) Breakers() *breaker.Registry { return f.reg }

// Transitions returns the recorded breaker transitions, oldest first.
func (f *Fleet) Transitions() []Transition {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.transitions)
}

// Statuses returns every host's status.
func (f *Fleet) Statuses() []HostStatus {
	out := make([]HostStatus, 0, len(f.hosts))
	for _, h := range f.hosts {
		out = append(out, h.Status())
	}
	return out
}

// Matches reports whether any configured host carries every label in
// constraints (so a job with them could ever run).
func (f *Fleet) Matches(constraints map[string]string) bool {
	for _, h := range f.hosts {
		if h.matches(constraints) {
			return true
		}
	}
	return false
}

func (f *Fleet) lookup(name string) (*Host, error) {
	h := f.byName[name]
	if h == nil {
		return nil, fmt.Errorf("%w: %q", ErrHostNotFound, name)
	}
	return h, nil
}

// Isolate forces a host's breaker open: no jobs and no checks go to it
// until Release.
func (f *Fleet) Isolate(name string) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	h.br.Isolate()
	return nil
}

// Drain stops new placements on a host; running jobs finish.
func (f *Fleet) Drain(name string) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	h.draining.Store(true)
	return nil
}

// Release ends isolation and draining; the breaker resumes automatic
// operation.
func (f *Fleet) Release(name string) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	h.draining.Store(false)
	if f.cfg.BreakersDisabled {
		h.br.MetricsOnly()
	} else {
		h.br.Release()
	}
	return nil
}

// Reset closes a host's breaker and clears its counts.
func (f *Fleet) Reset(name string) error {
	h, err := f.lookup(name)
	if err != nil {
		return err
	}
	h.br.Reset()
	return nil
}

// jitter returns d varied by up to ±frac.
func jitter(d time.Duration, frac float64) time.Duration {
	if frac <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + frac*(2*rand.Float64()-1)))
}
