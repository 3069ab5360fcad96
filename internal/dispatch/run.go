package dispatch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// handle is one active job: the goroutine that launches and monitors it
// listens on these channels.
type handle struct {
	id     string
	job    *job.Job      // as of the last transition this goroutine made
	exited chan struct{} // an engine event said the container stopped
	cancel chan struct{} // a user asked to cancel
}

func (d *Dispatcher) register(j *job.Job) *handle {
	hd := &handle{id: j.ID, job: j, exited: make(chan struct{}, 1), cancel: make(chan struct{}, 1)}
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

func (d *Dispatcher) unregister(hd *handle) {
	d.mu.Lock()
	delete(d.handles, hd.id)
	if hd.job.ContainerID != "" {
		delete(d.byCID, hd.job.ContainerID)
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
// breaker opens: they fail over now rather than wait for their deadlines.
var errHostOut = errors.New("host became unavailable during the launch")

// startLaunch takes over a job the scheduler has just moved to launching
// under lease: it launches the attempt and monitors it in the background.
func (d *Dispatcher) startLaunch(j *job.Job, lease *fleet.Lease) {
	hd := d.register(j)
	d.goBackground(func() { d.runJob(d.ctx, hd, lease) })
}

// runJob launches a freshly placed job under its lease, then monitors it.
func (d *Dispatcher) runJob(ctx context.Context, hd *handle, lease *fleet.Lease) {
	h := lease.Host()
	lctx, done := d.trackLaunch(ctx, h, hd)
	cid, err := d.launch(fleet.WithLane(lctx, fleet.LaneLaunch), hd.job, h)
	if err != nil && errors.Is(context.Cause(lctx), errHostOut) && ctx.Err() == nil {
		err = &engine.Error{Host: h.Name(), Op: "launch", Class: engine.ClassHost, Err: errHostOut}
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
// just opened, so they would only wait for their call deadlines.
func (d *Dispatcher) abortLaunches(host string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, cancel := range d.launches[host] {
		cancel(errHostOut)
	}
}

// afterLaunch records a launch's result and, if it started, monitors the
// job to the end. It owns h's capacity slot and releases it when the job
// leaves the host.
func (d *Dispatcher) afterLaunch(ctx context.Context, hd *handle, h *fleet.Host, cid string, err error) {
	defer d.unregister(hd)
	if err != nil {
		if ctx.Err() != nil {
			return // shutting down: the next Start resumes this launch
		}
		d.launchFailed(ctx, hd, h, cid, err)
		h.Release()
		d.Wake()
		return
	}
	j, terr := d.store.JobTransition(ctx, store.JobTransitionParams{
		ID: hd.id, From: []job.State{job.StateLaunching}, ExpectAttempt: &hd.job.Attempt,
		To: job.StateRunning, Reason: "running on " + h.Name(), Now: time.Now(),
		ContainerID: &cid, StartedAt: store.Ptr(time.Now()),
	})
	if terr != nil {
		if ctx.Err() == nil {
			d.log.Error("record running", "job", hd.id, "err", terr)
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
	cid, err = c.Create(ctx, engine.ContainerSpec{
		Name: name, Image: j.Spec.Image, Cmd: j.Spec.Command, Env: env, WorkingDir: j.Spec.Workdir,
		Labels: labels, CPUs: j.Spec.CPUs, MemoryBytes: j.Spec.MemoryBytes,
	})
	if errors.Is(err, engine.ErrNameConflict) {
		// Made by an earlier try of this very attempt (before a crash or a
		// timed-out create): adopt it if it is ours.
		ct, ierr := c.Inspect(ctx, name)
		if ierr != nil {
			return "", ierr
		}
		if ct.Labels[job.LabelJobID] != j.ID || ct.Labels[job.LabelAttempt] != strconv.Itoa(j.Attempt) {
			return "", &engine.Error{Host: h.Name(), Op: "container create", Class: engine.ClassJob,
				Err: fmt.Errorf("container name %s is taken by a container fusebox did not make for this job", name)}
		}
		d.log.Info("adopted existing container", "job", j.ID, "attempt", j.Attempt, "host", h.Name(), "status", ct.Status)
		if ct.Status != "created" {
			return ct.ID, nil // already started (it may have exited: monitoring collects it)
		}
		cid = ct.ID
	} else if err != nil {
		return "", err
	}
	if err := c.Start(ctx, cid); err != nil {
		return cid, err
	}
	return cid, nil
}

// ensureImage applies the job's pull policy on h.
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
		if policy == job.PullNever {
			return &engine.Error{Host: h.Name(), Op: "image inspect", Class: engine.ClassJob,
				Err: fmt.Errorf("image %s is not on the host and pull_policy is never", img)}
		}
	}
	if err := c.ImagePull(ctx, img); err != nil {
		return fmt.Errorf("image %s not found and pull failed: %w", img, err)
	}
	h.NoteImage(img, true)
	return nil
}

// launchFailed records a failed launch: a job fault fails the job; a host
// fault puts it back in the queue for another host, after a backoff, unless
// its attempts are used up. A host that could not be reached at all (the
// request never left: nothing was created) is like no host at all: that
// attempt does not count against the job's max_attempts.
func (d *Dispatcher) launchFailed(ctx context.Context, hd *handle, h *fleet.Host, cid string, err error) {
	j := hd.job
	if cid != "" {
		d.removeContainer(ctx, h, cid)
	}
	now := time.Now()
	p := store.JobTransitionParams{ID: j.ID, From: []job.State{job.StateLaunching}, ExpectAttempt: &j.Attempt, Now: now}
	switch {
	case engine.ClassOf(err) == engine.ClassHost || errors.Is(err, breaker.ErrOpen):
		wait := d.backoff(j)
		requeue := func(outcome, reason string) {
			p.To, p.NotBefore, p.AttemptOutcome = job.StateQueued, store.Ptr(now.Add(wait)), outcome
			p.Reason = fmt.Sprintf("%s; retrying in %s", reason, wait.Round(time.Millisecond))
		}
		switch {
		case engine.IsUnreachable(err) || errors.Is(err, breaker.ErrOpen):
			requeue(outcomeUnreachable, fmt.Sprintf("host %s unreachable: %v", h.Name(), err))
		case d.attemptsUsed(ctx, j) >= d.maxAttempts(j):
			p.To, p.FinishedAt, p.AttemptOutcome = job.StateFailed, &now, outcomeHostFault
			p.Reason = fmt.Sprintf("host fault on %s, attempts used up (%d): %v", h.Name(), d.maxAttempts(j), err)
		default:
			requeue(outcomeHostFault, fmt.Sprintf("host fault on %s: %v; another host will be tried", h.Name(), err))
		}
	default:
		p.To, p.FinishedAt = job.StateFailed, &now
		p.Reason = fmt.Sprintf("launch failed on %s: %v", h.Name(), err)
	}
	nj, terr := d.store.JobTransition(ctx, p)
	if terr != nil {
		if ctx.Err() == nil {
			d.log.Error("record launch failure", "job", j.ID, "err", terr)
		}
		return
	}
	d.log.Info("launch failed", "job", j.ID, "host", h.Name(), "to", nj.State, "err", err)
	if nj.State.Terminal() {
		d.finished(nj)
	}
}

// Attempt outcomes the dispatcher records besides the job states.
const (
	outcomeHostFault   = "host_fault"  // the host failed the launch: counts against max_attempts
	outcomeUnreachable = "unreachable" // the host could not be reached: does not count
	outcomeLostHost    = "lost_host"   // the host stayed unreachable while the job ran: counts
)

// attemptsUsed counts the job's attempts that count against max_attempts:
// every attempt except those whose host could not be reached at all (the
// current one, not finished yet, counts).
func (d *Dispatcher) attemptsUsed(ctx context.Context, j *job.Job) int {
	atts, err := d.store.AttemptList(ctx, j.ID)
	if err != nil {
		return j.Attempt // fail safe: as if every attempt counted
	}
	used := 0
	for _, a := range atts {
		if a.Outcome != outcomeUnreachable {
			used++
		}
	}
	return used
}

func (d *Dispatcher) finished(j *job.Job) {
	if d.cfg.Hooks.Finished != nil {
		d.cfg.Hooks.Finished(j)
	}
}

// removeContainer removes a container best-effort; the reconciler retries
// what fails here.
func (d *Dispatcher) removeContainer(ctx context.Context, h *fleet.Host, cid string) {
	ctx = fleet.WithLane(ctx, fleet.LaneLogs)
	err := h.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error { return c.Remove(ctx, cid) })
	if err != nil && ctx.Err() == nil {
		d.log.Debug("remove container (will retry in the sweep)", "host", h.Name(), "container", cid, "err", err)
	}
}
