package workflow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/event"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/workflow/def"
	"fusebox/internal/workflow/wfrun"
)

// Jobs runs a step's try as a fusebox job: *dispatch.Dispatcher.
type Jobs interface {
	Submit(ctx context.Context, spec job.Spec) (j *job.Job, existed bool, err error)
	Get(ctx context.Context, id string) (*job.Job, error)
	Cancel(ctx context.Context, id string) (*job.Job, error)
}

// Events wakes the runner when a job changes: *event.Bus.
type Events interface {
	Subscribe(f event.Filter, afterSeq int64) *event.Subscription
}

// Images resolves the image ID (digest) a reference would run, for cache
// keys.
type Images interface {
	ImageID(ctx context.Context, ref string) (string, error)
}

// Artifacts says whether an artifact is still stored: a cache hit needs
// all its outputs (*artifact.Store).
type Artifacts interface {
	Has(digest string) bool
}

// Breakers holds the workflows' breakers: *breaker.Registry.
type Breakers interface {
	GetWith(name string, s breaker.Settings) (*breaker.Breaker, error)
}

// Defaults of Options.
const (
	CacheTTLDefault          = 7 * 24 * time.Hour
	MaxRetryBackoffDefault   = 5 * time.Minute
	ReconcileIntervalDefault = 2 * time.Second
	SubmitRetryDefault       = 2 * time.Second
	RetentionDefault         = 7 * 24 * time.Hour
	RetentionIntervalDefault = time.Hour
	// EnvTry is the variable every step's job gets with its try number
	// (1, 2, ...): a step can tell a retry from its first try.
	EnvTry = "FUSEBOX_STEP_TRY"
	// Labels put on every step's job.
	LabelRun  = "workflow.run"
	LabelStep = "workflow.step"
	// BreakerPrefix names a workflow's breaker: "workflow/<name>".
	BreakerPrefix = "workflow/"
)

// BreakerDefaults are the settings of a workflow's breaker where neither
// the definition nor Options.Breaker set them: five failed runs in a row
// open it for a minute, and a probe run may take an hour before its slot
// is given to another.
var BreakerDefaults = breaker.Settings{ConsecutiveFailures: 5, OpenDuration: time.Minute, ProbeTimeout: time.Hour}

// Options tune a Runner. The zero value of a field means its default.
type Options struct {
	// CacheTTL is how long a step's cache entry lives.
	CacheTTL time.Duration
	// MaxRetryBackoff caps a step's retry delay when its definition does
	// not.
	MaxRetryBackoff time.Duration
	// Breaker are the defaults of the workflow breakers' settings (zero
	// fields: BreakerDefaults); a definition's circuit_breaker overrides
	// them.
	Breaker breaker.Settings
	// MaxRunBytes bounds the outputs of all of a run's steps together
	// (each output is bounded by the artifact store); past it the run
	// fails, its own fault. 0: no bound.
	MaxRunBytes int64
	// ReconcileInterval is how often a run looks at its steps' jobs even
	// when no event woke it (events are a wake-up; the store is the truth).
	ReconcileInterval time.Duration
	// SubmitRetry is how long a step waits to submit again after its
	// job's submission failed for a reason that may pass (queue full, the
	// store).
	SubmitRetry time.Duration
	// Retention: finished runs are deleted this long after they ended,
	// and cache entries this long after they expired; negative keeps them.
	Retention time.Duration
	// RetentionInterval is how often retention runs.
	RetentionInterval time.Duration
	// Logger; nil: none.
	Logger *slog.Logger
	// Rand returns a number in [0, 1) for the retry jitter; nil:
	// math/rand/v2.Float64.
	Rand func() float64
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// WithDefaults returns o with every zero field set to its default.
func (o Options) WithDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.CacheTTL, CacheTTLDefault)
	def(&o.MaxRetryBackoff, MaxRetryBackoffDefault)
	def(&o.ReconcileInterval, ReconcileIntervalDefault)
	def(&o.SubmitRetry, SubmitRetryDefault)
	def(&o.Retention, RetentionDefault)
	def(&o.RetentionInterval, RetentionIntervalDefault)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	b := BreakerDefaults
	if o.Breaker.ConsecutiveFailures != 0 {
		b.ConsecutiveFailures = o.Breaker.ConsecutiveFailures
	}
	if o.Breaker.OpenDuration != 0 {
		b.OpenDuration = o.Breaker.OpenDuration
	}
	if o.Breaker.ProbeTimeout != 0 {
		b.ProbeTimeout = o.Breaker.ProbeTimeout
	}
	o.Breaker.ConsecutiveFailures, o.Breaker.OpenDuration, o.Breaker.ProbeTimeout = b.ConsecutiveFailures, b.OpenDuration, b.ProbeTimeout
	return o
}

func (o Options) validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"CacheTTL", o.CacheTTL}, {"MaxRetryBackoff", o.MaxRetryBackoff}, {"ReconcileInterval", o.ReconcileInterval},
		{"SubmitRetry", o.SubmitRetry}, {"RetentionInterval", o.RetentionInterval}} {
		if d.v < 0 {
			return fmt.Errorf("workflow: options: %s %v: must not be negative", d.name, d.v)
		}
	}
	return nil
}

// Runner runs workflows: every run and step lives in the store, each step
// try is a job, and a Runner started on the same store resumes every run
// another left unfinished.
type Runner struct {
	st     store.WorkflowStore
	jobs   Jobs
	ev     Events
	images Images
	arts   Artifacts
	brk    Breakers
	o      Options
	log    *slog.Logger

	mu       sync.Mutex
	started  bool
	stopped  bool
	ctx      context.Context
	cancel   context.CancelFunc
	loops    map[string]*runLoop // active runs by id
	jobRun   map[string]string   // job id -> run id, for the wake-ups
	flights  map[string]*flight  // cache key -> the step computing it
	sub      *event.Subscription
	wg       sync.WaitGroup
	stopOnce sync.Once
}

// flight is a cache key being computed by one step; identical steps wait.
type flight struct {
	owner   string // "<run>/<step>"
	waiters map[string]bool
}

// New returns a Runner; Start starts it.
func New(st store.WorkflowStore, jobs Jobs, ev Events, images Images, arts Artifacts, breakers Breakers, o Options) (*Runner, error) {
	if st == nil || jobs == nil || ev == nil || images == nil || arts == nil || breakers == nil {
		return nil, errors.New("workflow: new: the store, jobs, events, images, artifacts and breakers are all required")
	}
	o = o.WithDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	return &Runner{st: st, jobs: jobs, ev: ev, images: images, arts: arts, brk: breakers, o: o, log: o.Logger,
		loops: map[string]*runLoop{}, jobRun: map[string]string{}, flights: map[string]*flight{}}, nil
}

// Start subscribes to job transitions and resumes every unfinished run of
// the store. ctx bounds the reading of the runs only; the runs go on until
// Stop.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started || r.stopped {
		r.mu.Unlock()
		return errors.New("workflow: runner already started or stopped")
	}
	r.started = true
	r.ctx, r.cancel = context.WithCancel(context.Background())
	// Subscribe before reading the runs: a job that ends in between still
	// wakes its run.
	r.sub = r.ev.Subscribe(event.Filter{Types: []string{event.TypeJobTransition}}, event.FromNow)
	r.mu.Unlock()

	runs, err := r.st.WorkflowRunListActive(ctx)
	if err != nil {
		r.Stop()
		return fmt.Errorf("workflow: start: %w", err)
	}
	r.wg.Add(2)
	go r.wakeLoop()
	go r.retentionLoop()
	for _, run := range runs {
		r.log.Info("workflow run resumed", "run", run.ID, "workflow", run.Workflow, "state", run.State)
		r.startLoop(run, nil)
	}
	return nil
}

// Stop stops every run's loop (the runs stay in the store, to be resumed)
// and waits for them. Safe to call twice, and before Start.
func (r *Runner) Stop() {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopped = true
		if r.cancel != nil {
			r.cancel()
		}
		sub := r.sub
		r.mu.Unlock()
		if sub != nil {
			sub.Close()
		}
		r.wg.Wait()
	})
}

// wakeLoop wakes the run of every job that changes.
func (r *Runner) wakeLoop() {
	defer r.wg.Done()
	for {
		select {
		case <-r.ctx.Done():
			return
		case ev, ok := <-r.sub.C():
			if !ok {
				return
			}
			r.mu.Lock()
			l := r.loops[r.jobRun[ev.JobID]]
			r.mu.Unlock()
			if l != nil {
				l.poke()
			}
		}
	}
}

// retentionLoop deletes finished runs and expired cache entries past the
// retention.
func (r *Runner) retentionLoop() {
	defer r.wg.Done()
	if r.o.Retention < 0 {
		return
	}
	t := time.NewTicker(r.o.RetentionInterval)
	defer t.Stop()
	for {
		const limit = 500
		for {
			n, err := r.st.WorkflowRunDeleteFinished(r.ctx, store.JobDeleteFinishedParams{Before: r.o.Now().Add(-r.o.Retention), Limit: limit})
			if err != nil && r.ctx.Err() == nil {
				r.log.Warn("workflow retention", "err", err)
			}
			if err != nil || n < limit {
				break
			}
		}
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// startLoop starts the loop of run, holding its breaker token if any.
func (r *Runner) startLoop(run *wfrun.Run, tok *breaker.Token) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return
	}
	if _, ok := r.loops[run.ID]; ok {
		return
	}
	l := &runLoop{r: r, id: run.ID, wake: make(chan struct{}, 1), token: tok}
	r.loops[run.ID] = l
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		l.loop(r.ctx)
		r.mu.Lock()
		delete(r.loops, run.ID)
		for j, id := range r.jobRun {
			if id == run.ID {
				delete(r.jobRun, j)
			}
		}
		r.mu.Unlock()
	}()
}

func (r *Runner) watchJob(jobID, runID string) {
	r.mu.Lock()
	r.jobRun[jobID] = runID
	r.mu.Unlock()
}

func (r *Runner) unwatchJob(jobID string) {
	r.mu.Lock()
	delete(r.jobRun, jobID)
	r.mu.Unlock()
}

// acquire takes the flight of key for owner; if another step holds it,
// waiter (a run id) is woken when it is released, and acquire reports the
// holder.
func (r *Runner) acquire(key, owner, waiterRun string) (holder string, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f := r.flights[key]
	if f == nil {
		r.flights[key] = &flight{owner: owner, waiters: map[string]bool{}}
		return owner, true
	}
	if f.owner == owner {
		return owner, true
	}
	if _, alive := r.loops[ownerRun(f.owner)]; !alive { // its run ended without releasing it
		r.flights[key] = &flight{owner: owner, waiters: f.waiters}
		return owner, true
	}
	f.waiters[waiterRun] = true
	return f.owner, false
}

// release gives up the flight of key if owner holds it and wakes its
// waiters.
func (r *Runner) release(key, owner string) {
	if key == "" {
		return
	}
	r.mu.Lock()
	f := r.flights[key]
	var wake []*runLoop
	if f != nil && f.owner == owner {
		delete(r.flights, key)
		for id := range f.waiters {
			if l := r.loops[id]; l != nil {
				wake = append(wake, l)
			}
		}
	}
	r.mu.Unlock()
	for _, l := range wake {
		l.poke()
	}
}

func ownerRun(owner string) string {
	for i := range len(owner) {
		if owner[i] == '/' {
			return owner[:i]
		}
	}
	return owner
}

// SubmitRequest asks for a run.
type SubmitRequest struct {
	Workflow  *def.Resolved // required: what to run
	TaskID    string        // the caller's task, for finding its runs
	SkipCache bool          // no step reads the cache
	// UseCircuitBreaker overrides the definition's use_circuit_breaker.
	UseCircuitBreaker *bool
}

// Submit stores a new run and starts it. When the run uses its workflow's
// breaker and that breaker refuses, Submit stores nothing and returns an
// error wrapping its *breaker.OpenError (RetryAfter says when to try
// again).
func (r *Runner) Submit(ctx context.Context, req SubmitRequest) (*wfrun.Run, error) {
	r.mu.Lock()
	running := r.started && !r.stopped
	r.mu.Unlock()
	if !running {
		return nil, errors.New("workflow: submit: runner is not running")
	}
	if err := check(req.Workflow); err != nil {
		return nil, errors.Join(job.ErrInvalid, err)
	}
	w := req.Workflow
	use := w.UseCircuitBreaker
	if req.UseCircuitBreaker != nil {
		use = *req.UseCircuitBreaker
	}
	var tok *breaker.Token
	if use {
		b, err := r.breaker(w)
		if err != nil {
			return nil, err
		}
		t, err := b.Allow(context.Background())
		if err != nil {
			return nil, fmt.Errorf("workflow %s: %w", w.Name, err)
		}
		tok = &t
	}
	now := r.o.Now().UTC()
	run := &wfrun.Run{ID: "wf-" + job.NewID(now), Workflow: w.Name, TaskID: req.TaskID, State: wfrun.RunPending, Params: w.Params,
		SkipCache: req.SkipCache, UseBreaker: use, Definition: *w, CreatedAt: now, UpdatedAt: now}
	steps := make([]wfrun.Step, len(w.Steps))
	for i, s := range w.Steps {
		steps[i] = wfrun.Step{RunID: run.ID, ID: s.ID, State: wfrun.StepPending, UpdatedAt: now}
	}
	if err := r.st.WorkflowRunInsert(ctx, store.WorkflowRunInsertParams{Run: run, Steps: steps}); err != nil {
		if tok != nil {
			tok.DoneOutcome(breaker.Ignored)
		}
		return nil, fmt.Errorf("workflow %s: submit: %w", w.Name, err)
	}
	r.log.Info("workflow run submitted", "run", run.ID, "workflow", w.Name, "task", req.TaskID, "breaker", use)
	r.startLoop(run, tok)
	return run, nil
}

// breaker returns the workflow's breaker, created with its settings.
func (r *Runner) breaker(w *def.Resolved) (*breaker.Breaker, error) {
	s := r.o.Breaker
	if c := w.CircuitBreaker; c.FailureThreshold != 0 || c.ResetTimeout != 0 || c.HalfOpenTimeout != 0 {
		if c.FailureThreshold != 0 {
			s.ConsecutiveFailures = c.FailureThreshold
		}
		if c.ResetTimeout != 0 {
			s.OpenDuration = c.ResetTimeout
		}
		if c.HalfOpenTimeout != 0 {
			s.ProbeTimeout = c.HalfOpenTimeout
		}
	}
	b, err := r.brk.GetWith(BreakerPrefix+w.Name, s)
	if err != nil {
		return nil, fmt.Errorf("workflow %s: breaker: %w", w.Name, err)
	}
	return b, nil
}

// Get returns a run and its steps (job.ErrNotFound for an unknown id).
func (r *Runner) Get(ctx context.Context, id string) (*wfrun.Run, []wfrun.Step, error) {
	return r.st.WorkflowRunGet(ctx, id)
}

// List returns runs matching p, newest first.
func (r *Runner) List(ctx context.Context, p store.WorkflowRunListParams) ([]*wfrun.Run, error) {
	return r.st.WorkflowRunList(ctx, p)
}

// Cancel asks for a run to be cancelled: its running steps' jobs are
// cancelled, the steps not started are skipped and the run ends cancelled.
// It returns the run as it is when the request is stored, and
// job.ErrTerminal (with the run) when it has already ended.
func (r *Runner) Cancel(ctx context.Context, id string) (*wfrun.Run, error) {
	for {
		run, _, err := r.st.WorkflowRunGet(ctx, id)
		if err != nil {
			return nil, err
		}
		if run.State.Terminal() {
			return run, job.ErrTerminal
		}
		yes := true
		run, err = r.st.WorkflowRunUpdate(ctx, store.WorkflowRunUpdateParams{ID: id, From: []wfrun.RunState{run.State}, To: run.State,
			Reason: "cancel requested", Now: r.o.Now(), CancelRequested: &yes})
		if errors.Is(err, job.ErrConflict) {
			continue
		}
		if err != nil {
			return nil, err
		}
		r.mu.Lock()
		l := r.loops[id]
		r.mu.Unlock()
		if l != nil {
			l.poke()
		}
		return run, nil
	}
}

// check refuses a definition the runner cannot run: no name, no steps, a
// step id twice, a dependency or input on an unknown step, a cycle. The
// def package checks all this and more when it parses; this guards
// hand-built definitions.
func check(w *def.Resolved) error {
	if w == nil {
		return errors.New("workflow: definition is required")
	}
	if w.Name == "" {
		return errors.New("workflow: name is required")
	}
	if len(w.Steps) == 0 {
		return fmt.Errorf("workflow %s: steps: at least one is required", w.Name)
	}
	ids := map[string]int{}
	for i, s := range w.Steps {
		if s.ID == "" {
			return fmt.Errorf("workflow %s: steps[%d].id is required", w.Name, i)
		}
		if _, dup := ids[s.ID]; dup {
			return fmt.Errorf("workflow %s: steps[%d].id %q: used twice", w.Name, i, s.ID)
		}
		ids[s.ID] = i
	}
	for i, s := range w.Steps {
		for _, d := range deps(s) {
			if _, ok := ids[d]; !ok {
				return fmt.Errorf("workflow %s: steps[%d] (%s): depends on unknown step %q", w.Name, i, s.ID, d)
			}
		}
		if s.Image == "" {
			return fmt.Errorf("workflow %s: steps[%d] (%s).image is required", w.Name, i, s.ID)
		}
	}
	// Cycles: depth-first, colouring.
	color := make([]int, len(w.Steps))
	var visit func(i int) error
	visit = func(i int) error {
		color[i] = 1
		for _, d := range deps(w.Steps[i]) {
			j := ids[d]
			if color[j] == 1 {
				return fmt.Errorf("workflow %s: steps: %s and %s depend on each other (a cycle)", w.Name, w.Steps[i].ID, d)
			}
			if color[j] == 0 {
				if err := visit(j); err != nil {
					return err
				}
			}
		}
		color[i] = 2
		return nil
	}
	for i := range w.Steps {
		if color[i] == 0 {
			if err := visit(i); err != nil {
				return err
			}
		}
	}
	return nil
}

// deps are the steps s needs: its depends_on and its inputs' steps.
func deps(s def.Step) []string {
	out := append([]string(nil), s.DependsOn...)
	for _, in := range s.Inputs {
		seen := false
		for _, d := range out {
			seen = seen || d == in.From
		}
		if !seen {
			out = append(out, in.From)
		}
	}
	return out
}
