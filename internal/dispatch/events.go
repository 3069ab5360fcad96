package dispatch

import (
	"context"
	"time"

	"fusebox/internal/fleet"
	"fusebox/internal/job"
)

// watchEvents follows h's event stream for fusebox's containers and tells
// the job's handle when its container stops. When the stream breaks,
// monitoring falls back to polling (pollInterval) until it is back.
func (d *Dispatcher) watchEvents(ctx context.Context, h *fleet.Host) {
	wait := time.Second
	for ctx.Err() == nil {
		if !h.Available() {
			if !sleepCtx(ctx, d.cfg.PollInterval) {
				return
			}
			continue
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
