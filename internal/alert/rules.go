package alert

import (
	"fmt"
	"math"
	"time"

	"fusebox/breaker"
	"fusebox/internal/fleet"
	"fusebox/internal/store"
)

// The alerts, by their alertname label.
const (
	// NameBreakerOpen: a host's breaker is open or half-open (not forced
	// open: that is an operator's isolate). Resolved when it closes.
	NameBreakerOpen = "FuseboxBreakerOpen"
	// NameAllHostsOut: there are hosts and none is healthy or degraded.
	NameAllHostsOut = "FuseboxAllHostsOut"
	// NameQueueNearlyFull: the queue holds QueueThreshold of its bound or
	// more.
	NameQueueNearlyFull = "FuseboxQueueNearlyFull"
	// NameWorkflowBreakerOpen: a workflow's breaker is open or half-open:
	// its runs failed by their own fault often enough that new ones are
	// refused. Resolved when it closes.
	NameWorkflowBreakerOpen = "FuseboxWorkflowBreakerOpen"
	// NameHostDegraded: a host is degraded.
	NameHostDegraded = "FuseboxHostDegraded"
	// NameJobLost: a job was marked lost. It fires once per job and
	// resolves by itself JobLostResolveTimeout after it started.
	NameJobLost = "FuseboxJobLost"
	// NameTest is the alert Manager.Test sends.
	NameTest = "FuseboxTest"
)

// Labels of the alerts.
const (
	LabelAlertName = "alertname"
	LabelSeverity  = "severity" // critical, warning, info
	LabelHost      = "host"
	LabelJobID     = "job_id"
	LabelWorkflow  = "workflow"
)

// JobLostResolveTimeout is when a FuseboxJobLost alert resolves: this long
// after it started, as Alertmanager resolves an alert that is not sent
// again within its resolve_timeout (default 5m). A lost job stays lost; the
// alert only tells the operator once.
const JobLostResolveTimeout = 5 * time.Minute

// levelAlerts are the alerts the Snapshot decides: firing while their
// condition holds, resolved when it no longer does.
var levelAlerts = map[string]bool{
	NameBreakerOpen: true, NameAllHostsOut: true, NameQueueNearlyFull: true, NameHostDegraded: true, NameWorkflowBreakerOpen: true,
}

// want is an alert whose condition holds now.
type want struct {
	labels, annotations map[string]string
	since               time.Time // when the condition began, if known (else: now)
}

// evaluate returns the level alerts whose condition holds in snap, by
// fingerprint.
func evaluate(snap Snapshot, threshold float64) map[string]want {
	out := map[string]want{}
	add := func(w want) { out[Fingerprint(w.labels)] = w }
	usable := 0
	for _, h := range snap.Hosts {
		switch h.State {
		case fleet.HostHealthy, fleet.HostDegraded:
			usable++
		}
		if h.Breaker == breaker.StateOpen || h.Breaker == breaker.StateHalfOpen {
			add(want{
				labels: map[string]string{LabelAlertName: NameBreakerOpen, LabelHost: h.Name, LabelSeverity: "warning"},
				annotations: map[string]string{
					"summary": fmt.Sprintf("fusebox: breaker of host %s open", h.Name),
					"description": fmt.Sprintf("Host %s failed often enough that its circuit breaker opened; no jobs are placed on it "+
						"until a probe succeeds. Check the host with `fusebox hosts` and the Docker daemon on it; "+
						"`fusebox isolate %s --reason ...` keeps it out while you repair it.", h.Name, h.Name),
				},
			})
		}
		if h.State == fleet.HostDegraded {
			add(want{
				labels: map[string]string{LabelAlertName: NameHostDegraded, LabelHost: h.Name, LabelSeverity: "warning"},
				annotations: map[string]string{
					"summary": fmt.Sprintf("fusebox: host %s degraded", h.Name),
					"description": fmt.Sprintf("Host %s answers, but is slow or fails some checks, so it takes fewer jobs or none. "+
						"`fusebox hosts` shows why; check the load and the Docker daemon on it; "+
						"`fusebox drain %s --reason ...` stops new work.", h.Name, h.Name),
				},
			})
		}
	}
	for _, wf := range snap.Workflows {
		if wf.Breaker != breaker.StateOpen && wf.Breaker != breaker.StateHalfOpen {
			continue
		}
		add(want{
			labels: map[string]string{LabelAlertName: NameWorkflowBreakerOpen, LabelWorkflow: wf.Name, LabelSeverity: "warning"},
			annotations: map[string]string{
				"summary": fmt.Sprintf("fusebox: breaker of workflow %s open", wf.Name),
				"description": fmt.Sprintf("Runs of workflow %s failed by their own steps' fault often enough that its circuit breaker opened: "+
					"new runs are refused until a probe run succeeds. `fusebox workflow runs --workflow %s` shows why they failed; "+
					"fix the workflow, or run it with --no-circuit-breaker.", wf.Name, wf.Name),
			},
		})
	}
	if len(snap.Hosts) > 0 && usable == 0 {
		add(want{
			labels: map[string]string{LabelAlertName: NameAllHostsOut, LabelSeverity: "critical"},
			annotations: map[string]string{
				"summary": "fusebox: no Docker host can take jobs",
				"description": fmt.Sprintf("Every host of the fleet (%d) is unavailable, probing, isolated or draining. "+
					"Jobs are queued, not failed, but none will run until a host recovers. "+
					"Run `fusebox hosts` to see why each host is out.", len(snap.Hosts)),
			},
		})
	}
	if snap.MaxQueued > 0 && float64(snap.Queued) >= threshold*float64(snap.MaxQueued) {
		add(want{
			labels: map[string]string{LabelAlertName: NameQueueNearlyFull, LabelSeverity: "warning"},
			annotations: map[string]string{
				"summary": fmt.Sprintf("fusebox: queue %d%% full", int(math.Round(100*float64(snap.Queued)/float64(snap.MaxQueued)))),
				"description": fmt.Sprintf("%d of the queue bound of %d jobs are used (alerting from %d%%). Past the bound, "+
					"submissions are refused with HTTP 429. Add hosts or capacity, or find out why hosts are not taking jobs "+
					"(`fusebox hosts`, `fusebox jobs --state queued`).", snap.Queued, snap.MaxQueued, int(math.Round(threshold*100))),
			},
		})
	}
	return out
}

// jobLost is the alert of a lost job.
func jobLost(jobID, host, reason string, resolveAfter time.Duration) want {
	labels := map[string]string{LabelAlertName: NameJobLost, LabelJobID: jobID, LabelSeverity: "warning"}
	if host != "" {
		labels[LabelHost] = host
	}
	desc := fmt.Sprintf("Job %s was marked lost", jobID)
	if host != "" {
		desc += fmt.Sprintf(": its host %s stayed unreachable past the lost-host policy", host)
	}
	if reason != "" {
		desc += " (" + reason + ")"
	}
	desc += ". Its container may still be running on that host. See `fusebox jobs --state lost`; submit it again if it must run. " +
		"This alert resolves by itself after " + resolveAfter.String() + "."
	return want{labels: labels, annotations: map[string]string{
		"summary":     "fusebox: job " + jobID + " lost",
		"description": desc,
	}}
}

// firing is a new firing state of w at now.
func firing(w want, at time.Time) store.AlertState {
	return store.AlertState{Fingerprint: Fingerprint(w.labels), Labels: w.labels, Annotations: w.annotations,
		Status: store.AlertFiring, StartsAt: at, SentAt: at}
}
