package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
)

// healthLoop checks h every Interval (with jitter; Start has run the first
// check), every UnhealthyInterval after a failed check until the host is
// ejected or passes again, and as soon as an open breaker's time is up, so
// that a recovered host is probed promptly even when no job is sent to it.
// A canary runs beside the checks, never holding them up: a canary stuck on
// a hung daemon must not delay the pings that eject it.
func (f *Fleet) healthLoop(ctx context.Context, h *Host) {
	t := time.NewTimer(f.nextCheck(h))
	defer t.Stop()
	var canary chan struct{} // open while a canary runs
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if canary != nil {
			select {
			case <-canary:
				canary = nil
			default:
			}
		}
		if f.CheckNow(ctx, h) == nil && canary == nil && f.canaryDue(h) {
			canary = make(chan struct{})
			f.wg.Add(1)
			go func(done chan struct{}) {
				defer f.wg.Done()
				defer close(done)
				f.RunCanary(ctx, h)
			}(canary)
		}
		t.Reset(f.nextCheck(h))
	}
}

// nextCheck returns how long to wait before h's next check.
func (f *Fleet) nextCheck(h *Host) time.Duration {
	hc := f.cfg.Health
	next := jitter(hc.Interval, hc.Jitter)
	snap := h.br.Snapshot()
	switch snap.State {
	case breaker.StateOpen, breaker.StateHalfOpen:
		if !snap.NextProbeAt.IsZero() {
			next = min(next, max(time.Until(snap.NextProbeAt), 10*time.Millisecond))
		}
	case breaker.StateForcedOpen:
	default:
		if h.suspect() {
			next = min(next, jitter(hc.UnhealthyInterval, hc.Jitter))
		}
	}
	return next
}

// CheckNow runs one health check (a ping) on h and records the result.
// While the breaker lets every call through (closed, or disabled or
// metrics-only by configuration) the ping goes straight to the engine: it
// feeds the health-check rule, not the breaker's count of failed real
// calls, and UnhealthyThreshold failures in a row trip the breaker open for
// BaseEjectionTime × consecutive trips. While the breaker is half-open the
// ping goes through it as the probe. While it is open and its time is not
// up, or isolated, the check is skipped and CheckNow returns the rejection.
func (f *Fleet) CheckNow(ctx context.Context, h *Host) error {
	ping := func(ctx context.Context, c *engine.Client) error { return c.Ping(ctx) }
	start := time.Now()
	var err error
	if h.Up() {
		err = ping(ctx, h.client)
	} else {
		err = h.Call(ctx, ping)
	}
	if errors.Is(err, breaker.ErrOpen) {
		return err
	}
	if ctx.Err() != nil {
		return err
	}
	lat := time.Since(start)
	hc := f.cfg.Health
	h.mu.Lock()
	h.lastCheck = start
	h.latency = lat
	if err != nil {
		h.lastErr = err.Error()
		h.failStreak++
		h.okStreak = 0
		h.recovering = true
		streak := h.failStreak
		h.mu.Unlock()
		// Outside h.mu: the breaker's listeners may read the host's status.
		if streak >= hc.UnhealthyThreshold {
			kept := ""
			if errors.Is(err, context.DeadlineExceeded) {
				kept = f.ejectionCap(h)
			}
			h.mu.Lock()
			changed := h.kept != kept
			h.kept = kept
			h.mu.Unlock()
			switch {
			case kept != "":
				if changed {
					f.logger.Warn("host slow, not ejected", "host", h.Name(), "why", kept, "err", err)
				}
			case h.br.Trip(hc.BaseEjectionTime):
				f.logger.Warn("host ejected: health checks failing", "host", h.Name(), "consecutive", streak, "err", err)
			}
		}
		return err
	}
	h.failStreak = 0
	h.kept = ""
	h.okStreak++
	if h.okStreak >= hc.HealthyThreshold {
		if h.recovering {
			f.logger.Info("host healthy again", "host", h.Name())
		}
		h.recovering = false
		h.lastErr = ""
	}
	h.mu.Unlock()
	return nil
}

// ejectionCap says why h, slow, must not be ejected now ("" if it may): the
// share of hosts out would pass MaxEjectedPercent, or h is the last host in.
func (f *Fleet) ejectionCap(h *Host) string {
	pct := f.cfg.Health.MaxEjectedPercent
	if pct == 0 {
		pct = 100
	}
	total, out := len(f.hosts), 0
	for _, o := range f.hosts {
		if o == h {
			continue
		}
		switch o.br.State() {
		case breaker.StateOpen, breaker.StateHalfOpen:
			out++
		}
	}
	switch {
	case total < 2:
		return "" // a lone host: out means its jobs wait in the queue
	case pct < 0:
		return "ejection for slowness is off (max_ejected_percent 0)"
	case out+1 >= total:
		return fmt.Sprintf("it is the last of %d hosts in (every host slow: keep using them)", total)
	case (out+1)*100 > pct*total:
		return fmt.Sprintf("%d of %d hosts would be out, past max_ejected_percent %d", out+1, total, pct)
	}
	return ""
}
