package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// Fencing. A launch whose create or start answer was lost may have left a
// container running on its host. Until that is settled the job gets no new
// attempt anywhere: confirm asks the host, by the attempt's container name,
// whether the container exists, and
//   - absent: the launch failed cleanly; the job is requeued (or fails when
//     its attempts are used up), as for any host fault;
//   - created, never started: its inputs are unpacked (again: the lost
//     launch may have stopped before or while it did) and it is started (a
//     start is idempotent), and confirmed again if that answer is lost too;
//   - running or exited: it is adopted and monitored like any started job;
//   - the host does not answer for LostAfter: the job is declared lost
//     under the lost-host policy, and a fence is stored with that
//     transition. A host with fences gets no jobs; the moment it answers
//     again, the fenced containers are removed (clearFences), the attempt's
//     record says so, and only then does placement resume there.
//
// A running job whose host is declared lost is fenced the same way.

// confirm settles a launch whose outcome is unknown. It owns the job's
// capacity slot and handle.
func (d *Dispatcher) confirm(ctx context.Context, hd *handle, h *fleet.Host, cause error) {
	j := hd.job
	name := job.ContainerName(j.ID, j.Attempt)
	since := time.Now()
	if nj, err := d.commit(ctx, store.JobTransitionParams{
		ID: j.ID, From: []job.State{job.StateLaunching}, ExpectAttempt: &j.Attempt, To: job.StateLaunching, Now: since,
		Reason: fmt.Sprintf("launch on %s: %v; confirming whether container %s exists before any other attempt", h.Name(), cause, name),
	}); err == nil {
		hd.job = nj
		if nj.CancelRequested {
			signal(hd.cancel)
		}
	} else {
		if ctx.Err() == nil {
			d.log.Error("record unknown launch outcome", "job", j.ID, "err", err)
			hd.slot.release()
		}
		return
	}
	d.log.Warn("launch outcome unknown: confirming before another attempt", "job", j.ID, "host", h.Name(), "attempt", j.Attempt, "err", cause)
	cancelled := false
	refused := 0 // answered refusals to start the created container
	wait := d.cfg.PollInterval
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return // the next Start confirms it again (recoverJob)
		case <-hd.cancel:
			cancelled = true
			continue
		case <-t.C:
		}
		var ct *engine.Container
		err := h.CallBackground(fleet.WithLane(ctx, fleet.LaneStatus), func(ctx context.Context, c *engine.Client) error {
			var err error
			ct, err = c.Inspect(ctx, name)
			return err
		})
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, engine.ErrNotFound):
			d.confirmedAbsent(ctx, hd, h, cause, cancelled, "container "+name+" does not exist")
			return
		case err == nil && cancelled:
			if rerr := d.removeContainer(ctx, h, ct.ID); rerr == nil {
				d.confirmedAbsent(ctx, hd, h, cause, cancelled, "container "+name+" was removed")
				return
			}
		case err == nil && ct.Status == "created" && time.Since(since) >= d.cfg.LostAfter:
			// The host answers but would not start it for LostAfter: give
			// up on this host.
			if rerr := d.removeContainer(ctx, h, ct.ID); rerr == nil {
				d.confirmedAbsent(ctx, hd, h, cause, false, "its container did not start within "+d.cfg.LostAfter.String()+" and was removed")
				return
			}
		case err == nil && ct.Status == "created":
			// Created by this very attempt, never started: unpack its
			// inputs (the lost launch may have stopped before or while it
			// did; unpacking again is harmless), start it (a start is
			// idempotent), and confirm again if that answer is lost too.
			if len(j.Spec.Inputs) > 0 {
				cerr := h.CallBackground(fleet.WithLane(ctx, fleet.LaneLaunch), func(ctx context.Context, c *engine.Client) error {
					err := d.cfg.Artifacts.CopyIn(ctx, c, ct.ID, j.Spec.Inputs)
					if err != nil && !engineHostFault(err) {
						// Not the host's fault: classed as the job's for its breaker.
						return &artifactError{err: &engine.Error{Host: h.Name(), Op: "artifacts copy in", Class: engine.ClassJob, Err: err}}
					}
					return err
				})
				if errors.As(cerr, new(*artifactError)) {
					if rerr := d.removeContainer(ctx, h, ct.ID); rerr == nil {
						d.confirmedAbsent(ctx, hd, h, cerr, false, "its inputs could not be unpacked and it was removed")
						return
					}
				}
				if cerr != nil {
					break // the host failed: confirm again
				}
			}
			serr := h.CallBackground(fleet.WithLane(ctx, fleet.LaneLaunch), func(ctx context.Context, c *engine.Client) error {
				return c.Start(ctx, ct.ID)
			})
			if serr == nil {
				d.log.Info("started the container of a launch whose answer was lost", "job", j.ID, "host", h.Name())
				d.started(ctx, hd, h, ct.ID)
				return
			}
			if engine.Answered(serr) {
				// The engine refused to start it. The first start may still
				// be under way in the daemon ("task already exists"): look
				// again before taking the refusal as the outcome.
				refused++
				if refused >= 3 {
					if rerr := d.removeContainer(ctx, h, ct.ID); rerr == nil {
						d.confirmedAbsent(ctx, hd, h, d.diagnose(ctx, h, j, serr), false, "its container would not start and was removed")
						return
					}
				}
			}
		case err == nil:
			d.log.Info("adopting the container of a launch whose answer was lost", "job", j.ID, "host", h.Name(), "status", ct.Status)
			d.started(ctx, hd, h, ct.ID)
			return
		case time.Since(since) >= d.cfg.LostAfter:
			d.declareLost(ctx, hd, h, cancelled, fmt.Sprintf("host %s did not answer for %s after a launch whose outcome is unknown", h.Name(), d.cfg.LostAfter))
			return
		}
		t.Reset(wait)
		wait = min(wait*2, 10*time.Second)
	}
}

// confirmedAbsent ends a fenced launch whose container is known not to run.
func (d *Dispatcher) confirmedAbsent(ctx context.Context, hd *handle, h *fleet.Host, cause error, cancelled bool, what string) {
	defer d.Wake()
	defer hd.slot.release()
	if !cancelled {
		err := fmt.Errorf("%w (%s)", cause, what)
		if engine.ClassOf(cause) != engine.ClassJob {
			// The answer was lost on the host's side: a host fault,
			// whatever the last call saw (a cancelled context, say).
			err = &engine.Error{Host: h.Name(), Op: "launch", Class: engine.ClassHost, Err: err}
		}
		d.launchFailed(ctx, hd, h, "", err)
		return
	}
	now := time.Now()
	nj, err := d.commit(ctx, store.JobTransitionParams{
		ID: hd.id, From: []job.State{job.StateLaunching}, ExpectAttempt: &hd.job.Attempt,
		To: job.StateCancelled, Reason: "cancelled by user (" + what + ")", Now: now, FinishedAt: &now, Cause: job.CauseCancelled,
	})
	if err == nil {
		d.finished(nj)
	}
}

// declareLost applies the lost-host policy to a launching or running job
// whose host stayed unreachable, and fences the attempt's container on that
// host in the same transaction. It releases the job's slot.
func (d *Dispatcher) declareLost(ctx context.Context, hd *handle, h *fleet.Host, cancelled bool, why string) {
	defer d.Wake()
	defer hd.slot.release()
	j := hd.job
	name := job.ContainerName(j.ID, j.Attempt)
	now := time.Now()
	left := fmt.Sprintf("; container %s will be removed from %s before it runs anything else", name, h.Name())
	p := store.JobTransitionParams{
		ID: j.ID, From: []job.State{job.StateLaunching, job.StateRunning}, ExpectAttempt: &j.Attempt, Now: now,
		Fence: &store.Fence{Host: h.Name(), JobID: j.ID, Attempt: j.Attempt, Container: name, Reason: why},
	}
	switch {
	case cancelled || j.CancelRequested:
		p.To, p.FinishedAt, p.Reason, p.Cause = job.StateCancelled, &now, "cancelled by user; "+why+left, job.CauseCancelled
	case d.cfg.LostPolicy == LostReschedule && j.Attempt < d.maxAttempts(j):
		p.To, p.NotBefore, p.AttemptOutcome = job.StateQueued, &now, outcomeLostHost
		p.Reason = why + "; rescheduled" + left
	default:
		p.To, p.FinishedAt, p.AttemptOutcome, p.Cause = job.StateLost, &now, outcomeLostHost, job.CauseHost
		p.Reason = why + left
	}
	d.fenceMu.Lock() // the fence and its count together (clearFences counts them too)
	nj, err := d.commit(ctx, p)
	if err == nil {
		d.addFence(h)
	}
	d.fenceMu.Unlock()
	if err != nil {
		if ctx.Err() == nil {
			d.log.Error("record lost job", "job", j.ID, "err", err)
		}
		return
	}
	d.log.Warn("job's host declared lost", "job", j.ID, "host", h.Name(), "to", nj.State, "why", why)
	d.afterRequeue(ctx, nj)
}

// addFence counts one more fenced container on h: it gets no jobs until
// clearFences has removed them. The caller holds d.fenceMu.
func (d *Dispatcher) addFence(h *fleet.Host) {
	h.SetFenced(h.Fenced() + 1)
	signal(d.fenceWake)
}

// loadFences counts the fences a previous run left, so that their hosts get
// no jobs before the containers are removed.
func (d *Dispatcher) loadFences(ctx context.Context) error {
	fs, err := d.store.FenceList(ctx, "")
	if err != nil {
		return err
	}
	n := map[string]int{}
	for _, f := range fs {
		n[f.Host]++
	}
	for name, k := range n {
		if h := d.fleet.Host(name); h != nil {
			h.SetFenced(k)
		}
	}
	return nil
}

// fenceLoop removes fenced containers from every host that answers: at
// once when a host's breaker closes or a fence is added, and every
// PollInterval while any fence is left.
func (d *Dispatcher) fenceLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.fenceWake:
		case <-t.C:
		}
		left := false
		for _, h := range d.fleet.Hosts() {
			if h.Fenced() > 0 {
				d.clearFences(ctx, h)
				left = left || h.Fenced() > 0
			}
		}
		if left {
			t.Reset(d.cfg.PollInterval)
		}
	}
}

// clearFences removes h's fenced containers if h answers, and records each
// on its job's attempt. Once none is left, h takes jobs again.
func (d *Dispatcher) clearFences(ctx context.Context, h *fleet.Host) {
	if !h.Reachable() {
		return
	}
	// Held throughout, so that no fence is added between the list and the
	// count it sets (declareLost takes it too; it is rare).
	d.fenceMu.Lock()
	defer d.fenceMu.Unlock()
	var fs []store.Fence
	if err := d.retryStore(ctx, "list fences", func() error {
		var err error
		fs, err = d.store.FenceList(ctx, h.Name())
		return err
	}); err != nil {
		return
	}
	left := len(fs)
	defer func() {
		h.SetFenced(left)
		if left == 0 {
			d.Wake()
		}
	}()
	for _, f := range fs {
		err := h.CallBackground(fleet.WithLane(ctx, fleet.LaneLaunch), func(ctx context.Context, c *engine.Client) error {
			return c.Remove(ctx, f.Container)
		})
		if err != nil {
			d.log.Debug("fenced container not removed yet", "host", h.Name(), "container", f.Container, "err", err)
			return
		}
		note := fmt.Sprintf("container %s removed from %s at %s, when it answered again", f.Container, h.Name(), time.Now().UTC().Format(time.RFC3339))
		if err := d.retryStore(ctx, "clear fence", func() error {
			return d.store.FenceClear(ctx, store.FenceClearParams{Host: f.Host, JobID: f.JobID, Attempt: f.Attempt, Note: note})
		}); err != nil {
			return
		}
		left--
		d.log.Info("removed a fenced container", "host", h.Name(), "container", f.Container, "job", f.JobID)
	}
}
