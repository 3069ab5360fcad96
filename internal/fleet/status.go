package fleet

import "time"

// HostState is what a user sees of a host.
type HostState string

const (
	HostHealthy     HostState = "healthy"     // breaker closed, checks pass
	HostDegraded    HostState = "degraded"    // breaker closed, but slow or failing some checks
	HostUnavailable HostState = "unavailable" // breaker open: no jobs placed
	HostProbing     HostState = "probing"     // breaker half-open: a probe is allowed through
	HostIsolated    HostState = "isolated"    // operator isolated it (breaker forced open)
	HostDraining    HostState = "draining"    // operator draining: running jobs finish, no new ones
)

// DegradationMode is one way fusebox spares a host that is out or
// overloaded, as graceful degradation does it (HostStatus.Degradation).
type DegradationMode string

const (
	// ModeLogsDeferred: the host is out (breaker open or probing) or slow
	// (Host.Struggling), so the output of jobs that end there is collected
	// when it is back to normal; their containers are kept until then.
	ModeLogsDeferred DegradationMode = "logs_deferred"
	// ModePollsStretched: the host is out or slow, so the status polls of
	// its jobs are spaced out (bounded) instead of hammering it.
	ModePollsStretched DegradationMode = "polls_stretched"
	// ModeMonitoringShed: the host's in-flight call limit is reached and
	// calls wait: launches go first, status polls and log reads after.
	ModeMonitoringShed DegradationMode = "monitoring_shed"
)

// DegradationModes lists every mode, in a fixed order.
func DegradationModes() []DegradationMode {
	return []DegradationMode{ModeLogsDeferred, ModePollsStretched, ModeMonitoringShed}
}

// BreakerStatus is the part of a breaker snapshot shown to users.
type BreakerStatus struct {
	State               string    `json:"state"` // closed, open, half-open, forced-open, disabled, metrics-only
	ConsecutiveFailures int       `json:"consecutive_failures"`
	Trips               int       `json:"trips"` // consecutive trips (grows the open time)
	OpenedAt            time.Time `json:"opened_at,omitzero"`
	NextProbeAt         time.Time `json:"next_probe_at,omitzero"`
	Requests            int64     `json:"requests"` // in the current window
	Failures            int64     `json:"failures"`
	Rejected            int64     `json:"rejected"` // calls refused since start
}

// HostStatus is a host as the API and the CLI show it.
type HostStatus struct {
	Name      string            `json:"name"`
	Address   string            `json:"address"`
	Labels    map[string]string `json:"labels,omitempty"`
	Capacity  int               `json:"capacity"`
	Weight    float64           `json:"weight"`
	State     HostState         `json:"state"`
	Reason    string            `json:"reason,omitempty"` // why it is in State
	Breaker   BreakerStatus     `json:"breaker"`
	Running   int               `json:"running"` // jobs launching or running on it
	LastCheck time.Time         `json:"last_check,omitzero"`
	LastError string            `json:"last_error,omitempty"`
	Latency   time.Duration     `json:"latency_ns"` // last health-check round trip
	Placed    int64             `json:"placed"`     // jobs placed on it since start
	Calls     LimiterStatus     `json:"calls"`      // adaptive limit on in-flight Docker calls
	// CallLatency is the p50 and p99 of the host's recent Docker calls
	// (not health-check pings or streams).
	CallLatency CallLatency `json:"call_latency"`
	// Operator is the last operator action on the host (who, why, when),
	// remembered across restarts; nil if there was none.
	Operator *Operator `json:"operator,omitempty"`
	// Degradation are the modes of graceful degradation in force on the
	// host now (none when it is healthy).
	Degradation []DegradationMode `json:"degradation,omitempty"`
}

// Transition is one change of a host's breaker state, kept for the API, the
// demo summary and alerts.
type Transition struct {
	Host string    `json:"host"`
	From string    `json:"from"`
	To   string    `json:"to"`
	At   time.Time `json:"at"`
}
