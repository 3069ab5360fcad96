package dispatch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// recoverJob takes over a job an earlier run left launching or running.
// A running job is monitored again. A launching job finishes its launch
// under the same attempt (the container name makes that idempotent: a
// container already created is adopted). If its host does not answer, the
// earlier run's launch has an unknown outcome: it is fenced (confirm), and
// the lost-host clock starts now, not at the job's last update, so a long
// outage of fusebox itself does not make it look lost.
func (d *Dispatcher) recoverJob(j *job.Job) {
	h := d.fleet.Host(j.Host)
	if h == nil {
		d.goBackground(func() { d.endOrphan(d.ctx, j, "host "+j.Host+" is no longer configured") })
		return
	}
	hd := d.register(j, h)
	hd.recovered = true
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
		var cid string
		err := h.CallBackground(fleet.WithLane(ctx, fleet.LaneLaunch), func(ctx context.Context, c *engine.Client) error {
			var err error
			cid, err = d.launch(ctx, j, h)
			return err
		})
		if err != nil && ctx.Err() == nil && engine.ClassOf(err) != engine.ClassJob {
			// The host is out or failed: whether the earlier run made the
			// container cannot be told yet.
			defer d.unregister(hd)
			d.confirm(ctx, hd, h, fmt.Errorf("resuming a launch after a restart: %w", err))
			return
		}
		d.afterLaunch(ctx, hd, h, cid, err)
	})
}

// endOrphan ends a job whose host is gone from the configuration.
func (d *Dispatcher) endOrphan(ctx context.Context, j *job.Job, why string) {
	now := time.Now()
	p := store.JobTransitionParams{ID: j.ID, From: []job.State{job.StateLaunching, job.StateRunning}, Now: now, Reason: why}
	if d.cfg.LostPolicy == LostReschedule && j.Attempt < d.maxAttempts(j) {
		p.To, p.NotBefore, p.AttemptOutcome = job.StateQueued, &now, outcomeLostHost
	} else {
		p.To, p.FinishedAt, p.Cause = job.StateLost, &now, job.CauseHost
	}
	nj, err := d.commit(ctx, p)
	if err == nil {
		d.afterRequeue(ctx, nj)
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

// ReconcileHost removes the containers this fusebox made on h that no
// active job owns: containers of finished jobs, of stale attempts, or of
// jobs the store does not know. Another fusebox's containers (another
// job.LabelInstance) are left alone. It does nothing while h's breaker is not closed: an
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
		if !d.ours(ct) {
			continue // another fusebox's, on the same host
		}
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

// ours reports whether this fusebox made ct: it carries this instance's id,
// or no id at all (made before fusebox labelled its instance, or by a
// dispatcher configured without one).
func (d *Dispatcher) ours(ct *engine.Container) bool {
	in := ct.Labels[job.LabelInstance]
	return in == "" || d.cfg.Instance == "" || in == d.cfg.Instance
}
