package dispatch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/internal/fleet"
	"fusebox/internal/job"
	"fusebox/internal/store"
)

// scheduleLoop places ready queued jobs whenever woken, and at least every
// second (backoffs expire, probes come due).
func (d *Dispatcher) scheduleLoop(ctx context.Context) {
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
		next := d.schedule(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(next)
	}
}

// schedule places as many ready jobs as the fleet takes and returns when to
// look again.
func (d *Dispatcher) schedule(ctx context.Context) time.Duration {
	next := time.Second
	for {
		jobs, err := d.store.JobListQueued(ctx, store.JobListQueuedParams{Now: time.Now(), Limit: 200})
		if err != nil {
			if ctx.Err() == nil {
				d.log.Error("list queued jobs", "err", err)
			}
			return next
		}
		placed := 0
		for _, j := range jobs {
			if ctx.Err() != nil {
				return next
			}
			if d.place(ctx, j) {
				placed++
			}
		}
		// A full page placed: there may be more behind it.
		if placed == 0 || len(jobs) < 200 {
			return next
		}
	}
}

// place tries to put one queued job on a host; it reports whether it did.
func (d *Dispatcher) place(ctx context.Context, j *job.Job) bool {
	avoid := ""
	if j.Attempt > 0 {
		avoid = j.Host
	}
	lease, err := d.fleet.Place(fleet.Request{Constraints: j.Spec.Constraints, Image: j.Spec.Image, Avoid: avoid})
	if err != nil {
		var nh *fleet.NoHostError
		if d.cfg.FailWhenNoHost && errors.As(err, &nh) && !nh.AnyFull() {
			now := time.Now()
			nj, terr := d.store.JobTransition(ctx, store.JobTransitionParams{
				ID: j.ID, From: []job.State{job.StateQueued}, To: job.StateFailed, Now: now, FinishedAt: &now,
				Reason: err.Error() + "; not queued: graceful degradation is off",
			})
			if terr == nil {
				d.finished(nj)
			}
			return false
		}
		reason := "waiting for a host: " + err.Error()
		if j.Reason != reason {
			_, terr := d.store.JobTransition(ctx, store.JobTransitionParams{
				ID: j.ID, From: []job.State{job.StateQueued}, To: job.StateQueued, Reason: reason, Now: time.Now(),
			})
			if terr != nil && !errors.Is(terr, job.ErrConflict) && ctx.Err() == nil {
				d.log.Error("record queued reason", "job", j.ID, "err", terr)
			}
		}
		return false
	}
	h := lease.Host()
	attempt := j.Attempt + 1
	nj, err := d.store.JobTransition(ctx, store.JobTransitionParams{
		ID: j.ID, From: []job.State{job.StateQueued}, ExpectAttempt: &j.Attempt,
		To: job.StateLaunching, Reason: fmt.Sprintf("placed on %s (attempt %d)", h.Name(), attempt), Now: time.Now(),
		Host: store.Ptr(h.Name()), SetAttempt: &attempt, ContainerID: store.Ptr(""), NotBefore: &time.Time{},
	})
	if err != nil {
		// Cancelled meanwhile, or the store failed: give the slot back.
		lease.Done(context.Canceled)
		h.Release()
		if !errors.Is(err, job.ErrConflict) && ctx.Err() == nil {
			d.log.Error("record placement", "job", j.ID, "err", err)
		}
		return false
	}
	if d.cfg.Hooks.Placed != nil {
		d.cfg.Hooks.Placed(nj, h.Name())
	}
	d.startLaunch(nj, lease)
	return true
}
