package fleet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
)

// CanaryConfig configures canary containers: a daemon can answer ping and
// still fail to start anything (nomad#11888), and Docker does not always
// say so with a status code that blames the host. A canary is a known-good
// container; when it cannot be started and run to its exit, the host is at
// fault whatever the status code said.
type CanaryConfig struct {
	Enabled  bool
	Image    string        // must be on every host; any exit code passes
	Command  []string      // default: the image's own command
	Interval time.Duration // between canaries on a healthy host; default 5m
	Timeout  time.Duration // from create to exit; default 30s
}

// canaryRetry is how soon a failed canary runs again.
const canaryRetry = 5 * time.Second

// Canary defaults.
const (
	CanaryIntervalDefault = 5 * time.Minute
	CanaryTimeoutDefault  = 30 * time.Second
)

// LabelCanary marks canary containers (they are not jobs: the job sweep
// leaves them alone, and each canary run removes leftovers of earlier ones).
const LabelCanary = "fusebox.canary"

func (c CanaryConfig) withDefaults() CanaryConfig {
	if c.Interval <= 0 {
		c.Interval = CanaryIntervalDefault
	}
	if c.Timeout <= 0 {
		c.Timeout = CanaryTimeoutDefault
	}
	return c
}

// canaryDue reports whether h should run a canary now: on schedule, and
// every canaryRetry while its last canary failed (so it comes back fast).
func (f *Fleet) canaryDue(h *Host) bool {
	c := f.cfg.Health.Canary
	if !c.Enabled || !h.Up() {
		return false
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.canaryFailing {
		// Again soon, to bring the host back fast, but not at every check.
		return time.Since(h.canaryAt) >= min(c.Interval, canaryRetry)
	}
	return time.Since(h.canaryAt) >= c.Interval
}

// RunCanary starts a canary container on h, waits for it to exit and
// removes it. A failure marks the host: placement skips it until a canary
// passes, and the failure counts against its breaker.
func (f *Fleet) RunCanary(ctx context.Context, h *Host) error {
	c := f.cfg.Health.Canary
	tok, err := h.br.Allow(ctx)
	if err != nil {
		return err
	}
	if tok.Probe() {
		tok.DoneOutcome(breaker.Ignored)
		return ErrProbing
	}
	err = f.canary(ctx, h, c)
	switch {
	case ctx.Err() != nil:
		tok.DoneOutcome(breaker.Ignored)
		return err
	case errors.Is(err, errCanaryImage):
		// Our configuration, not the host: say so, do not blame the host.
		tok.DoneOutcome(breaker.Ignored)
		f.logger.Warn("canary image missing on host; canary skipped", "host", h.Name(), "image", c.Image)
	case err != nil:
		tok.DoneOutcome(breaker.Failure)
	default:
		tok.DoneOutcome(breaker.Success)
	}
	h.mu.Lock()
	h.canaryAt = time.Now()
	was := h.canaryFailing
	h.canaryFailing = err != nil && !errors.Is(err, errCanaryImage)
	if h.canaryFailing {
		h.canaryErr = err.Error()
	} else {
		h.canaryErr = ""
	}
	now := h.canaryFailing
	h.mu.Unlock()
	switch {
	case now && !was:
		f.logger.Warn("canary failed: host gets no jobs until a canary passes", "host", h.Name(), "err", err)
	case was && !now:
		f.logger.Info("canary passed again", "host", h.Name())
	}
	return err
}

var errCanaryImage = errors.New("canary image not on the host")

func (f *Fleet) canary(ctx context.Context, h *Host, c CanaryConfig) error {
	cl := h.client
	ctx, cancel := context.WithTimeout(WithLane(ctx, LaneLogs), c.Timeout)
	defer cancel()
	labels := map[string]string{LabelCanary: "true"}
	if old, err := cl.List(ctx, labels); err == nil {
		for _, ct := range old {
			cl.Remove(ctx, ct.ID)
		}
	}
	id, err := cl.Create(ctx, engine.ContainerSpec{
		Name:  fmt.Sprintf("fusebox-canary-%s-%d", h.Name(), time.Now().UnixNano()),
		Image: c.Image, Cmd: c.Command, Labels: labels,
	})
	if errors.Is(err, engine.ErrNotFound) {
		return fmt.Errorf("%w: %v", errCanaryImage, err)
	}
	if err != nil {
		return fmt.Errorf("canary create: %w", err)
	}
	defer cl.Remove(context.WithoutCancel(ctx), id)
	if err := cl.Start(ctx, id); err != nil {
		return fmt.Errorf("canary start: %w", err)
	}
	if _, err := cl.Wait(ctx, id); err != nil {
		return fmt.Errorf("canary did not exit: %w", err)
	}
	return nil
}
