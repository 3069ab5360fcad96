package dispatch

import (
	"context"
	"time"

	"fusebox/internal/engine"
	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// watchEvents follows h's event stream for fusebox's containers and tells
// the job's handle when its container stops. When the stream breaks,
// monitoring falls back to polling (pollInterval) until it is back.
//
// It also keeps the host's outages: a stream that breaks opens one (the
// daemon went away, or the way to it did), and the next ping that passes
// closes it. stoppedByDaemon reads them.
func (d *Dispatcher) watchEvents(ctx context.Context, h *fleet.Host) {
	wait := time.Second
	for ctx.Err() == nil {
		if !h.Available() {
			if !sleepCtx(ctx, d.cfg.PollInterval) {
				return
			}
			continue
		}
		if d.inOutage(h.Name()) {
			if err := h.Client().Ping(ctx); err != nil {
				if !sleepCtx(ctx, min(wait, d.cfg.PollInterval)) {
					return
				}
				continue
			}
			d.endOutage(h.Name())
		}
		sctx, cancel := context.WithCancel(ctx)
		evs, errc := h.Client().Events(sctx, map[string]string{job.LabelManaged: "true"})
		d.setEvents(h.Name(), true)
		up := time.Now()
		for ev := range evs {
			switch ev.Action {
			case "die", "oom", "destroy", "kill":
			default:
				continue
			}
			d.mu.Lock()
			hd := d.byCID[ev.ContainerID]
			d.mu.Unlock()
			if hd != nil {
				signal(hd.exited)
			}
		}
		cancel()
		d.setEvents(h.Name(), false)
		var err error
		select {
		case err = <-errc:
		default:
		}
		if ctx.Err() != nil {
			return
		}
		d.startOutage(h.Name())
		d.log.Debug("event stream ended; polling", "host", h.Name(), "err", err)
		if time.Since(up) > time.Minute {
			wait = time.Second
		}
		if !sleepCtx(ctx, wait) {
			return
		}
		wait = min(wait*2, 30*time.Second)
	}
}

func (d *Dispatcher) setEvents(host string, up bool) {
	d.mu.Lock()
	d.events[host] = up
	d.mu.Unlock()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// outage is a time a host's event stream was broken: from when it broke to
// the first ping that passed after (zero while it lasts).
type outage struct{ from, to time.Time }

const maxOutages = 16

func (d *Dispatcher) startOutage(host string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	os := d.outages[host]
	if n := len(os); n > 0 && os[n-1].to.IsZero() {
		return
	}
	os = append(os, outage{from: time.Now()})
	if len(os) > maxOutages {
		os = os[1:]
	}
	d.outages[host] = os
}

func (d *Dispatcher) endOutage(host string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if os := d.outages[host]; len(os) > 0 && os[len(os)-1].to.IsZero() {
		os[len(os)-1].to = time.Now()
	}
}

func (d *Dispatcher) inOutage(host string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	os := d.outages[host]
	return len(os) > 0 && os[len(os)-1].to.IsZero()
}

// outageSlack covers the clocks of fusebox and the engine, and the time a
// daemon takes to stop its containers once its API has gone away.
const outageSlack = 3 * time.Second

// stoppedByDaemon reports whether a container that exited by a signal
// (exit code above 128, not out of memory) stopped because its host's
// daemon went away: a daemon that restarts stops its containers (exit 143,
// or 137 past its shutdown timeout, often as it comes back), and one that
// comes back after a crash kills those it finds (or marks them 255).
// Neither is the job's doing. It is so when the exit falls in an outage
// this fusebox saw, or, for a job taken over from an earlier run (which may
// have seen the outage instead), when the daemon that reports the exit
// never saw the container start: the run straddled a daemon restart.
func (d *Dispatcher) stoppedByDaemon(ctx context.Context, hd *handle, h *fleet.Host, ct *engine.Container) bool {
	if ct.ExitCode <= 128 || ct.OOMKilled || ct.FinishedAt.IsZero() {
		return false
	}
	if d.inOutageWindow(h.Name(), ct, hd.job.StartedAt) {
		return true
	}
	if !hd.recovered || ct.StartedAt.IsZero() {
		return false
	}
	var saw bool
	err := h.CallBackground(fleet.WithLane(ctx, fleet.LaneStatus), func(ctx context.Context, c *engine.Client) error {
		var err error
		saw, err = c.SawStart(ctx, ct.ID, ct.StartedAt.Add(-time.Second))
		return err
	})
	return err == nil && !saw
}

func (d *Dispatcher) inOutageWindow(host string, ct *engine.Container, startedAt time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, o := range d.outages[host] {
		to := o.to
		if to.IsZero() {
			to = time.Now()
		}
		if to.Before(startedAt) {
			continue
		}
		if !ct.FinishedAt.Before(o.from.Add(-outageSlack)) && !ct.FinishedAt.After(to.Add(outageSlack)) {
			return true
		}
	}
	return false
}
