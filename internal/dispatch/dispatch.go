package dispatch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// LostPolicy says what happens to a job whose host stays unreachable.
type LostPolicy string

const (
	LostReschedule LostPolicy = "reschedule" // run it again elsewhere (uses an attempt)
	LostMark       LostPolicy = "lost"       // mark it lost
)

// Config configures a Dispatcher. A zero field means its default.
type Config struct {
	MaxQueued         int           // queue bound; default 1000
	MaxAttempts       int           // default per job; default 3
	Backoff           time.Duration // first retry delay after a host fault; default 1s
	MaxBackoff        time.Duration // default 1m
	Jitter            float64       // fraction; default 0.2
	LogMaxBytes       int           // per stream; default 1 MiB
	PollInterval      time.Duration // status polling when the event stream is down; default 2s
	StopGrace         time.Duration // SIGTERM then SIGKILL after this; default 10s
	LostAfter         time.Duration // default 5m
	LostPolicy        LostPolicy    // default reschedule
	ReconcileInterval time.Duration // sweep for dangling containers; default 1m
	RetryAfter        time.Duration // hint given with ErrQueueFull; default 5s
	SpecLimits        job.Limits    // bounds of a submitted spec, for Spec.ValidateWith; zero fields: job's defaults
	// NoDegradation is graceful_degradation.enabled = false: fusebox does
	// none of the things that spare a host that is out. A job no host can
	// take because every matching host is out (open, isolated, draining,
	// canary failing) fails at once instead of queueing (full hosts still
	// mean waiting); the status polls of a host that is out are not spaced
	// out; and the output of a job whose host is out is not waited for: the
	// job ends with what was collected, and says so.
	NoDegradation bool
	Retention     time.Duration // finished jobs (transitions, attempts, logs) are deleted this long after they end; 0 keeps them forever (no default here: the config file's is 7 days)
	Logger        *slog.Logger
	Hooks         Hooks
	// Events wakes FollowLogs when the job it follows changes (the event
	// bus, fed by the store's commits). Nil: FollowLogs looks at the job
	// every FollowPollInterval instead.
	Events JobEvents
	// Instance is the id of this fusebox (store.Store.InstanceID): its
	// containers carry it (job.LabelInstance), and containers that carry
	// another are never removed, adopted or counted as its own. Empty: the
	// label is not set, and every fusebox-managed container is taken as
	// this fusebox's (tests with one fusebox).
	Instance string
	// Artifacts moves the artifacts of jobs that have them: Spec.Inputs are
	// unpacked into the container after it is created and before it
	// starts, Spec.Outputs collected when it exits 0, before it is removed.
	// Nil: a spec with inputs or outputs is refused.
	Artifacts Artifacts
	// Images gets a placed job's image onto a host that lacks it (run.go).
	// Nil: the host pulls it.
	Images Images
}

// Artifacts copies artifacts into and out of containers
// (*artifact.Store is one).
type Artifacts interface {
	CopyIn(ctx context.Context, c *engine.Client, containerID string, inputs []job.Input) error
	CopyOut(ctx context.Context, c *engine.Client, containerID string, paths []string) ([]job.Output, error)
}

// engineHostFault reports whether err is the engine's own host fault (an
// *engine.Error of class host), not an error of the artifact store that
// merely has no class.
func engineHostFault(err error) bool {
	var ee *engine.Error
	return errors.As(err, &ee) && ee.Class == engine.ClassHost
}

// artifactError is an input that could not be unpacked for a reason that
// is not the host's (an artifact missing from the store): the job fails
// with CauseArtifact.
type artifactError struct{ err error }

func (e *artifactError) Error() string { return "artifacts: " + e.err.Error() }
func (e *artifactError) Unwrap() error { return e.err }

// JobEvents follows the event log: *event.Bus is one.
type JobEvents interface {
	Subscribe(f event.Filter, afterSeq int64) *event.Subscription
}

// FollowPollInterval is how often FollowLogs looks at its job without
// Config.Events.
const FollowPollInterval = 250 * time.Millisecond

// Hooks let the owner observe the dispatcher (metrics, alerts). Each may be
// nil and must not block.
type Hooks struct {
	Submitted func(*job.Job)
	Rejected  func(reason string)
	Placed    func(j *job.Job, host string)
	Finished  func(*job.Job)
}

// Defaults.
const (
	MaxQueuedDefault         = 1000
	MaxAttemptsDefault       = 3
	BackoffDefault           = time.Second
	MaxBackoffDefault        = time.Minute
	JitterDefault            = 0.2
	LogMaxBytesDefault       = 1 << 20
	PollIntervalDefault      = 2 * time.Second
	StopGraceDefault         = 10 * time.Second
	LostAfterDefault         = 5 * time.Minute
	ReconcileIntervalDefault = time.Minute
	RetryAfterDefault        = 5 * time.Second
)

// WithDefaults returns c with every zero field set to its default.
func (c Config) WithDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.MaxQueued <= 0 {
		c.MaxQueued = MaxQueuedDefault
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = MaxAttemptsDefault
	}
	def(&c.Backoff, BackoffDefault)
	def(&c.MaxBackoff, MaxBackoffDefault)
	if c.Jitter < 0 || c.Jitter > 1 {
		c.Jitter = JitterDefault
	}
	if c.LogMaxBytes <= 0 {
		c.LogMaxBytes = LogMaxBytesDefault
	}
	def(&c.PollInterval, PollIntervalDefault)
	def(&c.StopGrace, StopGraceDefault)
	def(&c.LostAfter, LostAfterDefault)
	if c.LostPolicy == "" {
		c.LostPolicy = LostReschedule
	}
	def(&c.ReconcileInterval, ReconcileIntervalDefault)
	def(&c.RetryAfter, RetryAfterDefault)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Dispatcher runs jobs on a fleet. Create with New, then Start.
type Dispatcher struct {
	cfg   Config
	store store.Store
	fleet *fleet.Fleet
	log   *slog.Logger

	wake chan struct{}

	fenceWake chan struct{}
	fenceMu   sync.Mutex // the fences of the store and the hosts' counts of them, together

	mu       sync.Mutex
	handles  map[string]*handle                             // active jobs by id
	byCID    map[string]*handle                             // active jobs by container id
	events   map[string]bool                                // host -> event stream up
	outages  map[string][]outage                            // host -> recent event-stream outages, oldest first
	launches map[string]map[*handle]context.CancelCauseFunc // host -> launches in flight

	ctx         context.Context
	cancel      context.CancelFunc
	unsubscribe func()
	wg          sync.WaitGroup
}

// New returns a dispatcher over st and fl.
func New(cfg Config, st store.Store, fl *fleet.Fleet) *Dispatcher {
	cfg = cfg.WithDefaults()
	return &Dispatcher{
		cfg: cfg, store: st, fleet: fl, log: cfg.Logger,
		wake:      make(chan struct{}, 1),
		fenceWake: make(chan struct{}, 1),
		handles:   map[string]*handle{},
		byCID:     map[string]*handle{},
		events:    map[string]bool{},
		outages:   map[string][]outage{},

		launches: map[string]map[*handle]context.CancelCauseFunc{},
	}
}

// Start recovers the jobs a previous run left launching or running (adopting
// their containers), then starts placing queued jobs, watching each host's
// event stream and sweeping dangling containers. It returns once recovery
// has been read from the store; the work goes on in the background until
// Stop.
func (d *Dispatcher) Start(ctx context.Context) error {
	if d.cancel != nil {
		return errors.New("dispatch: already started")
	}
	d.ctx, d.cancel = context.WithCancel(ctx)
	active, err := d.store.JobListActive(d.ctx)
	if err != nil {
		d.cancel()
		return fmt.Errorf("dispatch: recover: %w", err)
	}
	// Hosts with containers fenced by a previous run get no jobs until
	// those are removed.
	if err := d.loadFences(d.ctx); err != nil {
		d.cancel()
		return fmt.Errorf("dispatch: recover fences: %w", err)
	}
	for _, h := range d.fleet.Hosts() {
		d.goBackground(func() { d.watchEvents(d.ctx, h) })
	}
	for _, j := range active {
		d.recoverJob(j)
	}
	d.unsubscribe = d.fleet.Subscribe(func(t fleet.Transition) {
		switch t.To {
		case breaker.StateClosed, breaker.StateHalfOpen:
			signal(d.fenceWake)
			d.Wake()
		case breaker.StateOpen:
			d.abortLaunches(t.Host)
		}
	})
	d.goBackground(func() { d.scheduleLoop(d.ctx) })
	d.goBackground(func() { d.reconcileLoop(d.ctx) })
	d.goBackground(func() { d.fenceLoop(d.ctx) })
	d.startRetention()
	return nil
}

// Stop ends the dispatcher's work and waits for it. Running containers are
// left running; a later Start adopts them. Safe to call twice and before
// Start.
func (d *Dispatcher) Stop() {
	if d.cancel == nil {
		return
	}
	if d.unsubscribe != nil {
		d.unsubscribe()
	}
	d.cancel()
	d.wg.Wait()
}

func (d *Dispatcher) goBackground(fn func()) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		fn()
	}()
}

// Wake asks the scheduler to look at the queue now.
func (d *Dispatcher) Wake() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// backoff returns the delay before attempt+1 after a host fault on attempt.
func (d *Dispatcher) backoff(j *job.Job) time.Duration {
	base := d.cfg.Backoff
	if j.Spec.RetryBackoff > 0 {
		base = j.Spec.RetryBackoff.Std()
	}
	b := base
	for i := 1; i < j.Attempt && b < d.cfg.MaxBackoff; i++ {
		b *= 2
	}
	b = min(b, d.cfg.MaxBackoff)
	if d.cfg.Jitter > 0 {
		b = time.Duration(float64(b) * (1 + d.cfg.Jitter*(2*rand.Float64()-1)))
	}
	return b
}

func (d *Dispatcher) maxAttempts(j *job.Job) int {
	if j.Spec.MaxAttempts > 0 {
		return j.Spec.MaxAttempts
	}
	return d.cfg.MaxAttempts
}
