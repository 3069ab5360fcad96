package workflow

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"fusebox/breaker"
	"fusebox/internal/job"
	"fusebox/internal/store"
	"fusebox/internal/workflow/def"
	"fusebox/internal/workflow/wfrun"
)

// runLoop drives one run: it reads the run and its steps from the store
// whenever it is woken (a job event, an identical step's end, Cancel, a
// retry's time, the reconcile tick), moves what can move, and ends when
// the run has ended. It is the only writer of its steps.
type runLoop struct {
	r     *Runner
	id    string
	wake  chan struct{}
	token *breaker.Token    // from Submit; nil after a restart (see report)
	held  map[string]string // step id -> cache key whose flight it holds
}

func (l *runLoop) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *runLoop) loop(ctx context.Context) {
	l.held = map[string]string{}
	defer func() {
		for step, key := range l.held {
			l.r.release(key, l.id+"/"+step)
		}
	}()
	for {
		next, done, err := l.advance(ctx)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			l.r.log.Warn("workflow run: will try again", "run", l.id, "err", err)
		}
		if done {
			return
		}
		wait := l.r.o.ReconcileInterval
		if !next.IsZero() {
			if d := time.Until(next); d < wait {
				wait = max(d, time.Millisecond)
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-l.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// pass is one advance's view of the run.
type pass struct {
	run   *wfrun.Run
	steps []wfrun.Step
	idx   map[string]int
	defs  map[string]def.Step
	next  time.Time // the earliest time something is due
}

func (p *pass) due(t time.Time) {
	if p.next.IsZero() || t.Before(p.next) {
		p.next = t
	}
}

// advance does what can be done now. It reports when something is next
// due (zero: nothing but a wake-up), and whether the run has ended.
func (l *runLoop) advance(ctx context.Context) (time.Time, bool, error) {
	run, steps, err := l.r.st.WorkflowRunGet(ctx, l.id)
	if errors.Is(err, job.ErrNotFound) {
		return time.Time{}, true, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	if run.State.Terminal() {
		return time.Time{}, true, nil
	}
	p := &pass{run: run, steps: steps, idx: map[string]int{}, defs: map[string]def.Step{}}
	for i, s := range steps {
		p.idx[s.ID] = i
	}
	for _, s := range run.Definition.Steps {
		p.defs[s.ID] = s
	}
	now := l.r.o.Now()
	if run.State == wfrun.RunPending {
		nowUTC := now.UTC()
		run, err = l.r.st.WorkflowRunUpdate(ctx, store.WorkflowRunUpdateParams{ID: l.id, From: []wfrun.RunState{wfrun.RunPending},
			To: wfrun.RunRunning, Reason: "started", Now: now, StartedAt: &nowUTC})
		if err != nil {
			return time.Time{}, false, err
		}
		p.run = run
	}
	if run.CancelRequested {
		return ended(l.end(ctx, p, wfrun.RunCancelled, wfrun.CauseCancelled, "cancelled by user"))
	}
	if to := run.Definition.Timeout; to > 0 {
		deadline := run.StartedAt.Add(to)
		if !now.Before(deadline) {
			return ended(l.end(ctx, p, wfrun.RunFailed, wfrun.CauseTimeout, fmt.Sprintf("timed out after %v", to)))
		}
		p.due(deadline)
	}

	var errs []error
	for _, ds := range run.Definition.Steps {
		if err := l.step(ctx, p, ds); err != nil {
			errs = append(errs, fmt.Errorf("step %s: %w", ds.ID, err))
		}
	}
	// A failed step ends the run, and so do outputs past the run's bound;
	// all done succeeds it.
	if limit := l.r.o.MaxRunBytes; limit > 0 {
		var total int64
		for _, s := range p.steps {
			if s.State.Done() {
				for _, o := range s.Outputs {
					total += o.Size
				}
			}
		}
		if total > limit {
			return ended(l.end(ctx, p, wfrun.RunFailed, wfrun.CauseOwn,
				fmt.Sprintf("its steps' outputs are %d bytes, over the run's bound of %d (workflows.max_run_bytes)", total, limit)))
		}
	}
	all := true
	for _, s := range p.steps {
		if s.State == wfrun.StepFailed {
			cause := wfrun.CauseFleet
			switch {
			case s.JobCause.Own():
				cause = wfrun.CauseOwn
			case s.JobCause == job.CauseCancelled:
				cause = wfrun.CauseCancelled
			}
			return ended(l.end(ctx, p, wfrun.RunFailed, cause, fmt.Sprintf("step %s failed: %s", s.ID, s.Reason)))
		}
		all = all && s.State.Done()
	}
	if all {
		return ended(l.succeed(ctx, p))
	}
	return p.next, false, errors.Join(errs...)
}

// ended is advance's answer when the run is ending: done once the end is
// stored, otherwise tried again at the next pass.
func ended(err error) (time.Time, bool, error) { return time.Time{}, err == nil, err }

// step moves one step on, if it can.
func (l *runLoop) step(ctx context.Context, p *pass, ds def.Step) error {
	s := p.steps[p.idx[ds.ID]]
	now := l.r.o.Now()
	switch s.State {
	case wfrun.StepPending, wfrun.StepWaiting:
		var waiting []string
		for _, d := range deps(ds) {
			ps := p.steps[p.idx[d]]
			if !ps.State.Done() {
				waiting = append(waiting, d)
			}
		}
		if len(waiting) > 0 {
			reason := "waiting for " + strings.Join(waiting, ", ")
			if s.State != wfrun.StepWaiting || s.Reason != reason {
				return l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepWaiting, Reason: reason})
			}
			return nil
		}
		return l.start(ctx, p, ds, s)
	case wfrun.StepSubmitted, wfrun.StepRunning:
		if s.CacheKey != "" && l.held[s.ID] == "" { // resumed: hold its flight again
			if _, ok := l.r.acquire(s.CacheKey, l.id+"/"+s.ID, l.id); ok {
				l.held[s.ID] = s.CacheKey
			}
		}
		if s.JobID == "" { // stored as submitted, but the submission's answer was not recorded
			return l.submit(ctx, p, ds, s, s.Try, s.CacheKey, s.WhyRan)
		}
		l.r.watchJob(s.JobID, l.id)
		return l.check(ctx, p, ds, s)
	case wfrun.StepRetrying:
		if now.Before(s.NextAt) {
			p.due(s.NextAt)
			return nil
		}
		return l.submit(ctx, p, ds, s, s.Try+1, s.CacheKey, s.WhyRan)
	}
	return nil
}

// update applies u to a step of the run and keeps the pass's copy.
func (l *runLoop) update(ctx context.Context, p *pass, u store.WorkflowStepUpdateParams) error {
	u.RunID = l.id
	if u.Now.IsZero() {
		u.Now = l.r.o.Now()
	}
	s, err := l.r.st.WorkflowStepUpdate(ctx, u)
	if err != nil {
		return err
	}
	p.steps[p.idx[u.ID]] = *s
	return nil
}

// inputs are the artifacts of ds's inputs, from the outputs of the steps
// that declare them.
func inputs(p *pass, ds def.Step) ([]job.Input, error) {
	var out []job.Input
	for _, in := range ds.Inputs {
		from := p.steps[p.idx[in.From]]
		digest := ""
		for _, o := range from.Outputs {
			if o.Path == in.Path {
				digest = o.Digest
			}
		}
		if digest == "" {
			return nil, fmt.Errorf("input %s of step %s: that step has no such output", in.Path, in.From)
		}
		at := in.At
		if at == "" {
			at = in.Path
		}
		out = append(out, job.Input{Digest: digest, Path: at})
	}
	return out, nil
}

// start starts a step whose dependencies are done: from the cache when it
// can, otherwise as its first try.
func (l *runLoop) start(ctx context.Context, p *pass, ds def.Step, s wfrun.Step) error {
	ins, err := inputs(p, ds)
	if err != nil {
		cause := job.CauseArtifact
		return l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepFailed, Reason: err.Error(), JobCause: &cause})
	}
	if !ds.Cache {
		return l.submit(ctx, p, ds, s, 1, "", "cache off")
	}
	// With skip-cache the key is computed all the same: the step does not
	// read the cache, but it writes it.
	imageID, err := l.r.images.ImageID(ctx, ds.Image)
	if err != nil {
		l.r.log.Info("workflow step: image id unknown, not cached", "run", l.id, "step", ds.ID, "image", ds.Image, "err", err)
		return l.submit(ctx, p, ds, s, 1, "", "image id unknown: "+err.Error())
	}
	parts := newKeyParts(ds, imageID, ins)
	key := parts.Key()
	owner := l.id + "/" + s.ID
	if holder, ok := l.r.acquire(key, owner, l.id); !ok {
		reason := "waiting for identical step " + holder
		if s.State != wfrun.StepWaiting || s.Reason != reason {
			return l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepWaiting, Reason: reason, CacheKey: &key})
		}
		return nil
	}
	l.held[s.ID] = key
	if p.run.SkipCache {
		return l.submit(ctx, p, ds, s, 1, key, "skip-cache")
	}
	now := l.r.o.Now()
	e, hit, err := l.r.st.WorkflowCacheGet(ctx, key, now)
	if err != nil {
		return err
	}
	why := ""
	if hit {
		for _, o := range e.Outputs {
			if !l.r.arts.Has(o.Digest) {
				hit, why = false, "outputs no longer stored"
				break
			}
		}
	}
	if hit {
		yes, nowUTC := true, now.UTC()
		err := l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepCached, Reason: "cached (from run " + e.RunID + ")",
			CacheKey: &key, Cached: &yes, Outputs: e.Outputs, StartedAt: &nowUTC, FinishedAt: &nowUTC})
		if err == nil {
			l.r.release(key, owner)
			delete(l.held, s.ID)
		}
		return err
	}
	if why == "" {
		latest, ok, err := l.r.st.WorkflowCacheLatest(ctx, p.run.Workflow, s.ID)
		switch {
		case err != nil:
			return err
		case !ok:
			why = "first run"
		default:
			why = whyRan(latest.Parts, parts.Named())
			if why == "" {
				why = "cache entry expired"
			}
		}
	}
	return l.submit(ctx, p, ds, s, 1, key, why)
}

// spec is the job of a step's try.
func (l *runLoop) spec(ds def.Step, ins []job.Input, try int) job.Spec {
	env := make(map[string]string, len(ds.Env)+1)
	for k, v := range ds.Env {
		env[k] = v
	}
	env[EnvTry] = strconv.Itoa(try)
	return job.Spec{
		Image: ds.Image, Command: ds.Command, Env: env, Workdir: ds.Workdir,
		Labels:      map[string]string{LabelRun: l.id, LabelStep: ds.ID},
		Constraints: ds.Constraints, CPUs: ds.CPUs, MemoryBytes: ds.MemoryBytes,
		Timeout: job.Duration(ds.Timeout), MaxAttempts: ds.MaxAttempts,
		IdempotencyKey: fmt.Sprintf("wf/%s/%s/%d", l.id, ds.ID, try),
		Inputs:         ins, Outputs: ds.Outputs,
	}
}

// submit records try as submitted, then submits its job (the idempotency
// key makes a resubmission after a crash find the same job) and records
// the job's id.
func (l *runLoop) submit(ctx context.Context, p *pass, ds def.Step, s wfrun.Step, try int, key, why string) error {
	ins, err := inputs(p, ds)
	if err != nil {
		cause := job.CauseArtifact
		return l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepFailed, Reason: err.Error(), JobCause: &cause})
	}
	if s.State != wfrun.StepSubmitted || s.Try != try {
		now := l.r.o.Now().UTC()
		u := store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepSubmitted, Reason: fmt.Sprintf("try %d submitted", try), Now: now,
			Try: &try, CacheKey: &key, WhyRan: &why, JobID: new(string), NextAt: new(time.Time)}
		if s.StartedAt.IsZero() {
			u.StartedAt = &now
		}
		if err := l.update(ctx, p, u); err != nil {
			return err
		}
	}
	j, _, err := l.r.jobs.Submit(ctx, l.spec(ds, ins, try))
	if err != nil {
		var fe *job.FieldError
		if errors.Is(err, job.ErrInvalid) || errors.Is(err, job.ErrDuplicate) { // no resubmission changes that
			cause := job.CauseRefused
			if errors.As(err, &fe) && fe.Field == "constraints" { // no configured host carries its labels: the fleet's
				cause = job.CauseNoHost
			}
			return l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepFailed,
				Reason: "job refused: " + err.Error(), JobCause: &cause, FinishedAt: ptr(l.r.o.Now().UTC())})
		}
		p.due(l.r.o.Now().Add(l.r.o.SubmitRetry)) // queue full, the store: try again
		return fmt.Errorf("submit try %d: %w", try, err)
	}
	l.r.watchJob(j.ID, l.id)
	if err := l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepSubmitted,
		Reason: fmt.Sprintf("try %d: job %s %s", try, j.ID, j.State), JobID: &j.ID}); err != nil {
		return err
	}
	return l.check(ctx, p, ds, p.steps[p.idx[s.ID]])
}

func ptr[T any](v T) *T { return &v }

// causeOf is how j ended, typed.
func causeOf(j *job.Job) job.Cause {
	if j.Cause != job.CauseNone || j.State == job.StateSucceeded {
		return j.Cause
	}
	switch j.State { // a job that ended before causes were recorded
	case job.StateTimedOut:
		return job.CauseTimeout
	case job.StateCancelled:
		return job.CauseCancelled
	case job.StateFailed:
		if j.ExitCode != nil {
			return job.CauseExit
		}
	}
	return job.CauseHost
}

// check follows a step's job.
func (l *runLoop) check(ctx context.Context, p *pass, ds def.Step, s wfrun.Step) error {
	j, err := l.r.jobs.Get(ctx, s.JobID)
	if err != nil {
		return fmt.Errorf("job %s: %w", s.JobID, err)
	}
	switch j.State {
	case job.StateQueued:
		return nil
	case job.StateLaunching, job.StateRunning:
		if s.State != wfrun.StepRunning || s.Host != j.Host {
			return l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepRunning,
				Reason: fmt.Sprintf("try %d: job %s %s on %s", s.Try, j.ID, j.State, j.Host), Host: &j.Host})
		}
		return nil
	}
	// It ended.
	now := l.r.o.Now()
	nowUTC := now.UTC()
	cause := causeOf(j)
	owner := l.id + "/" + s.ID
	if j.State == job.StateSucceeded {
		if err := l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepSucceeded,
			Reason: fmt.Sprintf("try %d: job %s succeeded", s.Try, j.ID), Host: &j.Host, JobCause: &cause,
			Outputs: nonNil(j.Outputs), FinishedAt: &nowUTC}); err != nil {
			return err
		}
		l.r.unwatchJob(j.ID)
		if s.CacheKey != "" {
			l.put(ctx, p, ds, s.CacheKey, j.Outputs)
			l.r.release(s.CacheKey, owner)
			delete(l.held, s.ID)
		}
		return nil
	}
	why := j.Reason
	if why == "" {
		why = string(j.State)
	}
	if cause.Own() && s.Try <= ds.Retries.Max {
		delay := l.backoff(ds.Retries, s.Try)
		next := nowUTC.Add(delay)
		if err := l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepRetrying,
			Reason: fmt.Sprintf("try %d failed (%s); try %d in %v", s.Try, why, s.Try+1, delay.Round(time.Millisecond)),
			Host:   &j.Host, JobCause: &cause, NextAt: &next}); err != nil {
			return err
		}
		l.r.unwatchJob(j.ID)
		p.due(next)
		return nil
	}
	reason := fmt.Sprintf("try %d: job %s %s: %s", s.Try, j.ID, j.State, why)
	if !cause.Own() && cause != job.CauseCancelled {
		reason += " (the fleet's failure: no step retry)"
	}
	if err := l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: wfrun.StepFailed, Reason: reason,
		Host: &j.Host, JobCause: &cause, FinishedAt: &nowUTC}); err != nil {
		return err
	}
	l.r.unwatchJob(j.ID)
	if s.CacheKey != "" {
		l.r.release(s.CacheKey, owner)
		delete(l.held, s.ID)
	}
	return nil
}

func nonNil(o []job.Output) []job.Output {
	if o == nil {
		return []job.Output{}
	}
	return o
}

// put stores a succeeded step's outputs under its key, if the key computed
// now is still the one it ran under (after a restart the image a tag names
// may have moved: then nothing is stored).
func (l *runLoop) put(ctx context.Context, p *pass, ds def.Step, key string, outs []job.Output) {
	ins, err := inputs(p, ds)
	if err != nil {
		return
	}
	imageID, err := l.r.images.ImageID(ctx, ds.Image)
	if err != nil {
		l.r.log.Info("workflow step: not cached: image id unknown", "run", l.id, "step", ds.ID, "err", err)
		return
	}
	parts := newKeyParts(ds, imageID, ins)
	if parts.Key() != key {
		l.r.log.Info("workflow step: not cached: its key changed while it ran", "run", l.id, "step", ds.ID)
		return
	}
	now := l.r.o.Now().UTC()
	e := wfrun.CacheEntry{Key: key, Workflow: p.run.Workflow, Step: ds.ID, Parts: parts.Named(), Outputs: nonNil(outs),
		RunID: l.id, CreatedAt: now, ExpiresAt: now.Add(l.r.o.CacheTTL)}
	if err := l.r.st.WorkflowCachePut(ctx, e); err != nil {
		l.r.log.Warn("workflow step: cache put", "run", l.id, "step", ds.ID, "err", err)
	}
}

// backoff is the delay before try n+1 after try n failed:
// BackoffFactor × 2^(n-1) seconds, capped, times a random factor in
// [0.5, 1.5] with Jitter.
func (l *runLoop) backoff(rt def.Retries, n int) time.Duration {
	capd := rt.MaxBackoff
	if capd <= 0 {
		capd = l.r.o.MaxRetryBackoff
	}
	secs := rt.BackoffFactor * math.Pow(2, float64(n-1))
	d := time.Duration(secs * float64(time.Second))
	if secs*float64(time.Second) > float64(capd) || d < 0 {
		d = capd
	}
	if rt.Jitter {
		d = time.Duration(float64(d) * (0.5 + l.r.o.Rand()))
	}
	return d
}

// end ends the run in state: the jobs of running steps are cancelled, the
// steps that did not start are skipped, and the run is recorded ended and
// reported to its breaker. If it is interrupted, the next pass (or the
// next Runner) ends it again: every step it has not reached is still
// where it was.
func (l *runLoop) end(ctx context.Context, p *pass, state wfrun.RunState, cause wfrun.Cause, reason string) error {
	var errs []error
	for _, s := range p.steps {
		if s.State.Terminal() {
			continue
		}
		to, why := wfrun.StepSkipped, "not run: "+reason
		if s.JobID != "" && (s.State == wfrun.StepSubmitted || s.State == wfrun.StepRunning) {
			if _, err := l.r.jobs.Cancel(ctx, s.JobID); err != nil && !errors.Is(err, job.ErrTerminal) {
				errs = append(errs, fmt.Errorf("cancel job %s of step %s: %w", s.JobID, s.ID, err))
				continue
			}
			to, why = wfrun.StepCancelled, "job cancelled: "+reason
		} else if s.Try > 0 {
			to, why = wfrun.StepCancelled, reason
		}
		if err := l.update(ctx, p, store.WorkflowStepUpdateParams{ID: s.ID, To: to, Reason: why, FinishedAt: ptr(l.r.o.Now().UTC())}); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return l.finish(ctx, p, state, cause, reason, nil)
}

// succeed ends the run succeeded, with its results.
func (l *runLoop) succeed(ctx context.Context, p *pass) error {
	results := []wfrun.Result{}
	for _, o := range p.run.Definition.Results {
		s := p.steps[p.idx[o.Step]]
		for _, out := range s.Outputs {
			if out.Path == o.Path {
				results = append(results, wfrun.Result{Step: o.Step, Path: o.Path, Digest: out.Digest, Size: out.Size})
			}
		}
	}
	return l.finish(ctx, p, wfrun.RunSucceeded, wfrun.CauseNone, "every step succeeded", results)
}

func (l *runLoop) finish(ctx context.Context, p *pass, state wfrun.RunState, cause wfrun.Cause, reason string, results []wfrun.Result) error {
	run, err := l.r.st.WorkflowRunUpdate(ctx, store.WorkflowRunUpdateParams{ID: l.id, From: []wfrun.RunState{wfrun.RunPending, wfrun.RunRunning},
		To: state, Reason: reason, Now: l.r.o.Now(), Cause: &cause, Results: results, FinishedAt: ptr(l.r.o.Now().UTC())})
	if err != nil {
		return err
	}
	l.r.log.Info("workflow run ended", "run", l.id, "workflow", run.Workflow, "state", state, "cause", cause, "reason", reason)
	l.report(run)
	return nil
}

// report tells the workflow's breaker how the run ended: a success
// closes, its own failure (a step's, or the run's timeout) counts against
// it, the fleet's failure and a cancellation count for nothing. A run
// resumed after a restart has lost its token: it asks the breaker for a
// new one and reports on that; if the breaker refuses (it opened
// meanwhile), the outcome is dropped (an open breaker is counting nothing
// anyway). A new process starts with fresh, closed breakers: counts do
// not survive a restart.
func (l *runLoop) report(run *wfrun.Run) {
	if !run.UseBreaker {
		return
	}
	o := breaker.Ignored
	switch {
	case run.State == wfrun.RunSucceeded:
		o = breaker.Success
	case run.Cause.Counts():
		o = breaker.Failure
	}
	tok := l.token
	l.token = nil
	if tok == nil {
		if o == breaker.Ignored {
			return
		}
		b, err := l.r.breaker(&run.Definition)
		if err != nil {
			return
		}
		t, err := b.Allow(context.Background())
		if err != nil {
			l.r.log.Info("workflow run outcome not reported: its breaker refused a new token", "run", run.ID, "err", err)
			return
		}
		tok = &t
	}
	tok.DoneOutcome(o)
}
