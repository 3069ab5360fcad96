package dispatch

import (
	"context"
	"errors"
	"strconv"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// recoverJob takes over a job an earlier run left launching or running.
// A launching job finishes its launch under the same attempt (the container
// name makes that idempotent: a container already created is adopted); a
// running job is monitored again. While its host is unavailable it waits;
// past LostAfter the lost-host policy applies.
func (d *Dispatcher) recoverJob(j *job.Job) {
	h := d.fleet.Host(j.Host)
	hd := d.register(j)
	if h == nil {
		d.goBackground(func() {
			defer d.unregister(hd)
			d.endOrphan(d.ctx, j, "host "+j.Host+" is no longer configured")
		})
		return
	}
	h.Adopt()
	if j.CancelRequested {
		signal(hd.cancel)
	}
	d.log.Info("recovering job", "job", j.ID, "state", j.State, "host", j.Host, "attempt", j.Attempt)
	if j.State == job.StateRunning {
		d.setContainer(hd, j.ContainerID)
		d.goBackground(func() {
			defer d.unregister(hd)
			d.monitor(d.ctx, hd, h)
		})
		return
	}
	d.goBackground(func() {
		ctx := d.ctx
		since := j.UpdatedAt
		wait := d.cfg.PollInterval
		for {
			var cid string
			err := h.CallBackground(fleet.WithLane(ctx, fleet.LaneLaunch), func(ctx context.Context, c *engine.Client) error {
				var err error
				cid, err = d.launch(ctx, j, h)
				return err
			})
			hostOut := errors.Is(err, breaker.ErrOpen) || engine.ClassOf(err) == engine.ClassHost
			if hostOut && ctx.Err() == nil && time.Since(since) < d.cfg.LostAfter {
				// Cannot tell yet whether the container exists: wait for the
				// host rather than launch another attempt elsewhere.
				if !sleepCtx(ctx, wait) {
					return
				}
				wait = min(wait*2, 30*time.Second)
				continue
			}
			d.afterLaunch(ctx, hd, h, cid, err)
			return
		}
	})
}

// endOrphan ends a job whose host is gone from the configuration.
func (d *Dispatcher) endOrphan(ctx context.Context, j *job.Job, why string) {
	now := time.Now()
	p := store.JobTransitionParams{ID: j.ID, From: []job.State{job.StateLaunching, job.StateRunning}, Now: now, Reason: why}
	if d.cfg.LostPolicy == LostReschedule && d.attemptsUsed(ctx, j) < d.maxAttempts(j) {
		p.To, p.NotBefore, p.AttemptOutcome = job.StateQueued, &now, outcomeLostHost
	} else {
		p.To, p.FinishedAt = job.StateLost, &now
	}
	nj, err := d.store.JobTransition(ctx, p)
	if err == nil && nj.State.Terminal() {
		d.finished(nj)
	}
	d.Wake()
}

// reconcileLoop removes dangling containers now and every ReconcileInterval.
func (d *Dispatcher) reconcileLoop(ctx context.Context) {
	for {
		for _, h := range d.fleet.Hosts() {
			d.ReconcileHost(ctx, h)
		}
		if !sleepCtx(ctx, d.cfg.ReconcileInterval) {
			return
		}
	}
}

// ReconcileHost removes the containers fusebox made on h that no active job
// owns: containers of finished jobs, of stale attempts, or of jobs the store
// does not know. It does nothing while h's breaker is not closed: an
// unreachable host's containers are dealt with when it is back.
func (d *Dispatcher) ReconcileHost(ctx context.Context, h *fleet.Host) int {
	if !h.Up() {
		return 0
	}
	ctx = fleet.WithLane(ctx, fleet.LaneLogs)
	var cts []*engine.Container
	err := h.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error {
		var err error
		cts, err = c.List(ctx, map[string]string{job.LabelManaged: "true"})
		return err
	})
	if err != nil {
		return 0
	}
	removed := 0
	for _, ct := range cts {
		id := ct.Labels[job.LabelJobID]
		j, err := d.store.JobGetByID(ctx, id)
		switch {
		case errors.Is(err, job.ErrNotFound):
		case err != nil:
			continue
		case (j.State == job.StateLaunching || j.State == job.StateRunning) && j.Host == h.Name() && ct.Labels[job.LabelAttempt] == strconv.Itoa(j.Attempt):
			continue // the live attempt's container
		}
		d.log.Info("removing dangling container", "host", h.Name(), "container", shortID(ct.ID), "job", id, "status", ct.Status)
		if err := h.CallBackground(ctx, func(ctx context.Context, c *engine.Client) error { return c.Remove(ctx, ct.ID) }); err == nil {
			removed++
		}
	}
	return removed
}
