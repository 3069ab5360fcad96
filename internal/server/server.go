// Package server wires fusebox together for `fusebox serve`: it translates
// the configuration into each package's own settings, opens the store,
// builds the fleet, the dispatcher, the metrics and the HTTP API, and runs
// them until its context ends.
//
// It holds no business logic and must not be imported by the packages it
// wires.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/alert"
	"fusebox/internal/api"
	"fusebox/internal/config"
	"fusebox/internal/dispatch"
	"fusebox/internal/engine"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/image"
	"fusebox/internal/job"
	"fusebox/internal/metrics"
	"fusebox/internal/store"
	"fusebox/internal/store/sqlite"
	"fusebox/internal/ui"
	"fusebox/internal/workflow"
	"fusebox/internal/workflow/artifact"
)

// Server is a running fusebox: store, fleet, dispatcher, metrics and API.
type Server struct {
	Config     *config.Config
	Store      store.Store
	Fleet      *fleet.Fleet
	Dispatcher *dispatch.Dispatcher
	Metrics    *metrics.Metrics
	API        *api.Server
	Events     *event.Bus     // the event stream, fed by the store's hook
	Alerts     *alert.Manager // operator alerts: evaluated from the stream, delivered from the outbox
	Workflows  *workflow.Runner
	Artifacts  *artifact.Store // the workflows' artifacts, in data_dir/artifacts
	Images     *image.Distributor
	Logger     *slog.Logger

	hostEvents *hostEvents
}

// Options adjust a Server beyond its configuration file.
type Options struct {
	Logger *slog.Logger // default: text to stderr at the configured level
	// Tokens for the API; when empty, the API refuses to listen beyond
	// loopback.
	Tokens []api.Token
}

// New builds a server from cfg. It opens the store but contacts no engine;
// Run starts the work.
func New(ctx context.Context, cfg *config.Config, o Options) (*Server, error) {
	logger := o.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, err
	}
	m := metrics.New()
	bus := event.New(st, logger)
	st.SetEventHook(bus.Notify)
	he := newHostEvents(st, logger)

	fc := fleetConfig(cfg)
	fc.Logger = logger
	fc.Breaker.OnStateChange = func(name string, from, to breaker.State) {
		if !strings.HasPrefix(name, "host/") { // a host's reaches onTransition
			he.named(name, from, to)
			logger.Info("breaker changed", "breaker", name, "from", from, "to", to)
		}
	}
	onTransition := func(t fleet.Transition) {
		m.BreakerTransition(t.Host, t.From, t.To)
		he.breaker(t)
		if t.To == breaker.StateOpen {
			logger.Warn("host unavailable: breaker opened", "host", t.Host)
		}
	}
	for i := range fc.Hosts {
		fc.Hosts[i].Engine.Observe = func(host, op string, d time.Duration, class engine.Class) {
			m.ObserveDockerCall(host, op, d, class.String())
		}
	}
	fl, err := fleet.New(fc)
	if err != nil {
		st.Close()
		return nil, err
	}
	fl.Subscribe(onTransition)
	if err := restoreOperators(ctx, st, fl, logger); err != nil {
		st.Close()
		return nil, err
	}
	for _, h := range fl.Hosts() {
		m.SetBreakerState(h.Name(), h.Breaker().State())
	}

	dc := dispatchConfig(cfg)
	dc.Logger = logger
	if dc.Instance, err = st.InstanceID(ctx); err != nil {
		st.Close()
		return nil, err
	}
	dc.Events = bus
	dc.Hooks = dispatch.Hooks{
		Submitted: func(*job.Job) { m.JobSubmitted() },
		Rejected:  m.JobRejected,
		Placed:    func(_ *job.Job, host string) { m.JobPlaced(host) },
		Finished:  func(j *job.Job) { m.JobFinished(j.State) },
	}
	arts, err := artifact.Open(filepath.Join(cfg.DataDir, "artifacts"), artifact.Options{MaxBytes: int64(cfg.Workflows.MaxArtifactBytes)})
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("artifact store: %w", err)
	}
	dc.Artifacts = arts
	ic, err := imageConfig(cfg)
	if err != nil {
		st.Close()
		return nil, err
	}
	ic.Logger = logger
	images, err := image.New(ic, fl, fl.Breakers())
	if err != nil {
		st.Close()
		return nil, err
	}
	dc.Images = images
	d := dispatch.New(dc, st, fl)
	wo := workflowOptions(cfg)
	wo.Logger = logger
	runner, err := workflow.New(st, d, bus, imageIDs{fl}, arts, fl.Breakers(), wo)
	if err != nil {
		st.Close()
		return nil, err
	}
	m.SetQueueCapacity(cfg.Queue.MaxQueuedJobs)
	m.SetQueueFunc(func() (int, int) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		qs, err := d.Stats(ctx)
		if err != nil {
			return 0, 0
		}
		return qs.Queued, qs.Running
	})

	ac := apiConfig(cfg, o.Tokens)
	ac.QueueFullRetryAfter = dc.WithDefaults().RetryAfter
	if err := ac.Validate(); err != nil {
		st.Close()
		return nil, err
	}
	ao := alertOptions(cfg.Alerts)
	ao.Logger, ao.Observer = logger, m
	am, err := alert.New(st, alertSource{fl: fl, d: d}, alertEvents{bus}, ao)
	if err != nil {
		st.Close()
		return nil, err
	}
	srv := &Server{Config: cfg, Store: st, Fleet: fl, Dispatcher: d, Metrics: m, Events: bus, Alerts: am, Workflows: runner,
		Artifacts: arts, Images: images, Logger: logger, hostEvents: he}
	svc, fv, ev, wv := service{Dispatcher: d, metrics: m}, newFleetView(fl, st), eventsView{st: st, bus: bus}, workflowsView{r: runner, arts: arts}
	srv.API = api.New(ac, svc, fv, m, logger)
	srv.API.SetEvents(ev)
	srv.API.SetAlerts(alertsView{m: am, st: st})
	srv.API.SetWorkflows(wv)
	srv.API.SetBreakers(fl.Breakers())
	srv.API.SetImages(images)
	dash, err := ui.New(ui.Options{Jobs: svc, Fleet: fv, Events: ev, Workflows: wv, Breakers: fl.Breakers(), Auth: srv.API, Logger: logger})
	if err != nil {
		st.Close()
		return nil, err
	}
	srv.API.SetUI(dash)
	srv.API.SetRecorder(storeRecorder{st})
	return srv, nil
}

func openStore(ctx context.Context, cfg *config.Config) (store.Store, error) {
	driver, dsn := cfg.DB()
	switch driver {
	case "sqlite":
		if err := os.MkdirAll(filepath.Dir(dsn), 0o750); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
		db, err := sqlite.Open(ctx, dsn)
		if err != nil {
			return nil, fmt.Errorf("open database %s: %w", dsn, err)
		}
		return db, nil
	}
	return nil, fmt.Errorf("database driver %q is not supported yet", driver)
}

// Run starts the fleet's health checks and the dispatcher, serves the API (and the MCP server at /mcp)
// on ln until ctx ends, then stops everything (running containers keep
// running; the next start adopts them).
//
// It logs, once every host has been checked and before any job is placed,
// whether each host answered (with the error of one that did not), and the
// start and end of its shutdown with the jobs it leaves behind.
func (s *Server) Run(ctx context.Context, ln net.Listener) error {
	defer s.Store.Close()
	if err := s.Events.Start(ctx); err != nil {
		return err
	}
	defer s.Events.Stop()
	if err := s.hostEvents.Start(ctx); err != nil {
		return err
	}
	defer s.hostEvents.Stop() // after the fleet's: its last transitions are stored
	if err := s.Fleet.Start(ctx); err != nil {
		return err
	}
	defer s.Fleet.Stop()
	s.logHosts()
	if err := s.Dispatcher.Start(ctx); err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			s.Dispatcher.Stop()
		}
	}()
	if err := s.Workflows.Start(ctx); err != nil {
		return err
	}
	defer s.Workflows.Stop() // on an early return; the shutdown below stops it before the dispatcher
	// Alerts start once every host has been checked and recovery is done,
	// so that a firing alert is not resolved by a fleet not checked yet.
	if err := s.Alerts.Start(ctx); err != nil {
		return err
	}
	defer s.Alerts.Stop()
	var wg sync.WaitGroup
	loops, stopLoops := context.WithCancel(ctx)
	defer func() { stopLoops(); wg.Wait() }()
	wg.Go(func() { s.publishHostStates(loops) })
	wg.Go(func() { s.collectArtifacts(loops) })
	counted := s.Events.Subscribe(event.Filter{}, event.FromNow)
	defer counted.Close()
	wg.Go(func() { // fusebox_events_total
		for ev := range counted.C() {
			s.Metrics.EventAppended(ev.Type)
		}
	})
	s.Logger.Info("fusebox serving", "addr", ln.Addr().String(), "hosts", len(s.Fleet.Hosts()), "max_queued", s.Config.Queue.MaxQueuedJobs)
	s.mountMCP(ln)
	err := s.API.Serve(ctx, ln)
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	start := time.Now()
	s.Logger.Info("fusebox shutting down", append([]any{"cause", shutdownCause(ctx, err)}, s.jobCounts()...)...)
	s.Workflows.Stop() // first: no step is submitted to a stopping dispatcher
	s.Dispatcher.Stop()
	stopped = true
	s.Logger.Info("fusebox stopped: jobs left running keep running and are adopted at the next start",
		append([]any{"took", time.Since(start).Round(time.Millisecond)}, s.jobCounts()...)...)
	return err
}

// logHosts says, for every host, whether its first health check passed.
func (s *Server) logHosts() {
	for _, h := range s.Fleet.Statuses() {
		switch {
		case h.LastCheck.IsZero():
			s.Logger.Info("host not checked yet", "host", h.Name, "address", h.Address, "state", h.State)
		case h.LastError != "":
			s.Logger.Warn("host cannot be reached: no jobs go to it until it answers", "host", h.Name, "address", h.Address,
				"state", h.State, "err", h.LastError)
		default:
			s.Logger.Info("host answered", "host", h.Name, "address", h.Address, "state", h.State,
				"latency", h.Latency.Round(time.Microsecond))
		}
	}
}

// jobCounts returns the unfinished jobs, as log attributes.
func (s *Server) jobCounts() []any {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	qs, err := s.Dispatcher.Stats(ctx)
	if err != nil {
		return []any{"jobs_err", err}
	}
	return []any{"queued", qs.Queued, "launching", qs.ByState[job.StateLaunching], "running", qs.ByState[job.StateRunning]}
}

func shutdownCause(ctx context.Context, err error) string {
	switch {
	case err != nil:
		return err.Error()
	case context.Cause(ctx) != nil:
		return context.Cause(ctx).Error()
	}
	return "stopped"
}

// publishHostStates keeps the fusebox_host_state gauges current (a host's
// state also moves with its health checks, not only with its breaker), and
// appends a host.state event when a host's state changes.
func (s *Server) publishHostStates(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	last := map[string]fleet.HostState{}
	lastModes := map[string]string{}
	var all []string
	for _, m := range fleet.DegradationModes() {
		all = append(all, string(m))
	}
	for {
		for _, h := range s.Fleet.Statuses() {
			s.Metrics.HostUp(h.Name, string(h.State))
			if prev, ok := last[h.Name]; ok && prev != h.State {
				s.hostEvents.state(h.Name, prev, h.State, h.Reason)
			}
			last[h.Name] = h.State

			var on []string
			for _, m := range h.Degradation {
				on = append(on, string(m))
			}
			s.Metrics.HostDegradation(h.Name, all, on)
			if modes := strings.Join(on, ","); modes != lastModes[h.Name] {
				// Logged once per change, with the reason, and an event.
				if modes == "" {
					s.Logger.Info("host degradation ended", "host", h.Name, "state", h.State)
				} else {
					s.Logger.Info("host degraded gracefully", "host", h.Name, "modes", modes, "reason", h.Reason)
				}
				s.hostEvents.degradation(h.Name, on, h.Reason)
				lastModes[h.Name] = modes
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Artifact garbage collection: every artifactGCInterval, the artifacts no
// stored job, step, run or cache entry refers to (those went with
// retention) and not written for artifactGrace are deleted. The grace
// keeps an output a step has just collected but not recorded yet.
const (
	artifactGCInterval = time.Hour
	artifactGrace      = time.Hour
)

func (s *Server) collectArtifacts(ctx context.Context) {
	t := time.NewTicker(artifactGCInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		in, err := s.Store.ArtifactsInUse(ctx)
		if err != nil {
			s.Logger.Warn("artifact gc: read what is in use", "err", err)
			continue
		}
		n, freed, err := s.Artifacts.GC(func(d string) bool { return in[d] }, time.Now().Add(-artifactGrace))
		if err != nil {
			s.Logger.Warn("artifact gc", "err", err)
		}
		if n > 0 {
			s.Logger.Info("artifact gc", "removed", n, "freed_bytes", freed)
		}
	}
}
