package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"sync"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/image"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// handle is one active job: the goroutine that launches and monitors it
// listens on these channels. Exactly one goroutine owns a handle.
type handle struct {
	id     string
	job    *job.Job      // as of the last transition this goroutine made
	exited chan struct{} // an engine event said the container stopped
	cancel chan struct{} // a user asked to cancel
	slot   *slot         // the job's capacity slot on its host
	// recovered: taken over from an earlier run of fusebox, which may have
	// seen outages of the host that this one did not.
	recovered bool
}

// slot is a capacity slot on a host, released exactly once whatever path
// the job leaves the host by.
type slot struct {
	h    *fleet.Host
	once sync.Once
}

func (s *slot) release() { s.once.Do(s.h.Release) }

func (d *Dispatcher) register(j *job.Job, h *fleet.Host) *handle {
	hd := &handle{id: j.ID, job: j, exited: make(chan struct{}, 1), cancel: make(chan struct{}, 1), slot: &slot{h: h}}
	d.mu.Lock()
	d.handles[j.ID] = hd
	d.mu.Unlock()
	return hd
}

func (d *Dispatcher) setContainer(hd *handle, cid string) {
	d.mu.Lock()
	d.byCID[cid] = hd
	d.mu.Unlock()
}

// unregister forgets hd, and only hd: a later attempt of the same job may
// have registered its own handle meanwhile.
func (d *Dispatcher) unregister(hd *handle) {
	d.mu.Lock()
	if d.handles[hd.id] == hd {
		delete(d.handles, hd.id)
	}
	for cid, h := range d.byCID {
		if h == hd {
			delete(d.byCID, cid)
		}
	}
	d.mu.Unlock()
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// errHostOut is the cause given to the launches in flight on a host whose
// breaker opens: they stop waiting for their deadlines.
var errHostOut = errors.New("host became unavailable during the launch")

// unknownOutcome marks a launch whose create or start request may have
// reached the daemon without an answer coming back (a deadline, an EOF or
// reset after the request was written, an abort because the host's breaker
// opened): the container may exist and even run. Such an attempt is fenced
// (confirm) before anything else happens to the job.
type unknownOutcome struct {
	op  string // "container create" or "container start"
	err error
}

func (e *unknownOutcome) Error() string { return "no answer to " + e.op + ": " + e.err.Error() }
func (e *unknownOutcome) Unwrap() error { return e.err }

// startLaunch takes over a job the scheduler has just moved to launching
// under lease: it launches the attempt and monitors it in the background.
func (d *Dispatcher) startLaunch(j *job.Job, lease *fleet.Lease) {
	hd := d.register(j, lease.Host())
	d.goBackground(func() { d.runJob(d.ctx, hd, lease) })
}

// runJob launches a freshly placed job under its lease, then monitors it.
func (d *Dispatcher) runJob(ctx context.Context, hd *handle, lease *fleet.Lease) {
	h := lease.Host()
	lctx, done := d.trackLaunch(ctx, h, hd)
	cid, err := d.launch(fleet.WithLane(lctx, fleet.LaneLaunch), hd.job, h)
	if err != nil && errors.Is(context.Cause(lctx), errHostOut) && ctx.Err() == nil {
		// Aborted because the host's breaker opened: a host fault, whatever
		// the call saw (its context was cancelled).
		out := error(&engine.Error{Host: h.Name(), Op: "launch", Class: engine.ClassHost, Err: fmt.Errorf("%w: %v", errHostOut, err)})
		var u *unknownOutcome
		if errors.As(err, &u) {
			out = &unknownOutcome{op: u.op, err: out}
		}
		err = out
	}
	done()
	lease.Done(err)
	d.afterLaunch(ctx, hd, h, cid, err)
}

// trackLaunch returns a context for a launch on h that abortLaunches
// cancels, and the function that stops tracking it.
func (d *Dispatcher) trackLaunch(ctx context.Context, h *fleet.Host, hd *handle) (context.Context, func()) {
	lctx, cancel := context.WithCancelCause(ctx)
	d.mu.Lock()
	if d.launches[h.Name()] == nil {
		d.launches[h.Name()] = map[*handle]context.CancelCauseFunc{}
	}
	d.launches[h.Name()][hd] = cancel
	d.mu.Unlock()
	return lctx, func() {
		d.mu.Lock()
		delete(d.launches[h.Name()], hd)
		d.mu.Unlock()
		cancel(nil)
	}
}

// abortLaunches cancels the launches in flight on host: its breaker has
// just opened, so they would only wait for their call deadlines. (An
// operator's isolate does not abort them: it means "no new work".)
func (d *Dispatcher) abortLaunches(host string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cancel := range d.launches[host] {
		cancel(errHostOut)
	}
}

// afterLaunch records a launch's result and, if it started, monitors the
// job to the end. It owns the job's capacity slot.
func (d *Dispatcher) afterLaunch(ctx context.Context, hd *handle, h *fleet.Host, cid string, err error) {
	defer d.unregister(hd)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the next Start resumes this launch
		}
		var u *unknownOutcome
		if errors.As(err, &u) {
			d.confirm(ctx, hd, h, err)
			return
		}
		d.launchFailed(ctx, hd, h, cid, err)
		hd.slot.release()
		d.Wake()
		return
	}
	d.started(ctx, hd, h, cid)
}

// started records that the job's container runs (or ran) and monitors it.
func (d *Dispatcher) started(ctx context.Context, hd *handle, h *fleet.Host, cid string) {
	now := time.Now()
	j, err := d.commit(ctx, store.JobTransitionParams{
		ID: hd.id, From: []job.State{job.StateLaunching}, ExpectAttempt: &hd.job.Attempt,
		To: job.StateRunning, Reason: "running on " + h.Name(), Now: now,
		ContainerID: &cid, StartedAt: &now,
	})
	if err != nil {
		// Shutting down (the next Start adopts it), or the job changed
		// under us, which only another owner can do: leave it to them.
		if ctx.Err() == nil {
			d.log.Error("record running", "job", hd.id, "err", err)
			hd.slot.release()
		}
		return
	}
	hd.job = j
	d.setContainer(hd, cid)
	if j.CancelRequested {
		// Asked while it launched, perhaps before its handle was listed.
		signal(hd.cancel)
	}
	d.monitor(ctx, hd, h)
}

// launch makes sure the image is there, creates the attempt's container (or
// adopts it when a container of that name is already ours) and starts it.
// The calls are not made through the breaker: the caller holds the lease
// (or breaker permit) covering the whole launch and reports its outcome.
//
// An error wrapped in *unknownOutcome means the create or start request
// may have been acted on without its answer arriving.
func (d *Dispatcher) launch(ctx context.Context, j *job.Job, h *fleet.Host) (cid string, err error) {
	c := h.Client()
	if err := d.ensureImage(ctx, j, h); err != nil {
		return "", err
	}
	name := job.ContainerName(j.ID, j.Attempt)
	env := make([]string, 0, len(j.Spec.Env))
	for k, v := range j.Spec.Env {
		env = append(env, k+"="+v)
	}
	sort.Strings(env)
	labels := map[string]string{}
	for k, v := range j.Spec.Labels {
		labels[k] = v
	}
	labels[job.LabelManaged] = "true"
	labels[job.LabelJobID] = j.ID
	labels[job.LabelAttempt] = strconv.Itoa(j.Attempt)
	if d.cfg.Instance != "" {
		labels[job.LabelInstance] = d.cfg.Instance
	}
	cid, err = c.Create(ctx, engine.ContainerSpec{
		Name: name, Image: j.Spec.Image, Entrypoint: j.Spec.Entrypoint, Cmd: j.Spec.Command, Env: env,
		WorkingDir: j.Spec.Workdir, User: j.Spec.User, Labels: labels, CPUs: j.Spec.CPUs, MemoryBytes: j.Spec.MemoryBytes,
		Network: j.Spec.Network, Platform: j.Spec.Platform,
	})
	if errors.Is(err, engine.ErrNameConflict) {
		// Made by an earlier try of this very attempt (before a crash or a
		// timed-out create): adopt it if it is ours.
		ct, ierr := c.Inspect(ctx, name)
		if ierr != nil {
			return "", &unknownOutcome{op: "container create", err: ierr}
		}
		if ct.Labels[job.LabelJobID] != j.ID || ct.Labels[job.LabelAttempt] != strconv.Itoa(j.Attempt) || !d.ours(ct) {
			return "", &engine.Error{Host: h.Name(), Op: "container create", Class: engine.ClassJob,
				Err: fmt.Errorf("container name %s is taken by a container fusebox did not make for this job", name)}
		}
		d.log.Info("adopted existing container", "job", j.ID, "attempt", j.Attempt, "host", h.Name(), "status", ct.Status)
		if ct.Status != "created" {
			return ct.ID, nil // already started (it may have exited: monitoring collects it)
		}
		cid = ct.ID
	} else if err != nil {
		if outcomeUnknown(err) {
			return "", &unknownOutcome{op: "container create", err: err}
		}
		return "", d.diagnose(ctx, h, j, err)
	}
	if len(j.Spec.Inputs) > 0 {
		if err := d.cfg.Artifacts.CopyIn(ctx, c, cid, j.Spec.Inputs); err != nil {
			if engineHostFault(err) {
				return cid, err // another host, as any host fault
			}
			// Not the host's fault: classed as the job's for its breaker.
			return cid, &artifactError{err: &engine.Error{Host: h.Name(), Op: "artifacts copy in", Class: engine.ClassJob, Err: err}}
		}
	}
	if err := c.Start(ctx, cid); err != nil {
		if outcomeUnknown(err) {
			return cid, &unknownOutcome{op: "container start", err: err}
		}
		return cid, d.diagnose(ctx, h, j, err)
	}
	return cid, nil
}

// outcomeUnknown reports whether a failed create or start may still have
// been acted on: the request was written and no answer came back.
func outcomeUnknown(err error) bool {
	return !engine.Answered(err) && !engine.IsUnreachable(err)
}

// Images gets a placed job's image onto its host when the host lacks it
// (*image.Distributor is one: a transfer from a host that has it, or a
// pull through its registry's breaker). A *image.WaitError means "wait":
// the job goes back to the queue with that reason, using no attempt, and
// no host's breaker moves.
type Images interface {
	Provide(ctx context.Context, h *fleet.Host, ref string, policy image.Policy) error
}

// ensureImage applies the job's pull policy on h: an image h has is used
// as it is (unless the policy is always); one it lacks is got through
// Config.Images, or without it pulled by the host.
func (d *Dispatcher) ensureImage(ctx context.Context, j *job.Job, h *fleet.Host) error {
	c := h.Client()
	img := j.Spec.Image
	policy := j.Spec.PullPolicy
	if policy == "" {
		policy = job.PullMissing
	}
	if policy != job.PullAlways {
		ok, err := c.ImageExists(ctx, img)
		if err != nil {
			return err
		}
		if ok {
			h.NoteImage(img, true)
			return nil
		}
		h.NoteImage(img, false)
		if d.cfg.Images == nil && policy == job.PullNever {
			return &engine.Error{Host: h.Name(), Op: "image inspect", Class: engine.ClassJob,
				Err: fmt.Errorf("image %s is not on the host and pull_policy is never", img)}
		}
	}
	if d.cfg.Images != nil {
		return d.cfg.Images.Provide(ctx, h, img, image.Policy(policy))
	}
	if err := c.ImagePull(ctx, img); err != nil {
		return fmt.Errorf("image %s not found and pull failed: %w", img, err)
	}
	h.NoteImage(img, true)
	return nil
}

// launchFailed records a launch whose outcome is known: a job fault fails
// the job; a host fault puts it back in the queue for another host, after a
// backoff, unless its attempts are used up. A launch that never reached its
// host (nothing was created) uses no attempt: it is undone. A cancel asked
// for meanwhile wins over a retry.
func (d *Dispatcher) launchFailed(ctx context.Context, hd *handle, h *fleet.Host, cid string, err error) {
	j := hd.job
	if cid != "" {
		d.removeContainer(ctx, h, cid)
	}
	now := time.Now()
	p := store.JobTransitionParams{ID: j.ID, From: []job.State{job.StateLaunching}, ExpectAttempt: &j.Attempt, Now: now}
	var (
		imgWait *image.WaitError
		noImage *image.NoImageError
	)
	switch {
	case errors.As(err, new(*artifactError)):
		p.To, p.FinishedAt, p.Cause = job.StateFailed, &now, job.CauseArtifact
		p.Reason = fmt.Sprintf("launch failed on %s: %v", h.Name(), err)
	case errors.As(err, &imgWait):
		// Its registry is out (or no host could send the image): nobody's
		// fault here. It waits, using no attempt, retried once the
		// registry's breaker lets a probe through.
		wait := imgWait.RetryAfter
		if wait <= 0 {
			wait = d.backoff(j)
		}
		p.To, p.NotBefore, p.DropAttempt = job.StateQueued, store.Ptr(now.Add(wait)), true
		p.Reason = fmt.Sprintf("%v; retrying in %s (this used no attempt)", imgWait, wait.Round(time.Millisecond))
	case errors.As(err, &noImage):
		p.To, p.FinishedAt, p.Cause = job.StateFailed, &now, job.CauseRefused
		p.Reason = noImage.Error()
	case engine.ClassOf(err) == engine.ClassHost || errors.Is(err, breaker.ErrOpen):
		wait := d.backoff(j)
		if errors.Is(err, errHostOut) {
			// Aborted because the host's breaker opened: the next try goes
			// to another host (this one is out), so it need not wait.
			wait = 0
		}
		requeue := func(outcome, reason string) {
			p.To, p.NotBefore, p.AttemptOutcome = job.StateQueued, store.Ptr(now.Add(wait)), outcome
			p.Reason = fmt.Sprintf("%s; retrying in %s", reason, wait.Round(time.Millisecond))
			if wait == 0 {
				p.Reason = reason + "; retrying now"
			}
		}
		switch {
		case engine.IsUnreachable(err) || errors.Is(err, breaker.ErrOpen):
			requeue("", fmt.Sprintf("host %s could not be reached, nothing was created (this used no attempt): %v", h.Name(), err))
			p.DropAttempt = true
		case j.Attempt >= d.maxAttempts(j):
			p.To, p.FinishedAt, p.AttemptOutcome, p.Cause = job.StateFailed, &now, outcomeHostFault, job.CauseHost
			p.Reason = fmt.Sprintf("host fault on %s, attempts used up (%d): %v", h.Name(), d.maxAttempts(j), err)
		default:
			requeue(outcomeHostFault, fmt.Sprintf("host fault on %s: %v; another host will be tried", h.Name(), err))
		}
	case errors.As(err, new(*refusedHere)):
		// The engine would not run it although it runs others: not the
		// host's fault, and not surely the job's (a daemon can keep broken
		// state for one container): another host, if attempts are left.
		if j.Attempt >= d.maxAttempts(j) {
			p.To, p.FinishedAt, p.Cause = job.StateFailed, &now, job.CauseRefused
			p.Reason = fmt.Sprintf("launch failed on %s, attempts used up (%d): %v", h.Name(), d.maxAttempts(j), err)
		} else {
			wait := d.backoff(j)
			p.To, p.NotBefore, p.AttemptOutcome = job.StateQueued, store.Ptr(now.Add(wait)), outcomeRefused
			p.Reason = fmt.Sprintf("launch failed on %s: %v; another host will be tried in %s", h.Name(), err, wait.Round(time.Millisecond))
		}
	default:
		p.To, p.FinishedAt, p.Cause = job.StateFailed, &now, refusedCause(err)
		p.Reason = fmt.Sprintf("launch failed on %s: %v", h.Name(), err)
	}
	nj, terr := d.commit(ctx, p)
	if terr != nil {
		if ctx.Err() == nil {
			d.log.Error("record launch failure", "job", j.ID, "err", terr)
		}
		return
	}
	d.log.Info("launch failed", "job", j.ID, "host", h.Name(), "to", nj.State, "err", err)
	d.afterRequeue(ctx, nj)
}

// refusedCause is the typed cause of a launch the engine refused: its
// command missing or not executable in the image, or another refusal.
func refusedCause(err error) job.Cause {
	switch engine.ExecProblemOf(err) {
	case engine.ExecNotFound:
		return job.CauseCommandNotFound
	case engine.ExecNotExecutable:
		return job.CauseNotExecutable
	}
	return job.CauseRefused
}

// afterRequeue finishes a job that was just moved: a terminal one is
// reported; a requeued one whose cancel was asked for before the move is
// cancelled now instead of being placed again.
func (d *Dispatcher) afterRequeue(ctx context.Context, nj *job.Job) {
	if nj.State == job.StateQueued && nj.CancelRequested {
		now := time.Now()
		cj, err := d.commit(ctx, store.JobTransitionParams{
			ID: nj.ID, From: []job.State{job.StateQueued}, To: job.StateCancelled,
			Reason: "cancelled by user", Now: now, FinishedAt: &now, Cause: job.CauseCancelled,
		})
		if err == nil {
			nj = cj
		}
	}
	if nj.State.Terminal() {
		d.finished(nj)
	}
}

// Attempt outcomes the dispatcher records besides the job states.
const (
	outcomeHostFault = "host_fault" // the host failed the launch or the run
	outcomeRefused   = "refused"    // the engine would not run the job's container, though it runs others
	outcomeLostHost  = "lost_host"  // the host stayed unreachable past LostAfter
)

func (d *Dispatcher) finished(j *job.Job) {
	if d.cfg.Hooks.Finished != nil {
		d.cfg.Hooks.Finished(j)
	}
}

// removeContainer removes a container best-effort; the reconciler retries
// what fails here.
func (d *Dispatcher) removeContainer(ctx context.Context, h *fleet.Host, cid string) error {
	ctx = fleet.WithLane(ctx, fleet.LaneLogs)
	err := h.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error { return c.Remove(ctx, cid) })
	if err != nil && ctx.Err() == nil {
		d.log.Debug("remove container (will retry in the sweep)", "host", h.Name(), "container", cid, "err", err)
	}
	return err
}

// commit makes a store transition, retrying with backoff while the store
// fails (SQLITE_BUSY past its timeout, a full disk) until it succeeds or
// the dispatcher stops: a job is never left without an owner because one
// write failed. A lost compare-and-set (job.ErrConflict) or an unknown job
// is returned at once.
func (d *Dispatcher) commit(ctx context.Context, p store.JobTransitionParams) (*job.Job, error) {
	var j *job.Job
	err := d.retryStore(ctx, "record "+string(p.To)+" of job "+p.ID, func() error {
		var err error
		j, err = d.store.JobTransition(ctx, p)
		return err
	})
	return j, err
}

// retryStore runs a store write until it succeeds, fails for a reason a
// retry cannot change (conflict, not found, terminal), or ctx ends.
func (d *Dispatcher) retryStore(ctx context.Context, what string, fn func() error) error {
	wait := 50 * time.Millisecond
	for {
		err := fn()
		if err == nil || errors.Is(err, job.ErrConflict) || errors.Is(err, job.ErrNotFound) || errors.Is(err, job.ErrTerminal) || ctx.Err() != nil {
			return err
		}
		d.log.Warn("store write failed; retrying", "what", what, "in", wait, "err", err)
		if !sleepCtx(ctx, wait) {
			return err
		}
		wait = min(wait*2, 5*time.Second)
	}
}
