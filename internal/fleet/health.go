package fleet

import (
	"context"
	"errors"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
)

// healthLoop checks h every Interval (with jitter; Start has run the first
// check), and as soon as an open
// breaker's time is up, so that a recovered host is probed promptly even
// when no job is sent to it.
func (f *Fleet) healthLoop(ctx context.Context, h *Host) {
	t := time.NewTimer(jitter(f.cfg.Health.Interval, f.cfg.Health.Jitter))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if f.CheckNow(ctx, h) == nil && f.canaryDue(h) {
			f.RunCanary(ctx, h)
		}
		next := jitter(f.cfg.Health.Interval, f.cfg.Health.Jitter)
		snap := h.br.Snapshot()
		if snap.State == breaker.StateOpen && !snap.NextProbeAt.IsZero() {
			if d := time.Until(snap.NextProbeAt); d < next {
				next = max(d, 10*time.Millisecond)
			}
		}
		t.Reset(next)
	}
}

// CheckNow runs one health check on h through its breaker and records the
// result. While the breaker is open and its time is not up, the check is
// skipped (it returns the rejection); when the breaker is half-open, the
// check is a probe.
func (f *Fleet) CheckNow(ctx context.Context, h *Host) error {
	start := time.Now()
	err := h.Call(ctx, func(ctx context.Context, c *engine.Client) error { return c.Ping(ctx) })
	if errors.Is(err, breaker.ErrOpen) {
		return err
	}
	if ctx.Err() != nil {
		return err
	}
	lat := time.Since(start)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lastCheck = start
	h.latency = lat
	if err != nil {
		h.lastErr = err.Error()
		h.failStreak++
		h.okStreak = 0
		h.recovering = true
		if h.failStreak == f.cfg.Health.UnhealthyThreshold {
			f.logger.Warn("host health checks failing", "host", h.Name(), "consecutive", h.failStreak, "err", err)
		}
		return err
	}
	h.failStreak = 0
	h.okStreak++
	if h.okStreak >= f.cfg.Health.HealthyThreshold {
		if h.recovering {
			f.logger.Info("host healthy again", "host", h.Name())
		}
		h.recovering = false
		h.lastErr = ""
	}
	return nil
}
