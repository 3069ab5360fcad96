package api

import (
	"maps"
	"slices"
	"time"

	"fusebox/breaker"
	"fusebox/internal/fleet"
)

// The wire types of the hosts' routes. They are the API's own: the fleet's
// status types (fleet.HostStatus and its parts) are converted into them
// here, so that a field renamed inside the fleet does not change /v1.

// Host is a host as GET /v1/hosts, GET /v1/hosts/{name} and the operator
// actions show it (schema HostStatus).
type Host struct {
	Name      string            `json:"name"`
	Address   string            `json:"address"`
	Labels    map[string]string `json:"labels,omitempty"`
	Capacity  int               `json:"capacity"` // most jobs it runs at once
	Weight    float64           `json:"weight"`
	State     fleet.HostState   `json:"state"`
	Reason    string            `json:"reason,omitempty"` // why it is in State
	Breaker   HostBreaker       `json:"breaker"`
	Running   int               `json:"running"` // jobs launching or running on it
	LastCheck time.Time         `json:"last_check,omitzero"`
	LastError string            `json:"last_error,omitempty"`
	Latency   time.Duration     `json:"latency_ns"` // last health-check round trip
	Placed    int64             `json:"placed"`     // jobs placed on it since start
	Calls     HostCalls         `json:"calls"`      // adaptive limit on in-flight Docker calls
	// CallLatency is the p50 and p99 of the host's recent Docker calls
	// (not health-check pings or streams).
	CallLatency HostCallLatency `json:"call_latency"`
	// Operator is the last operator action on the host; nil if there was
	// none.
	Operator *HostOperator `json:"operator,omitempty"`
	// Degradation are the modes of graceful degradation in force on the
	// host now (none when it is healthy).
	Degradation []fleet.DegradationMode `json:"degradation,omitempty"`
}

// HostBreaker is the state of a host's breaker (schema BreakerStatus).
type HostBreaker struct {
	State               breaker.State `json:"state"` // "closed", "open", "half-open", ...
	ConsecutiveFailures int           `json:"consecutive_failures"`
	Trips               int           `json:"trips"` // consecutive trips (grows the open time)
	OpenedAt            time.Time     `json:"opened_at,omitzero"`
	NextProbeAt         time.Time     `json:"next_probe_at,omitzero"`
	Requests            int64         `json:"requests"` // in the current window
	Failures            int64         `json:"failures"`
	Rejected            int64         `json:"rejected"` // calls refused since start
}

// HostCalls is the adaptive limit on a host's in-flight Docker calls
// (schema LimiterStatus); all zero when the limiter is off.
type HostCalls struct {
	Limit    int `json:"limit"`
	InFlight int `json:"in_flight"`
	Waiting  int `json:"waiting"`
}

// HostCallLatency is the latency of a host's recent Docker calls (schema
// CallLatency), in nanoseconds on the wire.
type HostCallLatency struct {
	P50     time.Duration `json:"p50_ns"`
	P99     time.Duration `json:"p99_ns"`
	Samples int           `json:"samples"` // calls the quantiles are taken over
}

// HostOperator is an operator's action on a host: what, who, why and when
// (schema HostOperator).
type HostOperator struct {
	Action string    `json:"action"` // isolate, drain, release, reset
	By     string    `json:"by"`     // the token's name (ActorLocal without tokens)
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// HostTransition is one change of a host's breaker state (schema
// HostTransition).
type HostTransition struct {
	Host string        `json:"host"`
	From breaker.State `json:"from"`
	To   breaker.State `json:"to"`
	At   time.Time     `json:"at"`
}

// hostOf converts a host's status to its wire form.
func hostOf(h fleet.HostStatus) Host {
	return Host{
		Name:        h.Name,
		Address:     h.Address,
		Labels:      maps.Clone(h.Labels),
		Capacity:    h.Capacity,
		Weight:      h.Weight,
		State:       h.State,
		Reason:      h.Reason,
		Breaker:     hostBreakerOf(h.Breaker),
		Running:     h.Running,
		LastCheck:   h.LastCheck,
		LastError:   h.LastError,
		Latency:     h.Latency,
		Placed:      h.Placed,
		Calls:       hostCallsOf(h.Calls),
		CallLatency: hostCallLatencyOf(h.CallLatency),
		Operator:    hostOperatorOf(h.Operator),
		Degradation: slices.Clone(h.Degradation),
	}
}

// hostsOf converts every host's status; never nil, so that the list is []
// on the wire.
func hostsOf(hs []fleet.HostStatus) []Host {
	out := make([]Host, 0, len(hs))
	for _, h := range hs {
		out = append(out, hostOf(h))
	}
	return out
}

func hostBreakerOf(b fleet.BreakerStatus) HostBreaker {
	return HostBreaker{
		State:               b.State,
		ConsecutiveFailures: b.ConsecutiveFailures,
		Trips:               b.Trips,
		OpenedAt:            b.OpenedAt,
		NextProbeAt:         b.NextProbeAt,
		Requests:            b.Requests,
		Failures:            b.Failures,
		Rejected:            b.Rejected,
	}
}

func hostCallsOf(c fleet.LimiterStatus) HostCalls {
	return HostCalls{Limit: c.Limit, InFlight: c.InFlight, Waiting: c.Waiting}
}

func hostCallLatencyOf(l fleet.CallLatency) HostCallLatency {
	return HostCallLatency{P50: l.P50, P99: l.P99, Samples: l.Samples}
}

// hostOperatorOf converts the last operator action; nil stays nil.
func hostOperatorOf(op *fleet.Operator) *HostOperator {
	if op == nil {
		return nil
	}
	return &HostOperator{Action: op.Action, By: op.By, Reason: op.Reason, At: op.At}
}

func hostTransitionOf(t fleet.Transition) HostTransition {
	return HostTransition{Host: t.Host, From: t.From, To: t.To, At: t.At}
}

// hostTransitionsOf converts the breaker transitions; never nil.
func hostTransitionsOf(ts []fleet.Transition) []HostTransition {
	out := make([]HostTransition, 0, len(ts))
	for _, t := range ts {
		out = append(out, hostTransitionOf(t))
	}
	return out
}
