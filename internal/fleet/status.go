package fleet

import (
	"time"

	"fusebox/breaker"
)

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
	State               breaker.State
	ConsecutiveFailures int
	Trips               int // consecutive trips (grows the open time)
	OpenedAt            time.Time
	NextProbeAt         time.Time
	Requests            int64 // in the current window
	Failures            int64
	Rejected            int64 // calls refused since start
}

// HostStatus is what the fleet shows of a host (the API converts it
// into its own wire type, api.Host; the dashboard renders it as is).
type HostStatus struct {
	Name      string
	Address   string
	Labels    map[string]string
	Capacity  int
	Weight    float64
	State     HostState
	Reason    string // why it is in State
	Breaker   BreakerStatus
	Running   int // jobs launching or running on it
	LastCheck time.Time
	LastError string
	Latency   time.Duration // last health-check round trip
	Placed    int64         // jobs placed on it since start
	Calls     LimiterStatus // adaptive limit on in-flight Docker calls
	// CallLatency is the p50 and p99 of the host's recent Docker calls
	// (not health-check pings or streams).
	CallLatency CallLatency
	// Operator is the last operator action on the host (who, why, when),
	// remembered across restarts; nil if there was none.
	Operator *Operator
	// Degradation are the modes of graceful degradation in force on the
	// host now (none when it is healthy).
	Degradation []DegradationMode
}

// Transition is one change of a host's breaker state, kept for the API, the
// demo summary and alerts.
type Transition struct {
	Host     string
	From, To breaker.State
	At       time.Time
}
