// Package event is fusebox's one stream of what happens: every job
// transition, host breaker transition, host state change, operator action,
// alert delivery and workflow run or step change is an Event, appended to
// the store with a sequence number that only grows, and fanned out to
// subscribers by a Bus.
//
// The store owns the log (store.Store.EventAppend, EventList; a job's
// transitions append their event in the transaction that makes them). The
// Bus owns delivery: a Subscription reads the log from the store by
// sequence, after being woken by Notify, so a subscriber that is slow, or
// stops reading, holds up nobody but itself and never misses or repeats an
// event: when it reads again it goes on from its last sequence.
//
// This package must not import the store (the store imports it): the Bus
// reads through the small Source interface, which store.Store satisfies.
package event

import (
	"context"
	"encoding/json"
	"slices"
	"time"
)

// Types of events. Data is a JSON object whose fields each type documents.
const (
	// TypeJobTransition: a job changed state. JobID, Host (the attempt's
	// host, "" before the first), Attempt; Data is JobTransition.
	TypeJobTransition = "job.transition"
	// TypeHostBreaker: a host's circuit breaker changed state. Host; Data
	// is Breaker.
	TypeHostBreaker = "host.breaker"
	// TypeBreaker: a breaker other than a host's (a workflow's:
	// "workflow/<name>") changed state. Data is Breaker.
	TypeBreaker = "breaker"
	// TypeHostDegradation: the modes of graceful degradation in force on a
	// host changed. Host; Data is {"modes": [...], "reason"}.
	TypeHostDegradation = "host.degradation"
	// TypeHostState: a host's state (ready, degraded, isolated, ...)
	// changed. Host; Data is {"from", "to", "reason"}.
	TypeHostState = "host.state"
	// TypeOperatorAction: an operator acted (isolate, drain, release,
	// reset, cancel). Host or JobID; Data is {"action", "by", "reason"}.
	TypeOperatorAction = "operator.action"
	// TypeAlertDelivery: an alert notice reached its webhook receiver
	// (internal/alert). Data is AlertDelivery.
	TypeAlertDelivery = "alert.delivery"
	// TypeWorkflowRun: a workflow run was created or changed state
	// (internal/workflow). Data is WorkflowRun.
	TypeWorkflowRun = "workflow.run"
	// TypeWorkflowStep: a step of a workflow run changed (its state, its
	// job, its try). Host (its job's, once it has one); Data is
	// WorkflowStep.
	TypeWorkflowStep = "workflow.step"
	// TypeMCPToolCall: a tool of the MCP server at /mcp was called
	// (internal/mcpserver). Data is MCPToolCall.
	TypeMCPToolCall = "mcp.tool_call"
)

// Event is one entry of the log.
type Event struct {
	Seq     int64           `json:"seq"` // set by the store on append: 1, 2, ...
	At      time.Time       `json:"at"`
	Type    string          `json:"type"`
	JobID   string          `json:"job_id,omitempty"`
	Host    string          `json:"host,omitempty"`
	Attempt int             `json:"attempt,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"` // a JSON object, or empty
}

// JobTransition is the Data of a TypeJobTransition event.
type JobTransition struct {
	From   string `json:"from"` // "" for the submission
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
	// Outcome is the outcome recorded on the attempt that this transition
	// finished (the job left launching or running), "" otherwise.
	Outcome string `json:"outcome,omitempty"`
}

// Breaker is the Data of a TypeHostBreaker event.
type Breaker struct {
	Name   string `json:"name"` // the breaker's name
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
}

// AlertDelivery is the Data of a TypeAlertDelivery event.
type AlertDelivery struct {
	Receiver  string   `json:"receiver"`
	WebhookID string   `json:"webhook_id"` // the notice's Standard Webhooks "webhook-id"
	Status    string   `json:"status"`     // firing or resolved
	Alerts    []string `json:"alerts"`     // the alert names in the notice
	Attempts  int      `json:"attempts"`   // attempts it took, this one included
}

// WorkflowRun is the Data of a TypeWorkflowRun event.
type WorkflowRun struct {
	Run      string `json:"run"`
	Workflow string `json:"workflow"`
	TaskID   string `json:"task_id,omitempty"`
	From     string `json:"from"` // "" for the submission
	To       string `json:"to"`
	Reason   string `json:"reason,omitempty"`
	Cause    string `json:"cause,omitempty"` // why it ended: own, fleet, cancelled, timeout
}

// WorkflowStep is the Data of a TypeWorkflowStep event.
type WorkflowStep struct {
	Run    string `json:"run"`
	Step   string `json:"step"`
	From   string `json:"from"`
	To     string `json:"to"`
	Reason string `json:"reason,omitempty"`
	Try    int    `json:"try,omitempty"`
	JobID  string `json:"job_id,omitempty"`
	Cached bool   `json:"cached,omitempty"`
}

// MCPToolCall is the Data of a TypeMCPToolCall event.
type MCPToolCall struct {
	Tool string `json:"tool"`
	By   string `json:"by"`              // the token's name (see api.WhoAmI)
	OK   bool   `json:"ok"`              // false: the call ended in a tool error
	Err  string `json:"error,omitempty"` // that error, when not OK
}

// Filter selects events. Zero fields select everything.
type Filter struct {
	Types []string // any of these types
	JobID string
	Host  string
	Since time.Time // only events at or after this time
}

// Match reports whether ev passes f.
func (f Filter) Match(ev Event) bool {
	return (len(f.Types) == 0 || slices.Contains(f.Types, ev.Type)) &&
		(f.JobID == "" || f.JobID == ev.JobID) &&
		(f.Host == "" || f.Host == ev.Host) &&
		(f.Since.IsZero() || !ev.At.Before(f.Since))
}

// ListParams are the arguments of Source.EventList.
type ListParams struct {
	AfterSeq int64 // only events with a greater Seq
	Filter
	Limit int // 0: 100
}

// Source reads the log: store.Store is one.
type Source interface {
	// EventList returns up to p.Limit events matching p.Filter with Seq
	// greater than p.AfterSeq, in Seq order.
	EventList(ctx context.Context, p ListParams) ([]Event, error)
	// EventLastSeq returns the greatest Seq appended so far, 0 if none.
	EventLastSeq(ctx context.Context) (int64, error)
}

// MarshalData encodes v as an event's Data; it panics on a value JSON
// cannot encode (the Data types of this package always encode).
func MarshalData(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic("event: marshal data: " + err.Error())
	}
	return b
}
