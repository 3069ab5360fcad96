package fleet

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"fusebox/breaker"
	"fusebox/internal/engine"
)

// Host is one Docker host: its engine client, its breaker, its load.
type Host struct {
	cfg       HostConfig
	client    *engine.Client
	br        *breaker.Breaker
	closeOnce sync.Once

	running  atomic.Int32 // jobs launching or running here
	placed   atomic.Int64
	draining atomic.Bool
	fenced   atomic.Int32 // containers that may be left from an outage: no jobs until they are gone

	mu            sync.Mutex
	lastCheck     time.Time
	lastErr       string
	latency       time.Duration // of the last health check
	okStreak      int
	failStreak    int
	recovering    bool      // a check failed; not yet HealthyThreshold good ones since
	canaryAt      time.Time // last canary run
	canaryFailing bool      // the last canary could not run: no jobs go here
	canaryErr     string
	kept          string          // why failing health checks did not eject it ("" if they did, or pass)
	images        map[string]bool // images known to be present
	operator      *Operator       // the last operator action (Act, Restore), nil if none
	health        HealthConfig
	limiter       *limiter
	calls         *latencies // of recent Docker calls
	noDegradation bool       // Config.NoDegradation
}

// Name returns the host's name.
func (h *Host) Name() string { return h.cfg.Name }

// Client returns the host's engine client. Calls made directly on it are not
// counted by the breaker; use Call for that.
func (h *Host) Client() *engine.Client { return h.client }

// Breaker returns the host's breaker.
func (h *Host) Breaker() *breaker.Breaker { return h.br }

// Labels returns the host's labels.
func (h *Host) Labels() map[string]string { return h.cfg.Labels }

// Running returns how many jobs are launching or running on the host.
func (h *Host) Running() int { return int(h.running.Load()) }

// Adopt counts a job already running on the host (found after a restart)
// against its capacity. Release it like a placed job.
func (h *Host) Adopt() { h.running.Add(1) }

// Release frees the capacity slot of a job that left the host.
func (h *Host) Release() { h.running.Add(-1) }

// Call runs one Docker call on the host through its breaker: refused with an
// error that errors.Is breaker.ErrOpen while the host is unavailable, and
// its outcome counted (only host faults count as failures).
func (h *Host) Call(ctx context.Context, fn func(ctx context.Context, c *engine.Client) error) error {
	return h.br.Execute(ctx, func(ctx context.Context) error { return fn(ctx, h.client) })
}

// ErrProbing is returned by CallBackground while the host is half-open:
// background work waits for the health checks to finish probing.
var ErrProbing = errors.New("host is being probed; background calls wait")

// CallBackground runs a non-critical Docker call (status poll, log
// collection, removal, sweep) through the host's breaker, but only while it
// is closed: such calls never take a half-open probe slot (a poll stuck on
// a hung host would keep the health checks from probing it). While the
// host is open it returns the breaker's rejection; while half-open,
// ErrProbing. Callers back off and retry.
//
// An isolated host (breaker forced open by an operator) is healthy: isolate
// means "no new work", so the calls that look after what already runs
// there go on, straight to the engine (the breaker is not counting).
func (h *Host) CallBackground(ctx context.Context, fn func(ctx context.Context, c *engine.Client) error) error {
	if h.br.State() == breaker.StateForcedOpen {
		return fn(ctx, h.client)
	}
	tok, err := h.br.Allow(ctx)
	if err != nil {
		return err
	}
	if tok.Probe() {
		tok.DoneOutcome(breaker.Ignored)
		return fmt.Errorf("%s: %w", h.Name(), ErrProbing)
	}
	err = fn(ctx, h.client)
	tok.Done(err)
	return err
}

// Up reports whether the host's breaker lets every call through: closed,
// or switched to disabled or metrics-only by configuration. Background
// work that must not run against a host that may be down checks this.
func (h *Host) Up() bool {
	switch h.br.State() {
	case breaker.StateClosed, breaker.StateDisabled, breaker.StateMetricsOnly:
		return true
	}
	return false
}

// Reachable reports whether background calls (CallBackground) go through
// now: the breaker is closed, disabled or metrics-only, or forced open by
// an operator (the host is healthy, it only takes no new work).
func (h *Host) Reachable() bool {
	return h.Up() || h.br.State() == breaker.StateForcedOpen
}

// SetFenced records how many containers may be left on the host from a
// time it could not be reached (launches whose answer was lost, jobs
// declared lost). While there are any, the host gets no jobs: they are
// removed first, the moment the host answers again.
func (h *Host) SetFenced(n int) { h.fenced.Store(int32(n)) }

// Fenced returns the count SetFenced recorded.
func (h *Host) Fenced() int { return int(h.fenced.Load()) }

// Available reports whether the breaker would let a call through now
// (without taking a probe slot).
func (h *Host) Available() bool {
	switch h.br.Snapshot().State {
	case breaker.StateClosed, breaker.StateHalfOpen, breaker.StateDisabled, breaker.StateMetricsOnly:
		return true
	}
	return false
}

func (h *Host) matches(constraints map[string]string) bool {
	for k, v := range constraints {
		if h.cfg.Labels[k] != v {
			return false
		}
	}
	return true
}

// HasImage reports whether the host is known to have the image.
func (h *Host) HasImage(ref string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.images[ref]
}

// NoteImage records that the host has (or lacks) an image.
func (h *Host) NoteImage(ref string, present bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if present {
		h.images[ref] = true
	} else {
		delete(h.images, ref)
	}
}

// Status returns what a user sees of the host.
func (h *Host) Status() HostStatus {
	snap := h.br.Snapshot()
	h.mu.Lock()
	st := HostStatus{
		Name:        h.cfg.Name,
		Address:     h.cfg.Engine.Address,
		Labels:      maps.Clone(h.cfg.Labels),
		Capacity:    h.cfg.Capacity,
		Weight:      h.cfg.Weight,
		Running:     h.Running(),
		Placed:      h.placed.Load(),
		LastCheck:   h.lastCheck,
		LastError:   h.lastErr,
		Latency:     h.latency,
		Calls:       h.limiter.status(),
		CallLatency: h.calls.status(),
	}
	var op *Operator
	if h.operator != nil {
		o := *h.operator
		op = &o
	}
	st.Operator = op
	failStreak, recovering, kept, slow := h.failStreak, h.recovering, h.kept, h.slowLocked()
	canaryFailing, canaryErr := h.canaryFailing, h.canaryErr
	h.mu.Unlock()
	st.Breaker = BreakerStatus{
		State:               snap.State,
		ConsecutiveFailures: snap.ConsecutiveFailures,
		Trips:               snap.Trips,
		OpenedAt:            snap.OpenedAt,
		NextProbeAt:         snap.NextProbeAt,
		Requests:            int64(snap.Counts.Requests),
		Failures:            int64(snap.Counts.Failures),
		Rejected:            int64(snap.Totals.Rejected),
	}
	switch snap.State {
	case breaker.StateForcedOpen:
		st.State, st.Reason = HostIsolated, operatorReason(op, ActionIsolate, "isolated by an operator")
	case breaker.StateOpen:
		st.State, st.Reason = HostUnavailable, "breaker open after failed Docker calls"
		if failStreak >= h.health.UnhealthyThreshold {
			st.Reason = fmt.Sprintf("ejected: %d health checks failed in a row (%s)", failStreak, st.LastError)
		}
	case breaker.StateHalfOpen:
		st.State, st.Reason = HostProbing, "breaker half-open: probing"
	default:
		switch {
		case h.draining.Load():
			st.State, st.Reason = HostDraining, operatorReason(op, ActionDrain, "draining: no new jobs")
		case h.Fenced() > 0:
			st.State, st.Reason = HostDegraded, fmt.Sprintf("no new jobs until %d container(s) left from when it was unreachable are removed", h.Fenced())
		case canaryFailing:
			st.State, st.Reason = HostDegraded, "canary failing, no jobs placed: "+canaryErr
		case kept != "" && failStreak >= h.health.UnhealthyThreshold:
			st.State, st.Reason = HostDegraded, "health checks time out, not ejected: "+kept
		case failStreak >= h.health.UnhealthyThreshold:
			st.State, st.Reason = HostDegraded, "health checks failing"
		case failStreak > 0 || recovering:
			st.State, st.Reason = HostDegraded, "recent health checks failed"
		case st.Latency >= h.health.SlowThreshold:
			st.State, st.Reason = HostDegraded, "slow health checks"
		case st.Calls.Limit > 0 && st.Calls.Limit < h.limiter.cfg.Initial/2:
			st.State, st.Reason = HostDegraded, fmt.Sprintf("slow Docker calls: in-flight limit cut to %d", st.Calls.Limit)
		default:
			st.State = HostHealthy
		}
	}
	if h.spared(snap.State, slow) {
		st.Degradation = append(st.Degradation, ModeLogsDeferred, ModePollsStretched)
	}
	if st.Calls.Limit > 0 && st.Calls.InFlight >= st.Calls.Limit && st.Calls.Waiting > 0 {
		st.Degradation = append(st.Degradation, ModeMonitoringShed)
	}
	return st
}

// CanaryFailing reports whether the host's last canary failed.
func (h *Host) CanaryFailing() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.canaryFailing
}

// suspect reports whether the host's last health check failed or was slow:
// its breaker may not have tripped (or, slow, it was kept by the ejection
// cap), but placement prefers other hosts.
func (h *Host) suspect() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.failStreak > 0 || (h.latency >= h.health.SlowThreshold && !h.lastCheck.IsZero())
}

// Struggling reports whether graceful degradation spares the host now: its
// breaker is open or half-open, or it is in but slow (its last health check
// took SlowThreshold or more, or its checks time out and the ejection cap
// kept it in). The dispatcher then defers log collection on it (the
// container is kept until its logs are read) and stretches its status
// polls. An isolated host is healthy and is not spared. Always false with
// graceful degradation off.
func (h *Host) Struggling() bool {
	st := h.br.State()
	h.mu.Lock()
	slow := h.slowLocked()
	h.mu.Unlock()
	return h.spared(st, slow)
}

func (h *Host) spared(st breaker.State, slow bool) bool {
	if h.noDegradation {
		return false
	}
	switch st {
	case breaker.StateOpen, breaker.StateHalfOpen:
		return true
	case breaker.StateForcedOpen:
		return false
	}
	return slow
}

// slowLocked reports whether the host's health checks are slow: the last
// one took SlowThreshold or more, or they time out and the ejection cap
// keeps the host in. h.mu is held.
func (h *Host) slowLocked() bool {
	if h.lastCheck.IsZero() {
		return false
	}
	return h.latency >= h.health.SlowThreshold || h.kept != "" && h.failStreak >= h.health.UnhealthyThreshold
}
