package fleet

import (
	"cmp"
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"fusebox/breaker"
)

// Request says what a job needs of a host.
type Request struct {
	Constraints map[string]string // labels the host must carry
	Image       string            // hosts known to have it are preferred
	Avoid       string            // the host the last attempt failed on: used only if no other fits
}

// Lease is a job's place on a host: a capacity slot and the breaker permit
// for its launch. Report the launch's outcome with Done (once), and free
// the slot with Host().Release() when the job leaves the host.
type Lease struct {
	host  *Host
	token breaker.Token
	once  sync.Once
}

// Host returns the leased host.
func (l *Lease) Host() *Host { return l.host }

// Done reports the launch's outcome to the host's breaker: nil or a job
// fault is a success, a host fault a failure, a cancellation ignored.
// Later calls do nothing.
func (l *Lease) Done(err error) { l.once.Do(func() { l.token.Done(err) }) }

// NoHostError says why no host could take a job, host by host.
type NoHostError struct {
	Reasons map[string]string // host name -> why not
	// NextTry is the earliest time a host may become available (an open
	// breaker's next probe); zero if unknown.
	NextTry time.Time
}

// ErrNoHost is matched by every *NoHostError.
var ErrNoHost = errors.New("no host available")

func (e *NoHostError) Error() string {
	names := make([]string, 0, len(e.Reasons))
	for n := range e.Reasons {
		names = append(names, n)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + ": " + e.Reasons[n]
	}
	return "no host available (" + strings.Join(parts, "; ") + ")"
}

func (e *NoHostError) Is(target error) bool { return target == ErrNoHost }

// AnyFull reports whether some host was refused only for being full (the
// job would fit once a slot frees).
func (e *NoHostError) AnyFull() bool {
	for _, r := range e.Reasons {
		if r == reasonFull {
			return true
		}
	}
	return false
}

const reasonFull = "full"

// Place picks a host for req and leases it. The host must carry the
// constraint labels, not be draining or isolated or failing its canary,
// have a free capacity slot, and have a closed breaker (an open host gets no
// jobs; a half-open one is probed by the health checks, so that no job
// spends an attempt on a host that is likely still down). Among those: the
// Avoid host and a host whose last health check failed come last; then the
// least loaded by weight wins; on a tie, a host with the image, then the
// host that has had the fewest jobs by weight (so idle hosts share the
// work, and a host back from an outage takes jobs at once).
func (f *Fleet) Place(req Request) (*Lease, error) {
	// The common case, a host with a free slot, costs one cheap look at
	// each host: a full one is passed over on an atomic load, and no
	// reasons are written. Why no host fits is worked out only when none
	// does (noHost).
	cands := make([]placeCand, 0, 8)
	for _, h := range f.hosts {
		if h.Running() >= h.cfg.Capacity || !h.matches(req.Constraints) || h.draining.Load() || h.Fenced() > 0 || h.CanaryFailing() {
			continue
		}
		switch h.br.State() {
		case breaker.StateForcedOpen, breaker.StateOpen, breaker.StateHalfOpen:
			continue
		}
		cands = append(cands, placeCand{h: h, load: float64(h.Running()+1) / h.cfg.Weight, hasImg: req.Image != "" && h.HasImage(req.Image),
			avoid: h.Name() == req.Avoid, suspect: h.suspect(), placed: float64(h.placed.Load()) / h.cfg.Weight})
	}
	// The best candidate first, by selection: the first one nearly always
	// takes the job, so sorting them all would be wasted.
	for len(cands) > 0 {
		best := 0
		for i := 1; i < len(cands); i++ {
			if cands[i].before(cands[best]) {
				best = i
			}
		}
		c := cands[best]
		cands[best] = cands[len(cands)-1]
		cands = cands[:len(cands)-1]
		// Take the slot first so that two placements racing for the last
		// slot cannot both win.
		if int(c.h.running.Add(1)) > c.h.cfg.Capacity {
			c.h.running.Add(-1)
			continue
		}
		tok, err := c.h.br.Allow(context.Background())
		if err == nil && tok.Probe() {
			// It went half-open since the look: jobs do not probe.
			tok.DoneOutcome(breaker.Ignored)
			err = ErrProbing
		}
		if err != nil {
			c.h.running.Add(-1)
			continue
		}
		c.h.placed.Add(1)
		return &Lease{host: c.h, token: tok}, nil
	}
	return nil, f.noHost(req)
}

// placeCand is a host that could take a job, with what orders it.
type placeCand struct {
	h       *Host
	load    float64
	hasImg  bool
	avoid   bool
	suspect bool    // its last health check failed or was slow: used only if nothing else fits
	placed  float64 // jobs placed so far, by weight: spreads ties over time
}

// before orders candidates: the Avoid host and suspect hosts last, then
// the least loaded, then one with the image, then the fewest placed.
func (a placeCand) before(b placeCand) bool {
	return cmp.Or(
		trueLast(a.avoid, b.avoid),
		trueLast(a.suspect, b.suspect),
		cmp.Compare(a.load, b.load),
		trueLast(b.hasImg, a.hasImg), // with the image first
		cmp.Compare(a.placed, b.placed),
	) < 0
}

// noHost says why no host takes req now, host by host, and when an open
// host is next probed.
func (f *Fleet) noHost(req Request) *NoHostError {
	reasons := map[string]string{}
	var nextTry time.Time
	for _, h := range f.hosts {
		switch {
		case !h.matches(req.Constraints):
			reasons[h.Name()] = "labels do not match"
			continue
		case h.draining.Load():
			reasons[h.Name()] = "draining"
			continue
		case h.CanaryFailing():
			reasons[h.Name()] = "canary failing"
			continue
		case h.Fenced() > 0:
			reasons[h.Name()] = "removing containers left from when it was unreachable"
			continue
		}
		snap := h.br.Snapshot()
		switch snap.State {
		case breaker.StateForcedOpen:
			reasons[h.Name()] = "isolated"
		case breaker.StateOpen:
			reasons[h.Name()] = "unavailable (breaker open)"
			if nextTry.IsZero() || snap.NextProbeAt.Before(nextTry) {
				nextTry = snap.NextProbeAt
			}
		case breaker.StateHalfOpen:
			// Probing is the health checks' job: a job used as a probe
			// would spend an attempt on a host that is likely still down.
			reasons[h.Name()] = "probing (breaker half-open)"
		default:
			// Full (no counts: the reason is stored when it changes), or it
			// had a slot a moment ago and lost it to a racing placement:
			// it may fit once a slot frees either way.
			reasons[h.Name()] = reasonFull
		}
	}
	return &NoHostError{Reasons: reasons, NextTry: nextTry}
}

// trueLast orders false before true.
func trueLast(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
