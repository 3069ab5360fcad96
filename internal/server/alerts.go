package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"fusebox/internal/alert"
	"fusebox/internal/api"
	"fusebox/internal/config"
	"fusebox/internal/dispatch"
	"fusebox/internal/event"
	"fusebox/internal/fleet"
	"fusebox/internal/store"
	"fusebox/internal/workflow"
)

// alertOptions translates alerts: (the Logger and Observer are the
// caller's).
func alertOptions(c config.Alerts) alert.Options {
	o := alert.Options{
		RepeatInterval: c.RepeatInterval,
		QueueThreshold: c.QueueThreshold,
		EvalInterval:   c.EvalInterval,
		DegradedFor:    c.DegradedFor,
		Backoff:        c.Backoff,
		MaxBackoff:     c.MaxBackoff,
		ExternalURL:    c.ExternalURL,
	}
	for _, r := range c.Receivers {
		o.Receivers = append(o.Receivers, alert.Receiver{Name: r.Name, URL: r.URL, Secret: r.Secret, Timeout: r.Timeout})
	}
	return o
}

// alertSource is the alerts' view of the fleet and the queue.
type alertSource struct {
	fl *fleet.Fleet
	d  *dispatch.Dispatcher
}

func (s alertSource) Snapshot(ctx context.Context) (alert.Snapshot, error) {
	qs, err := s.d.Stats(ctx)
	if err != nil {
		return alert.Snapshot{}, err
	}
	snap := alert.Snapshot{Queued: qs.Queued, MaxQueued: qs.MaxQueued}
	for _, h := range s.fl.Hosts() {
		snap.Hosts = append(snap.Hosts, alert.HostSnapshot{Name: h.Name(), State: h.Status().State, Breaker: h.Breaker().State()})
	}
	for _, b := range s.fl.Breakers().List() {
		if name, ok := strings.CutPrefix(b.Name(), workflow.BreakerPrefix); ok {
			snap.Workflows = append(snap.Workflows, alert.WorkflowSnapshot{Name: name, Breaker: b.State()})
		}
	}
	return snap, nil
}

// alertEvents adapts the event bus to the alerts' Events.
type alertEvents struct{ bus *event.Bus }

func (e alertEvents) Subscribe(f event.Filter, afterSeq int64) alert.Subscription {
	return e.bus.Subscribe(f, afterSeq)
}

// alertsView adapts the alert manager and the store to the API's Alerts.
type alertsView struct {
	m  *alert.Manager
	st store.Store
}

func (v alertsView) Status(ctx context.Context) (api.AlertsResponse, error) {
	rs, err := v.m.Receivers(ctx)
	if err != nil {
		return api.AlertsResponse{}, err
	}
	out := api.AlertsResponse{Receivers: []api.AlertReceiver{}, Firing: []api.FiringAlert{}}
	for _, r := range rs {
		out.Receivers = append(out.Receivers, api.AlertReceiver{Name: r.Name, URL: r.URL, Breaker: r.Breaker, Pending: r.Pending,
			LastDeliveredAt: r.LastDeliveredAt, LastError: r.LastError, LastErrorAt: r.LastErrorAt})
	}
	states, err := v.st.AlertStates(ctx)
	if err != nil {
		return api.AlertsResponse{}, err
	}
	now := time.Now()
	for _, s := range states {
		if s.Status != store.AlertFiring || (!s.EndsAt.IsZero() && !s.EndsAt.After(now)) {
			continue
		}
		out.Firing = append(out.Firing, api.FiringAlert{Name: s.Labels[alert.LabelAlertName], Labels: s.Labels,
			Summary: s.Annotations["summary"], StartsAt: s.StartsAt, Fingerprint: s.Fingerprint})
	}
	slices.SortFunc(out.Firing, func(a, b api.FiringAlert) int { return a.StartsAt.Compare(b.StartsAt) })
	return out, nil
}

func (v alertsView) Test(ctx context.Context, receiver string) ([]api.AlertTestResult, error) {
	res, err := v.m.Test(ctx, receiver)
	if errors.Is(err, alert.ErrUnknownReceiver) {
		return nil, fmt.Errorf("%w: %w", api.ErrReceiverNotFound, err)
	}
	if err != nil {
		return nil, err
	}
	out := make([]api.AlertTestResult, 0, len(res))
	for _, r := range res {
		out = append(out, api.AlertTestResult{Receiver: r.Receiver, WebhookID: r.WebhookID, Status: r.Status, Error: r.Error,
			DurationMS: float64(r.Duration.Microseconds()) / 1000})
	}
	return out, nil
}
